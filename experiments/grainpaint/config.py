"""GrainPaint: Potts grain volumes -> 3D DDPM on blocks -> outpainted volume -> grain statistics.

Potts grain growth from a fine Voronoi start makes periodic training volumes, cut into
GrainPaint's aligned + boundary-centred blocks (``jaxmicro.data.make_dataset('potts', ...)``);
the model learns the continuous grain-ID field, one uniform random value in [-1, 1] per grain
(``representation='grain-values'``, GrainPaint §2.4); a 3D UNet is trained on the blocks
(``jaxmicro.train.fit``); ``jaxmicro.outpaint.outpaint`` fills a larger volume with RePaint at each
requested number of resamplings and with the DDIM variant; the grains of each volume are compared
(KL divergence of grain volume, aspect ratio and nearest-centroid distance, Table 1) with whole
Potts volumes of the same size and grain law (``block=0``), both measured without the grains cut
by the box faces (issue #16).
"""

from __future__ import annotations

import dataclasses

from jaxmicro.nn import UNetConfig
from jaxmicro.train import DataConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class GrainPaintConfig:
    """One GrainPaint experiment. Commands:

    python experiments/grainpaint/run.py --variant smoke --out runs/grainpaint_smoke
    python experiments/grainpaint/run.py --variant paper --out runs/grainpaint_paper

    ``smoke``: 16^3 blocks, tiny UNet, T = 50, a 40^3 outpainted volume. Measured on a loaded
    2-core CPU (before the library pipeline, same work): data 24 s, training 15 min, outpainting
    6 min with U = 1, 18 min with U = 10 (410 denoiser calls per block against 50) and 3 min for
    the DDIM variant (82 calls). ``paper``: 32^3 blocks, T = 250 with GrainPaint's linear betas
    1e-4 -> 0.02, U = 10, j = 1, 25 plain steps, ~6M-parameter UNet, 100^3 Potts volumes, a
    128^3 outpainted volume (GPU). (GrainPaint's code runs what its paper calls 10 resamplings
    as ``resample = 11`` of ``jaxmicro.diffusion.repaint_schedule``; see its docstring.)

    Attributes:
        train: the training run; ``run.py`` points ``train.data.path`` at the Potts blocks.
        potts_volumes, potts_size, potts_initial_grains, potts_sweeps, potts_kT: the training
            Potts simulations (cubic volumes of ``potts_size``, Voronoi start).
        boundary_blocks: boundary-centred blocks per volume (GrainPaint §2.4), besides the
            aligned ones.
        reference_volumes: whole Potts volumes of ``outpaint_size`` to compare with, with the
            training volumes' seed density (``reference_initial_grains``) and sweeps.
        outpaint_size: edge of the outpainted cube.
        resamplings: RePaint ``U`` of the DDPM runs; the DDIM run uses the largest.
        plain_tail: final steps without resampling (the DDIM run keeps the same fraction).
        ddim_steps: sub-trajectory length of the DDIM run.
        batch_size: blocks per outpainting batch.
    """

    name: str
    train: TrainConfig
    potts_volumes: int
    potts_size: int
    potts_initial_grains: int
    potts_sweeps: int
    potts_kT: float
    boundary_blocks: int
    reference_volumes: int
    outpaint_size: int
    resamplings: tuple[int, ...]
    plain_tail: int
    ddim_steps: int
    batch_size: int
    seed: int = 0

    @property
    def block(self) -> int:
        return self.train.data.shape[0]

    @property
    def reference_initial_grains(self) -> int:
        """Voronoi seeds of a reference volume: the training volumes' seeds per voxel."""
        return round(self.potts_initial_grains * (self.outpaint_size / self.potts_size) ** 3)


def get_config(variant: str = "smoke") -> GrainPaintConfig:
    """The ``smoke`` or ``paper`` configuration."""
    if variant == "smoke":
        block = 16
        return GrainPaintConfig(
            name="grainpaint_smoke",
            train=TrainConfig(
                name="grainpaint_smoke",
                model=UNetConfig(
                    spatial_dims=3,
                    in_channels=1,
                    channels=(8, 16),
                    num_res_blocks=1,
                    attention_levels=(),
                    num_groups=8,
                    dropout=0.0,
                ),
                data=DataConfig(shape=(block,) * 3, representation="grain-values"),
                num_diffusion_steps=50,
                beta_start=1e-3,
                beta_end=0.2,
                loss="l1",
                batch_size=4,
                num_train_steps=600,
                learning_rate=2e-3,
                warmup_steps=50,
                ema_decay=0.99,
                log_every=50,
                checkpoint_every=300,
                sample_every=0,
            ),
            potts_volumes=6,
            potts_size=48,
            potts_initial_grains=1500,
            potts_sweeps=40,
            potts_kT=0.5,
            boundary_blocks=20,
            reference_volumes=4,
            outpaint_size=40,
            resamplings=(1, 10),
            plain_tail=10,
            ddim_steps=10,
            batch_size=8,
        )
    if variant == "paper":
        block = 32
        return GrainPaintConfig(
            name="grainpaint_paper",
            train=TrainConfig(
                name="grainpaint_paper",
                model=UNetConfig(
                    spatial_dims=3,
                    in_channels=1,
                    channels=(32, 64, 128, 128),
                    num_res_blocks=2,
                    attention_levels=(3,),
                    num_groups=8,
                    dropout=0.0,
                ),
                data=DataConfig(shape=(block,) * 3, representation="grain-values"),
                num_diffusion_steps=250,
                beta_start=1e-4,
                beta_end=0.02,
                loss="l1",
                batch_size=32,
                num_train_steps=100_000,
                learning_rate=2e-4,
                warmup_steps=1000,
                ema_decay=0.999,
                log_every=100,
                checkpoint_every=5000,
                sample_every=0,
            ),
            potts_volumes=64,
            potts_size=100,
            potts_initial_grains=20_000,
            potts_sweeps=300,
            potts_kT=0.5,
            boundary_blocks=56,
            reference_volumes=4,
            outpaint_size=128,
            resamplings=(1, 10),
            plain_tail=25,
            ddim_steps=50,
            batch_size=24,
        )
    raise ValueError(f"variant: expected 'smoke' or 'paper', got {variant!r}")
