"""Runs the PolyCrysDiff experiment (see config.py for the commands and the variants).

Stages, each resumed where a previous run stopped: data (``jaxmicro.data.make_dataset``,
``voronoi-rgb``), the KL-VAE (``fit_vae``), the latent UNet (``fit`` with ``autoencoder``: the
dataset is encoded to latents once), then the evaluation (Table 1, Fig. 3, guidance sweep, CPFEM
hand-off) and the report.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from jaxmicro._modules import load_file_module
from jaxmicro.data import make_dataset
from jaxmicro.train import fit, fit_vae

HERE = Path(__file__).parent


def dataset(cfg, folder: Path, n: int, seed: int) -> Path:
    """A ``voronoi-rgb`` dataset folder of ``n`` volumes (made once)."""
    if not (folder / "metadata.json").is_file():
        make_dataset(
            "voronoi-rgb",
            folder,
            n=n,
            size=cfg.size,
            dim=3,
            seed=seed,
            grains=cfg.grains,
            regularity=cfg.regularity,
            n_colors=cfg.num_colors,
            overwrite=True,  # a folder left by an interrupted first call
        )
    return folder


def train(cfg, out: Path) -> tuple[Path, Path]:
    """Trains (or continues) the VAE and the latent UNet; returns their run folders."""
    data = dataset(cfg, out / "data", cfg.num_volumes, cfg.seed)
    vae = dataclasses.replace(
        cfg.vae, data=dataclasses.replace(cfg.vae.data, path=str(data.absolute()))
    )
    fit_vae(vae, out / "vae", resume=True)
    diffusion = dataclasses.replace(
        cfg.diffusion,
        data=dataclasses.replace(cfg.diffusion.data, path=str(data.absolute())),
        autoencoder=str((out / "vae").absolute()),
    )
    fit(diffusion, out / "unet", resume=True)
    return out / "vae", out / "unet"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="smoke", choices=("smoke", "paper"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--stage", choices=("train", "all"), default="all")
    args = parser.parse_args(argv)
    cfg = load_file_module(HERE / "config.py").get_config(args.variant)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train(cfg, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
