"""Probes one GrainPaint smoke denoiser: does it make piecewise-constant grains?

Trains (or continues) the UNet of one schedule on the training blocks of a run's ``data`` stage,
with ``TrainConfig`` / ``UNetConfig`` fields replaced from ``--train`` / ``--model`` (JSON), then
measures, and writes to ``<out>/probe.json``:

- ``x0``: per level ``t``, on 32 training blocks (grain values) noised to ``t``: the RMS error of
  the network's x0 estimate, of the noisy block itself (``x_t / sqrt(abar_t)``) and of the
  grain-mean oracle (``x_t / sqrt(abar_t)`` averaged over each true grain: what a denoiser that
  knew the grains would give), and the mean standard deviation of the estimate inside grains of
  at least 20 voxels (0 for piecewise-constant output; the oracle's is 0);
- ``blocks``: ``--n`` unconditional blocks (DDPM over all T levels) segmented as the study
  segments them (``segment_continuous``, region merging): grains per block and the fraction of
  grains under 10 voxels, against the training blocks' connected grains segmented the same way
  from their exact grain values. ``blocks.png`` shows their middle slices over the training
  blocks'.

Example (docs/grainpaint.md, "What the CPU smoke model makes")::

    python experiments/grainpaint/run.py --variant smoke --out runs/gp --stage data
    python experiments/grainpaint/probe.py --data runs/gp --out runs/gp_probe/l2 \\
        --train '{"loss": "l2", "num_train_steps": 6000}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro._modules import load_file_module
from jaxmicro.diffusion.schedule import x0_from_eps
from jaxmicro.train import replace_fields

HERE = Path(__file__).parent
run = load_file_module(HERE / "run.py")
config = load_file_module(HERE / "config.py")
LEVELS = (5, 20, 50, 100, 150, 200)
NUM_BLOCKS = 32
MIN_GRAIN = 20  # voxels: grains whose inner spread is measured


def _block_ids(data: Path, spread: int | None = None) -> np.ndarray:
    """Grain IDs ``(n, *block)`` of the run's training blocks: all of them, or ``spread`` (at
    most the dataset's) evenly spread over the dataset."""
    from jaxmicro.data import Loader, read_metadata

    folder = data / "data" / "blocks"
    total = read_metadata(folder)["n_samples"]
    index = np.arange(total) if spread is None else np.linspace(0, total - 1, min(spread, total))
    return Loader(folder, 1, jax.random.key(0)).samples(index.astype(int))


