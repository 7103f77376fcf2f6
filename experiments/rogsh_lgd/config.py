"""ROGSH Local-Global Decomposition (Buzzy, Robertson & Kalidindi 2024): Table 1 (ROGSH-LGD vs
Euler-LGD vs a first-order baseline), Figs. 3-4 (GRF statistics) and 8-14 at CPU scale.

Commands:

    python experiments/rogsh_lgd/run.py --variant smoke --out runs/rogsh_lgd_smoke
    python experiments/rogsh_lgd/run.py --variant paper --out runs/rogsh_lgd_paper
    python experiments/rogsh_lgd/run.py --variant smoke --out DIR --reference map.ang

Per reference (``ti64``: hexagonal, elongated grains, banded texture; ``inconel``: cubic, large
irregular + small plate grains; see references.py), and per representation (``rogsh`` and the
``euler`` baseline): random patches of 2-3 grains -> a UNet (same config and budget for both)
-> LGD: a Gaussian random field with the reference's 1- and 2-point statistics, noised to t0
and refined by t0 reverse steps with the 1-point correction (``ti64``, t0 = 300 of 1000 as
§5.1), or, for ``inconel``, the local approximation of §5.2 (the diffusion from noise, t0 = T,
with the 1-point correction) -> orientations -> statistics in a full SHSH expansion.

``smoke``: 256^2 references, 32^2 (Ti64) / 48^2 (Inconel) patches, a two-level UNet (16, 32
channels), 2,000 steps of batch 16 per model (four models), 16 generated 128^2 maps per set, a
100-step sub-trajectory of the reverse diffusion. ``paper``: 1024^2 references and 128^2 / 64^2
patches as the paper, appendix A's UNets (the named ``buzzy_case1`` for Ti64, ``buzzy_case2``
for Inconel: Table 2's channels, Fourier time embedding), 200 generated 512^2 maps, all t0
steps.
``tiny``: seconds, for the tests.
Re-running continues where a run stopped.
"""

from __future__ import annotations

import dataclasses

from jaxmicro.nn import UNetConfig, unet_config
from jaxmicro.train import DataConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class ReferenceConfig:
    """One reference map and how it is generated from.

    Attributes:
        name: ``'ti64'``, ``'inconel'`` or a path to an ``.ang`` / ``.ctf`` file.
        shape: size of the synthetic map (ignored for a file).
        patch: training patch edge (2-3 grains, §4.1).
        global_model: seed the diffusion with the GRF (True, §5.1) or with noise (§5.2).
        t0: start level of the truncated diffusion (T for the local approximation).
        seed: seed of the synthetic map.
        model: the UNet of this reference's models (None: ``train.model``).
    """

    name: str
    shape: tuple[int, int]
    patch: int
    global_model: bool = True
    t0: int = 300
    seed: int = 0
    model: UNetConfig | None = None


@dataclasses.dataclass(frozen=True)
class RogshLgdConfig:
    """One ROGSH-LGD experiment.

    Attributes:
        name: run name.
        references: the reference maps.
        representations: ``'rogsh'`` (the method) and ``'euler'`` (the baseline).
        num_patches: training patches cut from each reference (random positions, periodic).
        train: the UNet run of every (reference, representation) pair; ``data`` is filled in.
        generated_shape: size of each generated map.
        num_generated: maps per generated set (paper: 200).
        num_correction: maps of the second 1-point weighting (reference-code ``1 / N``; 0: skip).
        num_ideal: maps of the ``ideal`` column (synthetic references): crops of this many
            independent maps of the reference's generator (a 1024^2 Inconel-like map takes
            about a minute on the CPU, so the paper's 200 would take hours); its set-mean rows
            carry the noise of ``num_ideal`` maps, not ``num_generated``.
        lgd_steps: sub-trajectory of the reverse diffusion (None: every step).
        batch_size: maps per sampler call.
        max_lag: half-width of the 2-point lag window of the comparison.
        num_grf: Gaussian random fields of the Figs. 3-4 check.
        seed: patch, sampling and baseline seed.
        export_name: shipped model (the first reference, ROGSH) written by ``export``.
    """

    name: str
    references: tuple[ReferenceConfig, ...]
    train: TrainConfig
    representations: tuple[str, ...] = ("rogsh", "euler")
    num_patches: int = 4096
    generated_shape: tuple[int, int] = (128, 128)
    num_generated: int = 16
    num_correction: int = 8
    num_ideal: int = 16
    lgd_steps: int | None = 100
    batch_size: int = 8
    max_lag: int = 24
    num_grf: int = 64
    seed: int = 0
    export_name: str | None = "rogsh-lgd-small"


