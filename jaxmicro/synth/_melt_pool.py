"""A melt pool moving along a raster scan path, as the site mobility of additive-manufacturing
Potts simulations (GrainPaint §3.3, eqs. 18-19).

Axes: the first axis is the scan direction, the last the build direction (2D: (scan, build); 3D:
(scan, hatch, build)). The pool is the lower half of an ellipsoid centred on the top surface of
the current layer. Scan lines run along the first axis over the box plus the pool's length on
either side, alternating in direction (serpentine); in 3D consecutive lines are ``hatch`` apart
along the second axis; when a layer is done the top surface rises by ``layer``. Sites above the top
surface (not yet deposited) do not move; below it the mobility is

    M(x) = 1 - d(x) / haz  for d(x) <= haz,   0 beyond (eq. 19),

with ``d`` the distance to the pool (0 inside). ``d`` is measured along the ray from the pool's
centre (exact for a spherical pool, a close approximation for an elongated one).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp


class RasterScan(NamedTuple):
    """Scan strategy and melt-pool geometry, lengths in voxels (static configuration).

    Attributes:
        speed: pool speed along a scan line, voxels per Monte Carlo sweep.
        hatch: spacing of scan lines along the second axis (3D only).
        layer: layer thickness along the build (last) axis.
        pool: pool semi-axes (along scan, across scan, depth) in 3D; (along scan, depth) in 2D.
        haz: heat-affected-zone width ``mz`` of eq. 19.
    """

    speed: float = 2.0
    hatch: float = 8.0
    layer: float = 6.0
    pool: tuple[float, ...] = (10.0, 6.0, 6.0)
    haz: float = 6.0


def _lines_per_layer(shape: Sequence[int], scan: RasterScan) -> int:
    return 1 if len(shape) == 2 else math.ceil(shape[1] / scan.hatch)


def _line_length(shape: Sequence[int], scan: RasterScan) -> float:
    return shape[0] + 2.0 * scan.pool[0]


def _pool_axes(shape: Sequence[int], scan: RasterScan) -> tuple[float, ...]:
    if len(scan.pool) != len(shape):
        raise ValueError(
            f"scan.pool: expected {len(shape)} semi-axes for a {len(shape)}D grid, got {scan.pool}"
        )
    return tuple(float(p) for p in scan.pool)


def scan_sweeps(shape: Sequence[int], scan: RasterScan | None = None) -> int:
    """Sweeps needed for the pool to scan every layer of a box of ``shape`` (default scan)."""
    scan = RasterScan() if scan is None else scan
    layers = math.ceil(shape[-1] / scan.layer)
    length = layers * _lines_per_layer(shape, scan) * _line_length(shape, scan)
    return math.ceil(length / scan.speed)


def pool_centre(shape: Sequence[int], t, scan: RasterScan | None = None) -> jax.Array:
    """Centre of the melt pool after ``t`` sweeps (voxel units), shape (d,) float32; jittable."""
    scan = RasterScan() if scan is None else scan
    _pool_axes(shape, scan)
    n_lines = _lines_per_layer(shape, scan)
    length = _line_length(shape, scan)
    s = jnp.asarray(t, jnp.float32) * scan.speed
    line = jnp.floor(s / length)
    along = s - line * length
    x = jnp.where(line % 2 == 0, along - scan.pool[0], shape[0] + scan.pool[0] - along)
    layer = jnp.floor(line / n_lines)
    top = (layer + 1.0) * scan.layer
    if len(shape) == 2:
        return jnp.stack([x, top])
    y = (line - layer * n_lines + 0.5) * scan.hatch
    return jnp.stack([x, y, top])


def melt_pool_mobility(shape: Sequence[int], t, scan: RasterScan | None = None) -> jax.Array:
    """Site mobility M(x) in [0, 1] with the pool where it is after ``t`` sweeps (eq. 19).

    Use as ``potts(..., mobility=lambda t: melt_pool_mobility(shape, t, scan))`` for
    ``scan_sweeps(shape, scan)`` sweeps, starting from a fine structure (e.g. a Voronoi field with
    small grains); grains grow behind the moving pool and elongate along the thermal gradient.

    Args:
        shape: grid shape (2 or 3 sizes).
        t: sweep index (int, may be traced).
        scan: scan strategy and pool geometry (default ``RasterScan()``).

    Returns:
        Mobility, float32 array of shape ``shape``.

    References: GrainPaint (Hoffman et al. 2025) §3.3, eqs. 18-19; Rodgers et al., Comput. Mater.
    Sci. 135, 78 (2017) (SPPARKS additive-manufacturing model).
    """
    scan = RasterScan() if scan is None else scan
    shape = tuple(int(n) for n in shape)
    _pool_axes(shape, scan)
    return _melt_pool_mobility(t, shape=shape, scan=scan)


@functools.partial(jax.jit, static_argnames=("shape", "scan"))
def _melt_pool_mobility(t, *, shape: tuple[int, ...], scan: RasterScan) -> jax.Array:
    t = jnp.asarray(t, jnp.float32)
    axes = jnp.asarray(_pool_axes(shape, scan), jnp.float32)
    centre = pool_centre(shape, t, scan)
    grids = jnp.meshgrid(*[jnp.arange(n, dtype=jnp.float32) + 0.5 for n in shape], indexing="ij")
    rel = [g - c for g, c in zip(grids, centre, strict=True)]
    r = jnp.sqrt(sum((x / a) ** 2 for x, a in zip(rel, axes, strict=True)))
    dist = jnp.sqrt(sum(x * x for x in rel)) * jnp.maximum(1.0 - 1.0 / jnp.maximum(r, 1e-6), 0.0)
    mobility = jnp.clip(1.0 - dist / scan.haz, 0.0, 1.0)
    return jnp.where(grids[-1] <= centre[-1], mobility, 0.0)
