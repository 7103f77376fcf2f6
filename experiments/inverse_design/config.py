"""Gradient-based inverse design through differentiable FFT homogenization (issue #20).

Three designs, each a stage of ``run.py``:

- ``two_phase``: a two-phase microstructure (phase contrast 1:10) whose effective conductivity
  has a target anisotropy ``k_00 / k_11``, by ``jaxmicro.reconstruct`` with the property as an
  ``extra_loss`` next to an S2 loss against one member of a reference family (thresholded
  anisotropic Gaussian fields), so that the result stays statistically plausible. Compared with
  the plain S2 reconstruction from the same start and with the family's own spread.
- ``polycrystal``: grain orientations on a fixed periodic Voronoi structure that give a target
  Young's modulus along the build direction (axis 2 = z) for copper, optimized from a random
  texture by jaxmicro's L-BFGS through ``effective_stiffness``.
- ``guided``: a trained two-phase diffusion model (the shipped ``lee-yun-fiber``; the ``tiny``
  variant trains its own 16x16 model) sampled with ``jaxmicro.diffusion.property_guidance``
  toward a target conductivity anisotropy, unguided vs guided at several scales.

Commands:

    python experiments/inverse_design/run.py --variant smoke --out runs/inverse_design_smoke
    python experiments/inverse_design/run.py --variant smoke --out runs/inverse_design_smoke \\
        --stages guided --model lee-yun-fiber
    python experiments/inverse_design/run.py --variant paper --out runs/inverse_design_paper

``smoke`` is sized for a few minutes per design on 2 CPU cores; ``paper`` is the same study at
larger grids and sample counts; ``tiny`` (tests) runs every stage in seconds, numbers meaningless.
"""

from __future__ import annotations

import dataclasses

from jaxmicro.nn import UNetConfig
from jaxmicro.train import DataConfig, TrainConfig

STAGES = ("two_phase", "polycrystal", "guided")


@dataclasses.dataclass(frozen=True)
class InverseDesignConfig:
    """One variant of the three designs.

    Attributes:
        name: run name.
        seed: seed of every random draw (reference family, grains, starts, samples).
        contrast: conductivities ``(k_matrix, k_inclusion)`` of phases 0 and 1.
        cg_tol: relative CG residual of every homogenization solve.
        cg_maxiter: CG iteration budget (under ``jit`` the solvers do not raise; the reported
            ``SolveInfo`` says whether the final solves converged).
        tp_shape: grid of the two-phase design (2D: axes (0, 1); 3D: the ratio is k_00 / k_22).
        tp_lengths: correlation lengths (voxels) of the reference family, per axis.
        tp_fraction: volume fraction of phase 1 (exact in each family member).
        tp_family: family members besides the reference (the statistical floor of S2).
        tp_targets: target ratios ``k_00 / k_last``.
        tp_max_lag: S2 lag window of the descriptor loss.
        tp_variation: weight of the mean-variation term (sharpens interfaces).
        tp_property_weight: weight ``w`` of ``w (log ratio - log target)^2``.
        tp_grey_weight: weight of ``mean(m (1 - m))`` in every run (plain included): pushes
            the soft indicators ``m`` to 0 or 1, so that the thresholded field keeps the ratio.
        tp_polish_iter: L-BFGS-B iterations of a full-resolution continuation from the result
            with grey weight ``tp_polish_grey`` (0: none).
        tp_polish_grey: grey weight of the continuation.
        tp_levels: multigrid levels of the reconstruction.
        tp_max_iter: L-BFGS-B iterations per level.
        tp_tolerance: relative error of the ratio counted as reaching the target.
        pc_shape: grid of the polycrystal (3D).
        pc_grains: grains of the Voronoi structure.
        pc_constants: cubic single-crystal constants ``(C11, C12, C44)``, GPa (copper).
        pc_targets: target Young's moduli along axis 2 (GPa).
        pc_max_iter: L-BFGS iterations.
        pc_tolerance: relative error of ``E_z`` counted as reaching the target.
        gd_model: shipped model name or run folder; ``''`` trains ``gd_train`` first.
        gd_train: the tiny model trained when ``gd_model`` is empty.
        gd_fiber_radius, gd_fiber_fraction: RSA disks of the reference images when the model
            ships none (``reference.npy``).
        gd_target: target ratio ``k_00 / k_11`` of the guided samples.
        gd_scales: guidance weights (0 = unguided).
        gd_samples: samples per scale.
        gd_steps: DDIM steps (smoke: 25, CPU time; every step differentiates the UNet).
        gd_eta: DDIM stochasticity; None takes the model's measured choice
            (``Model.ddim_eta``: its card's ``sampling.eta``, 0 without a card).
        gd_batch: samples per sampler call.
    """

    name: str
    seed: int = 0
    contrast: tuple[float, float] = (1.0, 10.0)
    cg_tol: float = 1e-5
    cg_maxiter: int = 200
    tp_shape: tuple[int, ...] = (64, 64)
    tp_lengths: tuple[float, ...] = (4.0, 2.0)
    tp_fraction: float = 0.4
    tp_family: int = 8
    tp_targets: tuple[float, ...] = (2.0, 3.0)
    tp_max_lag: int = 12
    tp_variation: float = 0.1
    tp_property_weight: float = 10.0
    tp_grey_weight: float = 0.03
    tp_polish_iter: int = 100
    tp_polish_grey: float = 0.3
    tp_levels: int = 2
    tp_max_iter: int = 300
    tp_tolerance: float = 0.02
    pc_shape: tuple[int, int, int] = (24, 24, 24)
    pc_grains: int = 64
    pc_constants: tuple[float, float, float] = (168.4, 121.4, 75.4)
    pc_targets: tuple[float, ...] = (80.0, 100.0, 160.0, 180.0)
    pc_max_iter: int = 40
    pc_tolerance: float = 0.01
    gd_model: str = "lee-yun-fiber"
    gd_train: TrainConfig | None = None
    gd_fiber_radius: float = 4.0
    gd_fiber_fraction: float = 0.35
    gd_target: float = 1.5
    gd_scales: tuple[float, ...] = (0.0, 500.0, 2000.0)
    gd_samples: int = 32
    gd_steps: int = 25
    gd_eta: float | None = None
    gd_batch: int = 32


