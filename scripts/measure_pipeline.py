"""Measures the generative pipeline on CPU-sized problems and prints the tables of docs/pipeline.md.

python scripts/measure_pipeline.py --out runs/measure_pipeline

1. Conditional response: a 2D UNet conditioned on the phase fraction of binary 16x16 fields
   (i.i.d. pixels, fraction uniform in [0.1, 0.9]); samples at five target fractions, with
   classifier-free guidance 0 (the null-token model), 1 and 3: mean segmented fraction, R^2 of
   target vs achieved over all samples.
2. VAE reconstruction: the KL-VAE on PolyCrysDiff-style 10-colour Voronoi volumes (16^3, 3-10
   grains); per-voxel colour agreement and grain-count agreement after decoding, on held-out
   volumes.

Re-running continues the training runs where they stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from jaxmicro import metrics, synth
from jaxmicro.data import make_dataset, read_metadata, training_fields, write_dataset
from jaxmicro.data._loader import Loader
from jaxmicro.nn import UNetConfig, VAEConfig
from jaxmicro.train import (
    DataConfig,
    TrainConfig,
    VAETrainConfig,
    fit,
    fit_vae,
    generate,
    load_autoencoder,
    load_model,
    reconstruction_quality,
)


def conditional_response(out: Path) -> dict:
    data = out / "fraction_data"
    if not (data / "metadata.json").is_file():
        rng = np.random.default_rng(0)
        fraction = rng.uniform(0.1, 0.9, 512)
        x = (rng.uniform(size=(512, 16, 16)) < fraction[:, None, None]).astype(np.int32)
        write_dataset(data, x, {"fraction": fraction}, kind="two-phase", overwrite=True)
    config = TrainConfig(
        name="fraction",
        model=UNetConfig(
            spatial_dims=2,
            channels=(16, 32),
            num_res_blocks=1,
            attention_levels=(1,),
            num_groups=8,
            dropout=0.0,
            num_scalar_conditions=1,
            context_dim=32,
        ),
        data=DataConfig(path=str(data), shape=()),
        conditions=("fraction",),
        cond_dropout=0.15,
        num_diffusion_steps=100,
        beta_start=1e-3,
        beta_end=0.1,
        batch_size=32,
        num_train_steps=1200,
        learning_rate=2e-3,
        warmup_steps=50,
        ema_decay=0.99,
        log_every=50,
        checkpoint_every=300,
    )
    fit(config, out / "fraction_run", resume=True)
    model = load_model(out / "fraction_run")
    targets = np.array([0.2, 0.35, 0.5, 0.65, 0.8])
    rows = {}
    for scale in (0.0, 1.0, 3.0):
        achieved = []
        for target in targets:
            x = generate(
                jax.random.key(7),
                model,
                32,
                steps=25,
                conditions=model.conditions({"fraction": float(target)}),
                guidance_scale=scale,
            )
            achieved.append((x[..., 0] > 0).mean(axis=(1, 2)))
        achieved = np.stack(achieved)  # (targets, samples)
        wanted = np.repeat(targets[:, None], achieved.shape[1], axis=1)
        rows[scale] = {
            "mean_fraction": achieved.mean(1).round(3).tolist(),
            "std_fraction": achieved.std(1).round(3).tolist(),
            "r2": float(metrics.r2_score(wanted.ravel(), achieved.ravel())),
        }
    return {"targets": targets.tolist(), "by_guidance": rows}


def vae_quality(out: Path) -> dict:
    data = out / "rgb_data"
    if not (data / "metadata.json").is_file():
        make_dataset(
            "voronoi-rgb",
            data,
            num_samples=288,
            size=16,
            dim=3,
            grains=(3, 10),
            overwrite=True,
            progress=False,
        )
    config = VAETrainConfig(
        name="vae16",
        model=VAEConfig(
            spatial_dims=3,
            in_channels=3,
            channels=(16, 32),
            latent_channels=4,
            num_groups=8,
            mid_attention=False,
        ),
        data=DataConfig(path=str(data), shape=(), representation="identity"),
        batch_size=8,
        num_train_steps=1500,
        learning_rate=2e-3,
        warmup_steps=50,
        ema_decay=0.99,
        kl_weight=1e-6,
        log_every=50,
        checkpoint_every=300,
    )
    fit_vae(config, out / "vae_run", resume=True)
    autoencoder = load_autoencoder(out / "vae_run")
    held_out = out / "rgb_held_out"
    if not (held_out / "metadata.json").is_file():
        make_dataset(
            "voronoi-rgb",
            held_out,
            num_samples=32,
            size=16,
            dim=3,
            grains=(3, 10),
            seed=99,
            overwrite=True,
            progress=False,
        )
    loader = Loader(held_out, 32, jax.random.key(0))
    fields = training_fields(loader.samples(np.arange(32)), "identity")
    quality = reconstruction_quality(autoencoder, fields, palette=synth.palette(10))
    meta = read_metadata(held_out)
    quality["held_out_volumes"] = meta["n_samples"]
    quality["latent_shape"] = list(autoencoder.encode(fields[:1]).shape[1:])
    return {k: (float(v) if isinstance(v, np.floating | float) else v) for k, v in quality.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/measure_pipeline")
    parser.add_argument("--only", choices=("conditional", "vae"), default=None)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.only in (None, "conditional"):
        results["conditional"] = conditional_response(out)
    if args.only in (None, "vae"):
        results["vae"] = vae_quality(out)
    text = json.dumps(results, indent=1, default=str)
    (out / f"results_{args.only or 'all'}.json").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
