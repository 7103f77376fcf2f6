"""GrainPaint: Potts grain volumes -> 3D DDPM on blocks -> outpainted volume -> grain statistics.

Potts grain growth from a fine Voronoi start makes periodic training volumes, cut into
GrainPaint's aligned + boundary-centred blocks (``jaxmicro.data.make_dataset('potts', ...)``);
the model learns the continuous grain-ID field, one uniform random value in [-1, 1] per grain
(``representation='grain-values'``, GrainPaint §2.4). One UNet is trained per schedule of the
study (``jaxmicro.train.fit``): GrainPaint's linear schedule and its zero-terminal-SNR rescaling.
``jaxmicro.outpaint.outpaint`` fills a larger volume with RePaint (U = 1, U = 10) and with
sub-trajectory samplers with resampling; the grains of each volume are compared with whole
Potts volumes of the same size and grain law (KL divergence of grain volume, three aspect
ratios and nearest-centroid distance, Table 1), next to the floor: the same comparison for an
independent Potts volume of the generated size. Both sides drop the grains cut by the box
faces (issue #16).

Commands (stages run in order; each continues where a previous call stopped):

    python experiments/grainpaint/run.py --variant smoke --out runs/grainpaint_smoke
    python experiments/grainpaint/run.py --variant smoke --out DIR --stage data
    python experiments/grainpaint/run.py --variant smoke --out DIR --stage study --time-limit 3
    python experiments/grainpaint/run.py --variant smoke --out DIR --stage measure  # CPU time
    python experiments/grainpaint/run.py --variant paper --out runs/grainpaint_paper
    python experiments/grainpaint/run.py --variant tiny --out DIR    # the test's few-step run
"""

from __future__ import annotations

import dataclasses

from jaxmicro.nn import UNetConfig, unet_config
from jaxmicro.train import DataConfig, TrainConfig

# GrainPaint's code schedule: T = 250, linear betas 1e-4 -> 0.02 (alpha_bar_T = 0.080).
PAPER_STEPS, PAPER_BETAS = 250, (1e-4, 0.02)


@dataclasses.dataclass(frozen=True)
class GrainPaintConfig:
    """One GrainPaint experiment.

    ``smoke``: 16^3 blocks, GrainPaint's schedule (T = 250, linear 1e-4 -> 0.02) and its
    zero-terminal-SNR rescaling (v-prediction), a 0.72M-parameter UNet (2.9 MB) per schedule,
    3000 steps of 16 blocks from 24 Potts volumes of 48^3, 64^3 outpainted volumes (125 blocks
    in 8 batches: a GPU runs a batch in the time of one block, so a run costs 8 x its calls per
    block of sequential denoiser calls). ``paper``: 32^3 blocks, the same schedules, the
    ~6M-parameter UNet (the named ``grainpaint_6m``), 100^3 Potts volumes, 128^3 outpainted
    volumes (GPU). ``tiny``: a few steps of everything, for the test. Measured times are in
    docs/grainpaint.md.

    Attributes:
        train: the training run of the first schedule; ``run.py`` points ``train.data.path`` at
            the Potts blocks and derives one run per entry of ``schedules``.
        schedules: ``TrainConfig.schedule`` names of the study; ``*_zero_snr`` ones train with
            ``parameterization='v'`` (eps carries no information about x0 at zero SNR).
        potts_volumes, potts_size, potts_initial_grains, potts_sweeps, potts_kT: the training
            Potts simulations (cubic volumes of ``potts_size``, Voronoi start).
        boundary_blocks: boundary-centred blocks per volume (GrainPaint §2.4), besides the
            aligned ones.
        reference_volumes: whole Potts volumes of ``outpaint_size`` to compare with, with the
            training volumes' seed density (``seeds_for``) and sweeps.
        outpaint_size: edge of the outpainted cube (and of the floor's independent volume).
        shipped_reference_size: edge of the Potts volume shipped as ``reference.npy``.
        resamplings: RePaint ``U`` of the full-trajectory (DDPM) runs.
        plain_tail: final steps without resampling of the full trajectory (sub-trajectories
            keep the same fraction, at least one step).
        fast: sub-trajectory samplers with resampling, ``(num_steps, U, jump, eta)`` each.
        batch_size: blocks per outpainting batch (a whole plan stage of 64^3 at 32).
        export_name: the registry model the ``export`` stage writes when no ``--export-to`` is
            given (``smoke`` only: ``paper`` and ``tiny`` export only where they are told, so
            neither replaces the shipped model).
    """

    name: str
    train: TrainConfig
    schedules: tuple[str, ...]
    potts_volumes: int
    potts_size: int
    potts_initial_grains: int
    potts_sweeps: int
    potts_kT: float
    boundary_blocks: int
    reference_volumes: int
    outpaint_size: int
    shipped_reference_size: int
    resamplings: tuple[int, ...]
    plain_tail: int
    fast: tuple[tuple[int, int, int, float], ...]
    batch_size: int
    seed: int = 0
    export_name: str | None = "grainpaint-small"

    @property
    def block(self) -> int:
        return self.train.data.shape[0]

    @property
    def reference_initial_grains(self) -> int:
        """Voronoi seeds of a reference volume: the training volumes' seeds per voxel."""
        return self.seeds_for(self.outpaint_size)

    def seeds_for(self, size: int) -> int:
        """Voronoi seeds of a cube of edge ``size`` at the training volumes' seed density."""
        return round(self.potts_initial_grains * (size / self.potts_size) ** 3)