_SMOKE = InverseDesignConfig(name="inverse_design_smoke")

_PAPER = dataclasses.replace(
    _SMOKE,
    name="inverse_design_paper",
    cg_tol=1e-6,
    cg_maxiter=500,
    tp_shape=(64, 64, 64),
    tp_lengths=(4.0, 4.0, 2.0),
    tp_family=16,
    tp_targets=(0.75, 1.5, 2.0, 3.0),
    tp_levels=3,
    tp_max_iter=500,
    pc_shape=(64, 64, 64),
    pc_grains=500,
    pc_targets=(80.0, 100.0, 140.0, 160.0, 180.0),
    pc_max_iter=100,
    gd_scales=(0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0),
    gd_samples=256,
    gd_steps=100,
)

# The test of the whole path: every stage in seconds on 16^2 / 8^3 grids (numbers meaningless).
_TINY = dataclasses.replace(
    _SMOKE,
    name="inverse_design_tiny",
    tp_shape=(16, 16),
    tp_lengths=(2.0, 1.0),
    tp_family=2,
    tp_max_lag=4,
    tp_levels=1,
    tp_max_iter=20,
    tp_polish_iter=5,
    pc_shape=(8, 8, 8),
    pc_grains=6,
    pc_targets=(150.0,),
    pc_max_iter=5,
    gd_model="",
    gd_train=TrainConfig(
        name="inverse_design_tiny_model",
        model=UNetConfig(
            spatial_dims=2,
            in_channels=1,
            channels=(4, 8),
            num_res_blocks=1,
            attention_levels=(),
            num_heads=1,
            num_groups=2,
            dropout=0.0,
            learned_variance=True,
            max_time=10.0,
        ),
        data=DataConfig(
            kind="rsa",
            shape=(16, 16),
            num_examples=16,
            params=(("radius", 2.0), ("volume_fraction", 0.35)),
            representation="binary",
        ),
        num_diffusion_steps=10,
        beta_start=1e-3,
        beta_end=0.2,
        loss="hybrid",
        batch_size=4,
        num_train_steps=2,
        warmup_steps=1,
        log_every=1,
        checkpoint_every=100,
        sample_every=0,
        fast_compile=True,
    ),
    gd_fiber_radius=2.0,
    gd_scales=(0.0, 100.0),
    gd_samples=4,
    gd_steps=4,
    gd_batch=4,
)


def get_config(variant: str = "smoke") -> InverseDesignConfig:
    """The ``smoke`` (CPU, minutes per design), ``paper`` (larger) or ``tiny`` (tests) variant."""
    configs = {"smoke": _SMOKE, "paper": _PAPER, "tiny": _TINY}
    if variant not in configs:
        raise ValueError(f"variant: expected one of {sorted(configs)}, got {variant!r}")
    return configs[variant]