def _training_blocks(data: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training blocks spread over the dataset: grain IDs ``(n, *block)`` and their
    grain-value fields."""
    from jaxmicro.data import training_fields

    ids = _block_ids(data, n)
    fields = training_fields(ids, "grain-values", key=jax.random.key(seed))[..., 0]
    return ids, fields


def x0_errors(eps_fn, alpha_bars, ids: np.ndarray, fields: np.ndarray, levels=LEVELS, seed=0):
    """Per level: RMS x0 error of the network ``eps_fn(x_t, t)``, of the noisy field, of the
    grain-mean oracle, and the network estimate's mean standard deviation inside grains of >=
    ``MIN_GRAIN``."""
    alpha_bars = np.asarray(alpha_bars, np.float64)
    rng = np.random.default_rng(seed)
    rows = {}
    for t in levels:
        ab = alpha_bars[t]
        noisy = np.sqrt(ab) * fields + np.sqrt(1 - ab) * rng.standard_normal(fields.shape)
        eps = np.asarray(eps_fn(jnp.asarray(noisy[..., None], jnp.float32), jnp.full(len(ids), t)))
        estimate = np.asarray(x0_from_eps(noisy, eps[..., 0], ab), np.float64)
        scaled = noisy / np.sqrt(ab)
        oracle = np.empty_like(scaled)
        spread = []
        for k, block in enumerate(ids):
            _, grain, counts = np.unique(block, return_inverse=True, return_counts=True)
            grain = grain.reshape(block.shape)
            oracle[k] = (np.bincount(grain.ravel(), scaled[k].ravel()) / counts)[grain]
            mean = np.bincount(grain.ravel(), estimate[k].ravel()) / counts
            var = np.bincount(grain.ravel(), estimate[k].ravel() ** 2) / counts - mean**2
            spread.extend(np.sqrt(np.maximum(var[counts >= MIN_GRAIN], 0)))
        rows[int(t)] = {
            "alpha_bar": float(ab),
            "network": float(np.sqrt(np.mean((estimate - fields) ** 2))),
            "noisy": float(np.sqrt(np.mean((scaled - fields) ** 2))),
            "oracle": float(np.sqrt(np.mean((oracle - fields) ** 2))),
            "inner_sd": float(np.mean(spread)),
        }
    return rows


def block_grains(fields: np.ndarray) -> dict:
    """Grains per block and the fraction under 10 voxels, segmented as the study does."""
    from jaxmicro.grains import segment_continuous

    sizes = [np.bincount(segment_continuous(np.asarray(f, np.float64)).ravel())[1:] for f in fields]
    every = np.concatenate(sizes)
    return {
        "grains_per_block": float(np.mean([len(s) for s in sizes])),
        "small_fraction": float(np.mean(every < 10)),
        "mean_volume": float(every.mean()),
    }


def save_blocks(path: Path, generated: np.ndarray, training: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(8, len(generated), len(training))
    fig, axes = plt.subplots(2, n, figsize=(2 * n, 4.4), squeeze=False)
    for row, (name, blocks) in enumerate((("generated", generated), ("training", training))):
        for k in range(n):
            axes[row, k].imshow(blocks[k, blocks.shape[1] // 2], cmap="jet", vmin=-1, vmax=1)
            axes[row, k].axis("off")
        axes[row, 0].set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def probe(cfg, data: Path, out: Path, *, schedule: str, n: int, seed: int = 1) -> dict:
    """Trains (or continues) ``out`` and measures it; writes ``probe.json`` and ``blocks.png``."""
    from jaxmicro.diffusion import ddpm_sample
    from jaxmicro.train import fit, load_model

    config = run.train_config(cfg, schedule, data / "data" / "blocks")
    fit(config, out, resume=True)
    model = load_model(out)
    eps_fn = model.eps_fn()  # one network function (one compilation) for both measurements
    ids, fields = _training_blocks(data, NUM_BLOCKS, seed)
    shape = (*ids.shape[1:], 1)
    blocks = np.asarray(
        ddpm_sample(jax.random.key(seed), eps_fn, model.schedule, shape, num_samples=n)
    )[..., 0]
    result = {
        "train": dataclasses.asdict(config),
        "steps": run.read_metrics(out)[-1]["step"],
        "x0": x0_errors(
            eps_fn,
            model.schedule.alpha_bars,
            ids,
            fields,
            [t for t in LEVELS if t < model.schedule.num_steps],
        ),
        "blocks": {"generated": block_grains(blocks), "training": block_grains(fields)},
    }
    (out / "probe.json").write_text(json.dumps(result, indent=1, default=str))
    save_blocks(out / "blocks.png", blocks, fields)
    return result


def fixed_level(cfg, data: Path, level: int, steps: int, *, seed: int = 0) -> dict:
    """Trains a fresh UNet of ``cfg.train.model`` on one noise level only: capacity or budget?

    The noise-prediction MSE at level ``level`` alone, Adam at ``cfg.train.learning_rate`` held
    constant, ``cfg.train.batch_size`` training blocks per step with fresh grain values. A network
    that cannot beat the multi-level model's x0 error here lacks the capacity; one that does
    shows what the other levels cost it in training budget. Returns the mean loss per 100 steps
    and ``x0_errors`` at ``level`` (the probe's 32 blocks; their seed 7, the noise's 3).
    """
    import optax
    from flax import nnx

    from jaxmicro.data import training_fields
    from jaxmicro.nn import UNet
    from jaxmicro.train import make_schedule

    alpha_bars = np.asarray(make_schedule(cfg.train).alpha_bars, np.float64)
    signal, noise = float(np.sqrt(alpha_bars[level])), float(np.sqrt(1 - alpha_bars[level]))
    every = _block_ids(data)
    total = len(every)
    graphdef, params = nnx.split(UNet(cfg.train.model, rngs=nnx.Rngs(seed)))
    tx = optax.adam(cfg.train.learning_rate)

    @jax.jit
    def step(params, opt, x0, key):
        eps = jax.random.normal(key, x0.shape)
        x_t = signal * x0 + noise * eps

        def loss(p):
            pred = nnx.merge(graphdef, p)(x_t, jnp.full(x0.shape[:1], level))
            return jnp.mean((pred - eps) ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, value

    rng, key, opt = np.random.default_rng(seed), jax.random.key(seed + 1), tx.init(params)
    losses = []
    for i in range(steps):
        index = rng.choice(total, cfg.train.batch_size, replace=False)
        values = jax.random.key(1000 + i)  # fresh grain values every step
        x0 = training_fields(every[index], "grain-values", key=values, index=index)
        key, sub = jax.random.split(key)
        params, opt, value = step(params, opt, jnp.asarray(x0), sub)
        losses.append(float(value))
        if (i + 1) % 100 == 0:
            print(f"step {i + 1}: loss {np.mean(losses[-100:]):.4f}", flush=True)
    network = nnx.merge(graphdef, params)
    ids, fields = _training_blocks(data, NUM_BLOCKS, 7)
    return {
        "level": level,
        "steps": steps,
        "loss_per_100": [float(np.mean(losses[k : k + 100])) for k in range(0, steps, 100)],
        "x0": x0_errors(network, alpha_bars, ids, fields, (level,), seed=3),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a run folder with its data stage")
    p.add_argument("--out", type=Path, required=True, help="the probe's run folder")
    p.add_argument("--variant", default="smoke")
    p.add_argument("--schedule", default="linear")
    p.add_argument("--train", default="{}", help="TrainConfig fields to replace (JSON)")
    p.add_argument("--model", default="{}", help="UNetConfig fields to replace (JSON)")
    p.add_argument("--n", type=int, default=32, help="unconditional blocks to segment")
    p.add_argument("--level", type=int, help="train a fresh network at this level only")
    p.add_argument("--steps", type=int, default=1000, help="with --level: training steps")
    args = p.parse_args(argv)
    if not (args.data / "data" / "blocks" / "metadata.json").is_file():
        p.error(f"--data: {args.data} has no data/blocks; run the data stage first")
    cfg = config.get_config(args.variant)
    model = replace_fields(cfg.train.model, json.loads(args.model))
    train = replace_fields(dataclasses.replace(cfg.train, model=model), json.loads(args.train))
    cfg = dataclasses.replace(cfg, train=train)
    if args.level is not None:
        if not 0 <= args.level < train.num_diffusion_steps or args.steps < 1:
            p.error(f"--level: expected 0..{train.num_diffusion_steps - 1} and --steps >= 1")
        path = args.out / f"fixed_level_{args.level}.json"
        if path.exists():
            p.error(f"--out: {path} exists; choose another folder")
        args.out.mkdir(parents=True, exist_ok=True)
        result = fixed_level(cfg, args.data, args.level, args.steps)
        path.write_text(json.dumps(result, indent=1))
        print(json.dumps(result["x0"]))
        return 0
    result = probe(cfg, args.data, args.out, schedule=args.schedule, n=args.n)
    for t, row in result["x0"].items():
        print(f"t={t:>3} " + " ".join(f"{k} {v:.3f}" for k, v in row.items()))
    print(json.dumps(result["blocks"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