_SMOKE = GrainPaintConfig(
    name="grainpaint_smoke",
    train=TrainConfig(
        name="grainpaint_smoke",
        model=UNetConfig(
            spatial_dims=3,
            in_channels=1,
            channels=(16, 32, 32),
            num_res_blocks=1,
            attention_levels=(),
            num_groups=8,
            dropout=0.0,
        ),
        data=DataConfig(shape=(16,) * 3, representation="grain-values"),
        num_diffusion_steps=PAPER_STEPS,
        beta_start=PAPER_BETAS[0],
        beta_end=PAPER_BETAS[1],
        loss="l1",
        batch_size=16,
        num_train_steps=3000,
        learning_rate=1e-3,
        warmup_steps=200,
        ema_decay=0.999,
        log_every=50,
        checkpoint_every=1000,
        sample_every=0,
    ),
    schedules=("linear", "linear_zero_snr"),
    potts_volumes=24,
    potts_size=48,
    potts_initial_grains=1500,
    potts_sweeps=40,
    potts_kT=0.5,
    boundary_blocks=20,
    reference_volumes=4,
    outpaint_size=64,
    shipped_reference_size=64,
    resamplings=(1, 10),
    plain_tail=25,
    fast=((25, 10, 1, 1.0), (50, 5, 5, 1.0), (50, 10, 1, 1.0)),
    batch_size=32,
)

_PAPER = dataclasses.replace(
    _SMOKE,
    name="grainpaint_paper",
    train=dataclasses.replace(
        _SMOKE.train,
        name="grainpaint_paper",
        model=unet_config("grainpaint_6m"),  # GrainPaint's ~6.4M-parameter network
        data=dataclasses.replace(_SMOKE.train.data, shape=(32,) * 3),
        batch_size=32,
        num_train_steps=100_000,
        learning_rate=2e-4,
        warmup_steps=1000,
        log_every=100,
        checkpoint_every=5000,
    ),
    potts_volumes=64,
    potts_size=100,
    potts_initial_grains=20_000,
    potts_sweeps=300,
    boundary_blocks=56,
    outpaint_size=128,
    shipped_reference_size=100,
    fast=((50, 10, 1, 1.0), (50, 5, 5, 1.0), (25, 10, 1, 1.0)),
    batch_size=24,
    export_name=None,
)

_TINY = dataclasses.replace(
    _SMOKE,
    name="grainpaint_tiny",
    train=dataclasses.replace(
        _SMOKE.train,
        name="grainpaint_tiny",
        model=dataclasses.replace(
            _SMOKE.train.model, channels=(4, 8), num_res_blocks=1, num_groups=2
        ),
        data=dataclasses.replace(_SMOKE.train.data, shape=(8,) * 3),
        num_diffusion_steps=10,
        batch_size=4,
        num_train_steps=2,
        warmup_steps=1,
        log_every=1,
        checkpoint_every=2,
        fast_compile=True,
    ),
    potts_volumes=1,
    potts_size=16,
    potts_initial_grains=200,
    potts_sweeps=2,
    boundary_blocks=2,
    reference_volumes=1,
    outpaint_size=16,
    shipped_reference_size=16,
    resamplings=(1, 2),
    plain_tail=1,
    fast=((4, 2, 1, 1.0),),
    batch_size=8,
    export_name=None,
)

_VARIANTS = {"smoke": _SMOKE, "paper": _PAPER, "tiny": _TINY}


def get_config(variant: str = "smoke") -> GrainPaintConfig:
    """The ``smoke``, ``paper`` or ``tiny`` configuration (``paper`` and ``tiny`` are the smoke
    configuration with the fields that differ replaced)."""
    if variant not in _VARIANTS:
        raise ValueError(f"variant: expected 'smoke', 'paper' or 'tiny', got {variant!r}")
    return _VARIANTS[variant]
