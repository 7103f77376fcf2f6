"""Synthetic microstructures: the training data that jaxmicro makes itself.

- Voronoi grain structures (2D/3D, periodic, seed regularity, elongation): ``voronoi``,
  ``voronoi_seeds``, ``voronoi_from_seeds``, ``empty_grains``.
- Grain orientations and the colour encoding of PolyCrysDiff: ``grain_orientations``,
  ``grain_adjacency``, ``color_grains``, ``palette``, ``ids_to_rgb``.
- Potts-model grain growth (kinetic Monte Carlo, GrainPaint's SPPARKS data) and its
  additive-manufacturing variant: ``potts``, ``potts_energy``, ``RasterScan``,
  ``melt_pool_mobility``, ``pool_centre``, ``scan_sweeps``.
- Two-phase media: ``rsa_disks`` (fibre composites), ``gaussian_two_phase``.

Every generator takes a ``jax.random.key`` first and is jittable (sizes and counts static).
Called plainly it validates its arguments and runs one compiled kernel, about as fast as under
``jax.jit`` (``benchmarks/api_overhead.py``).

Boundaries: generated fields are periodic by default (``periodic=True`` for ``voronoi`` and
``grain_adjacency``/``color_grains``; Potts, RSA disks and Gaussian fields are always periodic),
matching the descriptors' default. The grains layer (segmentation of generated or measured
volumes) defaults to ``periodic=False`` instead.
"""

from jaxmicro.synth._coloring import color_grains, grain_adjacency, ids_to_rgb, palette
from jaxmicro.synth._melt_pool import RasterScan, melt_pool_mobility, pool_centre, scan_sweeps
from jaxmicro.synth._potts import neighbour_offsets, potts, potts_energy, sublattice_moduli
from jaxmicro.synth._texture import grain_orientations
from jaxmicro.synth._two_phase import gaussian_two_phase, rsa_disks
from jaxmicro.synth._voronoi import (
    empty_grains,
    hard_core_distance,
    voronoi,
    voronoi_from_seeds,
    voronoi_seeds,
)

__all__ = [
    "RasterScan",
    "color_grains",
    "empty_grains",
    "gaussian_two_phase",
    "grain_adjacency",
    "grain_orientations",
    "hard_core_distance",
    "ids_to_rgb",
    "melt_pool_mobility",
    "neighbour_offsets",
    "palette",
    "pool_centre",
    "potts",
    "potts_energy",
    "rsa_disks",
    "scan_sweeps",
    "sublattice_moduli",
    "voronoi",
    "voronoi_from_seeds",
    "voronoi_seeds",
]