_SMOKE = RogshLgdConfig(
    name="rogsh_lgd_smoke",
    references=(
        ReferenceConfig("ti64", (256, 256), patch=32, global_model=True, t0=300),
        ReferenceConfig("inconel", (256, 256), patch=48, global_model=False, t0=1000),
    ),
    train=TrainConfig(
        name="rogsh_lgd_smoke_unet",
        model=UNetConfig(
            in_channels=3,
            channels=(16, 32),
            num_res_blocks=1,
            attention_levels=(),
            num_groups=8,
            dropout=0.1,
        ),
        data=DataConfig(representation="identity", shape=()),
        num_diffusion_steps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        batch_size=16,
        num_train_steps=2000,
        learning_rate=1e-3,
        warmup_steps=200,
        ema_decay=0.999,
        log_every=50,
        checkpoint_every=500,
    ),
)

_PAPER = dataclasses.replace(
    _SMOKE,
    name="rogsh_lgd_paper",
    references=(
        ReferenceConfig("ti64", (1024, 1024), patch=128, t0=300),
        ReferenceConfig(
            "inconel",
            (1024, 1024),
            patch=64,
            global_model=False,
            t0=1000,
            model=unet_config("buzzy_case2"),  # appendix A, Table 2: case study 2
        ),
    ),
    train=dataclasses.replace(
        _SMOKE.train,
        name="rogsh_lgd_paper_unet",
        model=unet_config("buzzy_case1"),  # appendix A, Table 2: case study 1 (Ti64)
        batch_size=32,
        num_train_steps=100_000,
        learning_rate=2e-4,
        log_every=100,
        checkpoint_every=5000,
    ),
    num_patches=14_000,
    generated_shape=(512, 512),
    num_generated=200,
    num_correction=50,
    lgd_steps=None,
    batch_size=16,
    max_lag=64,
    num_grf=200,
    export_name=None,
)

_TINY = dataclasses.replace(
    _SMOKE,
    name="rogsh_lgd_tiny",
    references=(ReferenceConfig("ti64", (64, 64), patch=16, global_model=True, t0=8),),
    train=dataclasses.replace(
        _SMOKE.train,
        name="rogsh_lgd_tiny_unet",
        model=dataclasses.replace(_SMOKE.train.model, channels=(8,), num_groups=4),
        num_diffusion_steps=20,
        beta_start=0.005,
        beta_end=0.5,
        batch_size=8,
        num_train_steps=2,
        warmup_steps=1,
        log_every=1,
        checkpoint_every=2,
        fast_compile=True,
    ),
    num_patches=32,
    generated_shape=(32, 32),
    num_generated=2,
    num_correction=2,
    num_ideal=2,
    lgd_steps=4,
    batch_size=2,
    max_lag=4,
    num_grf=4,
)


def get_config(variant: str = "smoke") -> RogshLgdConfig:
    """The ``smoke`` (CPU), ``paper`` (GPU) or ``tiny`` (test) configuration."""
    configs = {"smoke": _SMOKE, "paper": _PAPER, "tiny": _TINY}
    if variant not in configs:
        raise ValueError(f"variant: expected one of {sorted(configs)}, got {variant!r}")
    return configs[variant]
