"""SHSH-MCR studies on a synthetic cubic polycrystal with columnar grains (mcr-shsh §3).

The reference is a periodic Voronoi polycrystal whose grains are ``stretch[0]`` times longer
along axis 0 (vertical columns), with uniformly random cubic orientations; the 3D studies use a
volume of the same kind. Studies (figure numbers of the paper):

- ``ablation`` (Fig. 6): one descriptor at a time (mean variation, two-point, three-point
  variogram);
- ``weights`` (Figs. 7-8): two-point : three-point weight ratios, then the mean-variation weight
  over four orders of magnitude;
- ``convergence`` (Fig. 9): snapshots along one optimization;
- ``variogram`` (Fig. 12): multigrid 2D reconstruction and the relative error of its variogram
  per lag (share of lags below 5%);
- ``volume`` (Fig. 13): a 3D volume from three orthogonal 2D sections (slice loss), checked
  against the 3D statistics of the volume the sections came from;
- ``optimizers`` (Fig. 18): L-BFGS-B, L-BFGS, Adam and SGD;
- ``seeds`` (Fig. 19): the spread of final losses over ten random starts.

Commands (``smoke``: a few minutes on 2 CPU cores; ``paper``: GPU scale):

    python experiments/mcr_shsh/run.py smoke runs/mcr_shsh_smoke
    python experiments/mcr_shsh/run.py paper runs/mcr_shsh_paper
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MCRSHSHConfig:
    """One variant of the studies. Commands:

    python experiments/mcr_shsh/run.py smoke runs/mcr_shsh_smoke
    python experiments/mcr_shsh/run.py paper runs/mcr_shsh_paper

    Weights are ``(two_point, three_point_variogram, mean_variation)`` on the scale-free loss
    of ``jaxmicro.reconstruct.loss`` (each term a relative squared error).
    """

    name: str
    shape: tuple[int, int]
    n_grains: int
    volume_shape: tuple[int, int, int]
    volume_grains: int
    stretch: float = 3.0
    regularity: float = 0.5
    symmetry: str = "cubic"
    degrees: tuple[int, ...] = (8,)
    window: int = 6
    three_point_lag: int = 3
    weights: tuple[float, float, float] = (1.0, 0.1, 0.01)
    ratios: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    variation_weights: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
    max_iter: int = 150
    levels: int = 2
    segments: int = 4
    optimizers: tuple[str, ...] = ("lbfgsb", "lbfgs", "adam", "sgd")
    optimizer_iter: int = 150
    learning_rates: tuple[tuple[str, float], ...] = (("adam", 0.01), ("sgd", 30.0))
    n_seeds: int = 10
    volume_window: int = 4
    volume_iter: int = 100
    seed: int = 0


_SMOKE = MCRSHSHConfig(
    name="mcr_shsh_smoke",
    shape=(32, 32),
    n_grains=10,
    volume_shape=(20, 20, 20),
    volume_grains=12,
)

_PAPER = dataclasses.replace(
    _SMOKE,
    name="mcr_shsh_paper",
    shape=(128, 128),
    n_grains=60,
    volume_shape=(64, 64, 64),
    volume_grains=120,
    window=16,
    max_iter=1000,
    levels=3,
    segments=10,
    optimizer_iter=1000,
    volume_window=12,
    volume_iter=1000,
)


def get_config(variant: str = "smoke") -> MCRSHSHConfig:
    """The ``smoke`` (32x32, 20^3, 150 iterations) or ``paper`` (128x128, 64^3, 1000) variant."""
    variants = {"smoke": _SMOKE, "paper": _PAPER}
    if variant not in variants:
        raise ValueError(f"variant: expected 'smoke' or 'paper', got {variant!r}")
    return variants[variant]
