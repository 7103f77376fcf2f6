"""Seconds per training step of an experiment's VAE and latent UNet, and the wall time its
full schedule would take at that rate.

    python benchmarks/train_steps.py                          # PolyCrysDiff paper variant
    python benchmarks/train_steps.py --variant smoke --steps 20

Builds a small dataset of the variant's shape (``--volumes`` volumes, at least one batch, same
grain law), trains the VAE for ``--steps`` steps, encodes, trains the latent UNet for ``--steps``
steps, and reads the step times from each run's ``metrics.jsonl`` (wall time between the first
and the last logged step, so compilation is excluded). Prints one row per network: device,
batch, s/step, configured steps and the projected hours. The projection assumes the measured
rate holds (one device; the data-parallel mesh divides it by the device count at best).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import jax

from jaxmicro._modules import load_file_module
from jaxmicro.data import make_dataset
from jaxmicro.train import fit, fit_vae, read_metrics

EXPERIMENT = Path(__file__).parents[1] / "experiments" / "polycrysdiff" / "config.py"


def seconds_per_step(run: Path) -> float:
    """Mean wall seconds per step between the first and the last row of ``metrics.jsonl``."""
    rows = read_metrics(run)
    if len(rows) < 2:
        raise ValueError(f"{run}: need two logged steps, got {len(rows)}")
    first, last = rows[0], rows[-1]
    return (last["time"] - first["time"]) / (last["step"] - first["step"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="paper", choices=("smoke", "paper"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--volumes", type=int, default=32)
    args = parser.parse_args(argv)
    cfg = load_file_module(EXPERIMENT).get_config(args.variant)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        make_dataset(
            "voronoi-rgb",
            data,
            num_samples=max(args.volumes, cfg.vae.batch_size, cfg.diffusion.batch_size),
            size=cfg.size,
            dim=3,
            seed=0,
            grains=cfg.grains,
            regularity=cfg.regularity,
            n_colors=cfg.num_colors,
        )
        short = {"num_train_steps": args.steps, "log_every": 5, "checkpoint_every": 10**9}
        vae = dataclasses.replace(
            cfg.vae, data=dataclasses.replace(cfg.vae.data, path=str(data)), **short
        )
        fit_vae(vae, tmp / "vae", progress=False)
        unet = dataclasses.replace(
            cfg.diffusion,
            data=dataclasses.replace(cfg.diffusion.data, path=str(data)),
            autoencoder=str(tmp / "vae"),
            **short,
        )
        fit(unet, tmp / "unet", progress=False)
        for name, run, full in (
            ("vae", tmp / "vae", cfg.vae),
            ("latent unet", tmp / "unet", cfg.diffusion),
        ):
            s = seconds_per_step(run)
            rows.append((name, full.batch_size, s, full.num_train_steps))
    device = jax.devices()[0].device_kind
    print(f"PolyCrysDiff {args.variant} ({cfg.size}^3) on {device}")
    print(f"{'network':<12} {'batch':>5} {'s/step':>8} {'steps':>8} {'hours':>7}")
    for name, batch, s, steps in rows:
        print(f"{name:<12} {batch:>5} {s:>8.4f} {steps:>8} {s * steps / 3600:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
