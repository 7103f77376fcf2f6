"""Probes one smoke denoiser: is it trained enough to make grains?

Trains (or continues) the UNet of the first reference in one representation, with
``TrainConfig`` / ``UNetConfig`` fields replaced from ``--train`` / ``--model`` (JSON), then
measures, and writes to ``<out>/probe.json``:

- ``x0``: per level ``t``, the RMS error of the network's x0 estimate on 16 training patches
  noised to ``t``, next to that of the noisy patch itself (``x_t / sqrt(abar_t)``), and the
  fraction of neighbour pairs of the estimate that differ by more than 0.05 in some channel
  (clean patches: the grain boundaries only);
- ``maps``: ``--n`` LGD maps as the ``evaluate`` stage draws them (GRF seed, t0, hard 1-point
  correction): their mean chord lengths (5 degree boundaries, pixels, axes 0 / 1) against two
  quarters of the reference, the same neighbour-difference fraction, and Table 1's errors
  (``analysis.errors``; noisy with a few maps). ``maps.png`` shows them.

Example (docs/rogsh_lgd.md, "CPU probe")::

    python experiments/rogsh_lgd/probe.py --out runs/rl_probe/wide --steps 6000 \\
        --train '{"parameterization": "v", "learning_rate": 2e-3, "lr_cycles": [2000, 4000],
                  "lr_cycle_decay": 0.25}' \\
        --model '{"channels": [32, 64, 128], "attention_levels": [2], "dropout": 0.0}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from jaxmicro._modules import load_file_module
from jaxmicro.train import replace_fields

HERE = Path(__file__).parent
run = load_file_module(HERE / "run.py")
analysis = run.analysis
LEVELS = (1, 10, 50, 100, 300, 600)


def probe_config(variant: str, steps: int, rep: str, n: int, train: dict, model: dict):
    """The experiment config reduced to the first reference, one representation, ``n`` maps."""
    cfg = load_file_module(HERE / "config.py").get_config(variant)
    t = replace_fields(cfg.train, {**train, "num_train_steps": steps})
    t = dataclasses.replace(t, model=replace_fields(t.model, model))
    return dataclasses.replace(
        cfg, references=cfg.references[:1], representations=(rep,), num_generated=n, train=t
    )


def step_fraction(x: np.ndarray, axis: int, threshold: float = 0.05) -> float:
    """Fraction of neighbour pairs along ``axis`` that differ by more than ``threshold``."""
    return float((np.abs(np.diff(x, axis=axis)).max(-1) > threshold).mean())


def x0_errors(model, patches: np.ndarray, seed: int = 0) -> list[dict]:
    """The network's x0 estimate against the noisy patch, per level of ``LEVELS`` up to T."""
    import jax
    import jax.numpy as jnp

    from jaxmicro.diffusion import predict_x0, q_sample

    eps_fn, schedule = model.eps_fn(), model.schedule
    x0 = jnp.asarray(patches, jnp.float32)
    z = jax.random.normal(jax.random.key(seed), x0.shape)
    rows = []
    for level in (t for t in LEVELS if t <= schedule.num_steps):
        t = jnp.full((x0.shape[0],), level - 1)
        xt = q_sample(schedule, x0, t, z)
        est = np.asarray(predict_x0(schedule, xt, t, eps_fn(xt, t)))
        noisy = np.asarray(predict_x0(schedule, xt, t, jnp.zeros_like(xt)))  # x_t / sqrt(abar)
        rows.append(
            {
                "t": level,
                "rmse": float(np.sqrt(np.mean((est - patches) ** 2))),
                "rmse_noisy": float(np.sqrt(np.mean((noisy - patches) ** 2))),
                "steps": step_fraction(est, 1),
            }
        )
    return rows


def mean_chords(maps, symmetry: str) -> list[float]:
    """Mean chord length (pixels) along axes 0 and 1, pooled over ``maps``."""
    pooled = analysis.pooled_chord_lengths(maps, symmetry)
    return [float(np.mean(pooled[axis])) for axis in (0, 1)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--variant", default="smoke", choices=("smoke", "paper", "tiny"))
    parser.add_argument("--steps", type=int, required=True, help="training steps in all")
    parser.add_argument("--representation", default="rogsh", choices=("rogsh", "euler"))
    parser.add_argument("-n", type=int, default=4, help="LGD maps")
    parser.add_argument("--train", default="{}", help="TrainConfig fields (JSON)")
    parser.add_argument("--model", default="{}", help="UNetConfig fields (JSON)")
    args = parser.parse_args(argv)
    rep, train, model_fields = args.representation, json.loads(args.train), json.loads(args.model)
    cfg = probe_config(args.variant, args.steps, rep, args.n, train, model_fields)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run.data(cfg, out)
    run.train(cfg, out)

    import jax

    from jaxmicro.data import Loader
    from jaxmicro.train import load_model

    rc = cfg.references[0]
    key = run.ref_key(rc)
    q_ref, symmetry, _ = run.reference(cfg, rc, out)
    model = load_model(out / key / rep / "unet")
    patches = Loader(out / key / rep / "data", 16, jax.random.key(0)).samples(np.arange(16))
    field = analysis.encode(q_ref, symmetry, rep)
    x = run.lgd_set(cfg, rc, rep, out, field, args.n, 1.0, rep)
    maps = analysis.decode(x, symmetry, rep)
    h, w = np.asarray(cfg.generated_shape)
    crops = [q_ref[:h, :w], q_ref[-h:, -w:]]
    errors = analysis.errors(maps, q_ref, symmetry, cfg.max_lag)
    result = {
        "steps": args.steps,
        "train": train,
        "model": model_fields,
        "x0": x0_errors(model, patches),
        "maps": {
            "chords": mean_chords(maps, symmetry),
            "chords_reference": mean_chords(crops, symmetry),
            "steps": step_fraction(x, 1),
            "steps_reference": step_fraction(field, 0),
            **{k: float(v) for k, v in errors.items() if np.ndim(v) == 0},
        },
    }
    (out / "probe.json").write_text(json.dumps(result, indent=1))
    panels = {"reference": crops[0], **{f"LGD {i}": m for i, m in enumerate(maps)}}
    analysis.plot_maps(out / "maps.png", panels, symmetry)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
