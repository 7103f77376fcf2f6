"""Unconditional diffusion of 32x32 periodic Voronoi grain-boundary maps.

Each field is +1 on grain boundaries (voxels with a differently labelled face neighbour) and -1
inside grains, from ``jaxmicro.synth.voronoi`` with 8-16 grains and seed regularity 0.5.
"""

from __future__ import annotations

import dataclasses

from jaxmicro.nn import UNetConfig
from jaxmicro.train import DataConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class Voronoi2DConfig(TrainConfig):
    """Voronoi 2D grain boundaries, 32x32. Commands (``smoke``: a few minutes on 2 CPU cores):

    jaxmicro train --config experiments/voronoi2d/config.py:smoke --out runs/voronoi2d_smoke
    jaxmicro sample --checkpoint runs/voronoi2d_smoke --n 16 --steps 50 --out runs/voronoi2d_gen

    ``paper`` follows Lee & Yun §2.4 (hybrid loss, learned variance, lr 1e-4, batch 32, EMA 0.9999,
    dropout 0.1, 100k steps; T = 1000 instead of 4000 for 32x32 fields):

    jaxmicro train --config experiments/voronoi2d/config.py:paper --out runs/voronoi2d_paper
    """  # noqa: E501


def get_config(variant: str = "smoke") -> Voronoi2DConfig:
    """The ``smoke`` or ``paper`` configuration."""
    data = DataConfig(
        kind="voronoi",
        shape=(32, 32),
        params=(("grains", (8, 16)), ("regularity", 0.5)),
        representation="boundaries",
        seed=0,
    )
    if variant == "smoke":
        return Voronoi2DConfig(
            name="voronoi2d_smoke",
            model=UNetConfig(
                spatial_dims=2,
                in_channels=1,
                channels=(16, 32, 64),
                num_res_blocks=1,
                attention_levels=(2,),
                num_groups=8,
                dropout=0.0,
            ),
            data=dataclasses.replace(data, num_examples=512),
            num_diffusion_steps=200,
            beta_start=5e-4,
            beta_end=0.1,
            loss="l2",
            batch_size=16,
            num_train_steps=1500,
            learning_rate=2e-3,
            warmup_steps=100,
            ema_decay=0.995,
            log_every=25,
            checkpoint_every=500,
            sample_every=500,
            num_preview_samples=16,
            preview_ddim_steps=25,
        )
    if variant == "paper":
        return Voronoi2DConfig(
            name="voronoi2d_paper",
            model=UNetConfig(
                spatial_dims=2,
                in_channels=1,
                channels=(128, 256, 256, 256),
                num_res_blocks=3,
                attention_levels=(2,),
                num_heads=1,
                dropout=0.1,
                learned_variance=True,
                max_time=1000.0,
            ),
            data=dataclasses.replace(data, num_examples=10_000),
            num_diffusion_steps=1000,
            loss="hybrid",
            lambda_vlb=0.001,
            batch_size=32,
            num_train_steps=100_000,
            learning_rate=1e-4,
            warmup_steps=1000,
            ema_decay=0.9999,
            log_every=100,
            checkpoint_every=5000,
            sample_every=5000,
        )
    raise ValueError(f"variant: expected 'smoke' or 'paper', got {variant!r}")
