"""Voronoi grain structures on voxel grids (2D or 3D), periodic by default.

A tessellation is the pair (seeds, labelling): ``voronoi_seeds`` draws the seeds, whose regularity
is set by a hard core (random sequential addition), and ``voronoi_from_seeds`` labels every voxel
with its nearest seed. ``voronoi`` composes the two.

Nearest-seed search. Squared distances are separable, ``|x - s|^2 = sum_a t_a[x_a, s]`` with one
(L_a, n) table per axis (minimum image and ``stretch`` folded in), so no (voxels, seeds) distance
array is ever formed from coordinates. The grid is cut into blocks; per block, exact per-axis
minima and maxima of the tables bound every voxel's distance to every seed from below and above,
so the seeds that can be nearest to some voxel of the block are exactly those whose lower bound
does not exceed the smallest upper bound. Those seeds are compacted into ``K`` slots per block
and searched with one vectorized integer minimum per voxel; when some block needs more than ``K``
(checked at run time), the whole grid falls back to the brute-force search, so the result never
depends on ``K``.

Voxel ``i`` along an axis of length ``L`` has centre ``i + 0.5``; seeds lie in ``[0, L)``.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.synth._points import displacement, hard_core_points

# Packing fraction of hard-core balls (diameter = seed spacing) at regularity 1: about 80% of the
# RSA jamming limit (0.547 in 2D, 0.384 in 3D), which RSA still reaches in a few tries per seed.
_REFERENCE_PACKING = {2: 0.45, 3: 0.30}
_BLOCK_RANGE = {2: (8, 32), 3: (4, 16)}


def _check_shape(shape, name: str = "shape") -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"{name}: expected 2 or 3 positive sizes, got {shape}")
    return shape


def _stretch(stretch, d: int, dtype) -> np.ndarray | jax.Array:
    """Per-axis scales ``(d,)``: ones on the host by default (no eager op), else validated."""
    if stretch is None:
        return np.ones(d, dtype)
    s = jnp.asarray(stretch, dtype)
    if s.shape != (d,):
        raise ValueError(f"stretch: expected {d} per-axis scales, got shape {s.shape}")
    if _validate.is_concrete(s) and not bool(jnp.all(s > 0)):
        raise ValueError(f"stretch: scales must be positive, got {np.asarray(s)}")
    return s


def hard_core_distance(shape: Sequence[int], n_grains, regularity, stretch=None) -> jax.Array:
    """Seed hard-core distance (stretched voxel units) used by ``voronoi_seeds``.

    ``regularity * d_ref`` where ``n_grains`` balls of diameter ``d_ref`` fill a fraction 0.30 (3D)
    or 0.45 (2D) of the stretched box, but never less than twice the half-diagonal of a voxel, which
    guarantees that every seed owns at least the voxel that contains it. ``n_grains`` and
    ``regularity`` may be traced.
    """
    d = len(shape)
    s = jnp.ones(d) if stretch is None else jnp.asarray(stretch)
    volume = jnp.prod(jnp.asarray(shape) / s)
    ball = math.pi if d == 2 else 4.0 * math.pi / 3.0
    d_ref = 2.0 * (_REFERENCE_PACKING[d] * volume / (n_grains * ball)) ** (1.0 / d)
    floor = 1.001 * jnp.sqrt(jnp.sum(1.0 / s**2))
    return jnp.maximum(regularity * d_ref, floor)


def voronoi_seeds(
    key: jax.Array,
    shape: Sequence[int],
    n_grains,
    *,
    regularity=0.0,
    stretch=None,
    periodic: bool = True,
    capacity: int | None = None,
    dtype=None,
) -> jax.Array:
    """Seeds of a Voronoi tessellation: a hard-core point process by random sequential addition.

    ``regularity`` 0 gives (up to the one-voxel core below) Poisson seeds and irregular cells;
    towards 1 the hard core grows to the spacing at which balls of that diameter would fill 30% of
    the volume (45% of the area in 2D), and cells become nearly equal and equiaxed. PolyCrysDiff
    used 0.5. The core never falls below twice the voxel half-diagonal, so every grain owns voxels.
    If the box is too crowded for the core (many grains on a coarse grid), the remaining seeds are
    placed without it after 10,000 consecutive rejections.

    Args:
        key: a ``jax.random.key``.
        shape: grid shape, 2 or 3 sizes (voxels); static.
        n_grains: number of seeds; static unless ``capacity`` is given.
        regularity: in [0, 1].
        stretch: per-axis metric scale, shape (d,); distances along axis ``a`` are divided by
          ``stretch[a]``, so grains are ``stretch[a]`` times longer along it (columnar grains: e.g.
          ``(1, 1, 3)``).
        periodic: minimum-image distances (seeds near a face own voxels at the opposite face).
        capacity: static number of rows of the result; then ``n_grains`` (<= capacity) may be traced
          (one compilation for a range of grain counts) and rows ``>= n_grains`` are unused zeros.
        dtype: floating dtype of the seeds (default: JAX's default float).

    Returns:
        Seed coordinates in voxel units, shape (capacity or n_grains, d), in ``[0, L_a)``.

    References: PolyCrysDiff §4.1 (Voronoi data, regularity 0.5); Torquato, Random Heterogeneous
    Materials (2002), ch. 3 (random sequential addition).
    """
    shape = _check_shape(shape)
    if _validate.is_concrete(n_grains):
        voxels = math.prod(shape)
        if np.ndim(n_grains) or float(n_grains) != int(n_grains):
            raise ValueError(f"n_grains: expected an integer count, got {n_grains}")
        if int(n_grains) > voxels:
            raise ValueError(
                f"n_grains: {n_grains} grains cannot each own a voxel of a grid of shape "
                f"{shape} ({voxels} voxels)"
            )
    rows = int(n_grains) if capacity is None else int(capacity)
    if _validate.is_concrete(n_grains) and not 1 <= int(n_grains) <= rows:
        raise ValueError(f"n_grains: expected a count in 1..{rows}, got {n_grains}")
    _validate.check_range(regularity, "regularity", 0.0, 1.0)
    dtype = jnp.result_type(float) if dtype is None else dtype
    s = _stretch(stretch, len(shape), dtype)
    return _seeds(key, n_grains, regularity, s, shape=shape, rows=rows, periodic=bool(periodic))


@functools.partial(jax.jit, static_argnames=("shape", "rows", "periodic"))
def _seeds(key, n_grains, regularity, s, *, shape, rows, periodic):
    """The RSA kernel of ``voronoi_seeds``; ``n_grains`` (<= rows) seeds, rows beyond are zero."""
    n_grains = jnp.asarray(n_grains, jnp.int32)
    regularity = jnp.asarray(regularity, s.dtype)
    core = hard_core_distance(shape, n_grains.astype(s.dtype), regularity, s)
    seeds, _, _ = hard_core_points(
        key,
        jnp.asarray(shape, s.dtype),
        rows,
        core,
        scale=s,
        periodic=periodic,
        max_rejections=10000,
        relax=True,
        n_target=n_grains,
    )
    return seeds


def _axis_tables(seeds, shape, lengths, s, periodic):
    """Per-axis squared (stretched, minimum-image) distances, each (lengths[a], n)."""
    tables = []
    for a, length in enumerate(lengths):
        x = jnp.arange(length, dtype=seeds.dtype) + 0.5
        box = jnp.asarray(shape[a], seeds.dtype)
        t = displacement(x[:, None], seeds[None, :, a], box, periodic) / s[a]
        tables.append(t * t)
    return tables


def _outer_sum(parts):
    """``sum_a parts[a]`` broadcast over the spatial axes; parts[a] is (..., L_a, K)."""
    d = len(parts)
    out = 0
    for a, p in enumerate(parts):
        index = [slice(None)] * (p.ndim - 2) + [None] * d + [slice(None)]
        index[p.ndim - 2 + a] = slice(None)
        out = out + p[tuple(index)]
    return out


def _brute_force(tables, shape):
    """Exact nearest seed over all seeds (fallback), one grid row at a time."""
    d = len(shape)
    n = tables[0].shape[1]
    rest = sum(
        tables[a][: shape[a]].T.reshape((n,) + (1,) * (a - 1) + (shape[a],) + (1,) * (d - 1 - a))
        for a in range(1, d)
    )
    pos = jnp.arange(n, dtype=jnp.int32).reshape((n,) + (1,) * (d - 1))

    def row(r):
        dist = r.reshape((n,) + (1,) * (d - 1)) + rest
        closest = jnp.min(dist, axis=0)
        return jnp.min(jnp.where(dist == closest, pos, n), axis=0)

    return jax.lax.map(row, tables[0][: shape[0]])


def _block_and_candidates(shape, n, stretch) -> tuple[tuple[int, ...], int]:
    """Block shape (about one seed spacing, clamped) and candidate count K per block."""
    d = len(shape)
    s = np.ones(d) if stretch is None else np.asarray(stretch, float)
    extent = np.asarray(shape) / s
    spacing = (np.prod(extent) / n) ** (1.0 / d)
    lo, hi = _BLOCK_RANGE[d]
    block = tuple(
        int(min(length, np.clip(2 ** round(math.log2(max(spacing * sa, 1.0))), lo, hi)))
        for length, sa in zip(shape, s, strict=True)
    )
    # Expected seeds within the block grown by two seed spacings, with a safety factor of 4.
    grown = np.prod(np.asarray(block) / s + 2.0 * spacing)
    return block, int(min(n, max(16, math.ceil(4.0 * n * grown / np.prod(extent)))))


def voronoi_from_seeds(
    seeds: jax.Array,
    shape: Sequence[int],
    *,
    stretch=None,
    periodic: bool = True,
    n_active=None,
) -> jax.Array:
    """Labels every voxel with its nearest seed (stretched metric, minimum image if periodic).

    Args:
        seeds: seed coordinates in voxel units, shape (n, d), d = len(shape).
        shape: grid shape, 2 or 3 sizes; static.
        stretch: per-axis metric scale, shape (d,) (see ``voronoi_seeds``).
        periodic: minimum-image distances.
        n_active: only the first ``n_active`` seeds take part (may be traced; default all).

    Returns:
        Grain IDs, int32, shape ``shape``, values in 0..n-1 (0..n_active-1). The nearest seed,
        with squared distances closer than a relative 2^-15 (float32) counting as ties.

    References: PolyCrysDiff §4.1 (Voronoi tessellation of seeds).
    """
    shape = _check_shape(shape)
    d = len(shape)
    seeds = _validate.as_float_array(seeds, "seeds")
    _validate.check_ndim(seeds, "seeds", 2, "(n, d)")
    _validate.check_trailing(seeds, "seeds", d)
    _validate.check_finite(seeds, "seeds")
    n = seeds.shape[0]
    s = _stretch(stretch, d, seeds.dtype)
    s_np = np.asarray(s) if _validate.is_concrete(s) else None
    block, k = _block_and_candidates(shape, n, s_np)
    active = jnp.asarray(n if n_active is None else n_active, jnp.int32)
    return _label(seeds, s, active, shape=shape, block=block, k=k, periodic=bool(periodic))


@functools.partial(jax.jit, static_argnames=("shape", "block", "k", "periodic"))
def _label(seeds, s, n_active, *, shape, block, k, periodic):
    """The nearest-seed kernel of ``voronoi_from_seeds`` (arguments validated there)."""
    d = len(shape)
    n = seeds.shape[0]
    n_blocks = tuple(-(-length // b) for length, b in zip(shape, block, strict=True))
    padded = tuple(nb * b for nb, b in zip(n_blocks, block, strict=True))
    tables = _axis_tables(seeds, shape, padded, s, periodic)
    tables[0] = jnp.where(jnp.arange(n) < n_active, tables[0], jnp.inf)
    per_block = [t.reshape(nb, b, n) for t, nb, b in zip(tables, n_blocks, block, strict=True)]
    lower = _outer_sum([p.min(axis=1) for p in per_block]).reshape(-1, n)
    upper = _outer_sum([p.max(axis=1) for p in per_block]).reshape(-1, n)
    needed = lower <= jnp.min(upper, axis=1, keepdims=True)
    complete = jnp.all(jnp.sum(needed, axis=1) <= k)
    # Compact each block's needed seeds into K slots; empty slots point at a padding seed n whose
    # tables are +inf.
    slot = jnp.where(needed, jnp.cumsum(needed, axis=1) - 1, k)
    rows = jnp.arange(lower.shape[0])[:, None]
    cand = jnp.full((lower.shape[0], k), n, jnp.int32)
    cand = cand.at[rows, slot].set(jnp.arange(n, dtype=jnp.int32), mode="drop")
    per_block = [jnp.pad(p, ((0, 0), (0, 0), (0, 1)), constant_values=jnp.inf) for p in per_block]

    index = jnp.unravel_index(jnp.arange(lower.shape[0]), n_blocks)
    # (blocks, K, b_a): each candidate's table restricted to the block, candidates leading so that
    # the reduction over them is elementwise.
    parts = [
        jnp.take_along_axis(p[i], cand[:, None, :], axis=2).transpose(0, 2, 1)
        for p, i in zip(per_block, index, strict=True)
    ]
    int_dtype = jnp.int32 if seeds.dtype == jnp.float32 else jnp.int64
    bits = max(1, math.ceil(math.log2(k)))
    low = (1 << bits) - 1
    pos = jnp.arange(k, dtype=int_dtype).reshape((k,) + (1,) * d)

    def nearest(args):
        *ps, c = args
        dist = sum(
            p.reshape(p.shape[:2] + (1,) * a + p.shape[2:] + (1,) * (d - 1 - a))
            for a, p in enumerate(ps)
        )
        # The squared distance's low mantissa bits are replaced by the candidate's position, so one
        # integer minimum (which vectorizes, unlike argmin) returns the nearest candidate; distances
        # closer than a relative 2^(bits - 23) (float32) count as ties, won by the lower position.
        key = (jax.lax.bitcast_convert_type(dist, int_dtype) & ~low) | pos
        best = jnp.min(key, axis=1) & low
        return jax.vmap(lambda cc, bb: cc[bb])(c, best)

    chunk = max(1, min(lower.shape[0], 2**21 // (k * math.prod(block))))
    n_chunks = -(-lower.shape[0] // chunk)
    pad = n_chunks * chunk - lower.shape[0]
    args = [jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)) for x in (*parts, cand)]
    args = [x.reshape(n_chunks, chunk, *x.shape[1:]) for x in args]
    ids = jax.lax.map(nearest, tuple(args)).reshape(-1, *block)[: lower.shape[0]]
    ids = ids.reshape(*n_blocks, *block)
    order = [ax for a in range(d) for ax in (a, d + a)]
    ids = ids.transpose(order).reshape(padded)[tuple(slice(0, length) for length in shape)]
    ids = ids.astype(jnp.int32)
    if k == n:
        return ids
    return jax.lax.cond(complete, lambda: ids, lambda: _brute_force(tables, shape))


def empty_grains(ids: jax.Array, n_grains: int) -> jax.Array:
    """Number of IDs in ``0..n_grains-1`` that own no voxel (int32 scalar; jittable)."""
    return _empty_grains(jnp.asarray(ids), int(n_grains))


@functools.partial(jax.jit, static_argnames="n_grains")
def _empty_grains(ids: jax.Array, n_grains: int) -> jax.Array:
    counts = jnp.bincount(jnp.ravel(ids), length=n_grains)
    return jnp.sum(counts == 0).astype(jnp.int32)


def voronoi(
    key: jax.Array,
    shape: Sequence[int],
    n_grains,
    *,
    regularity=0.0,
    stretch=None,
    periodic: bool = True,
    capacity: int | None = None,
) -> jax.Array:
    """Voronoi grain-ID field: ``voronoi_from_seeds(voronoi_seeds(key, ...), ...)``.

    Jittable with ``static_argnames=("shape", "n_grains", "periodic")`` (``stretch`` as a tuple),
    or with ``n_grains`` traced when ``capacity`` is given. Called eagerly it warns
    (``UserWarning``) when some grain owns no voxel, which the seeds' hard core prevents unless the
    grid is too coarse for ``n_grains``.

    Args:
        key: a ``jax.random.key``.
        shape: grid shape, 2 or 3 sizes (voxels).
        n_grains: number of grains.
        regularity: seed regularity in [0, 1] (see ``voronoi_seeds``).
        stretch: per-axis metric scale, shape (d,): grains ``stretch[a]`` times longer along axis a.
        periodic: periodic tessellation (minimum image).
        capacity: static bound on ``n_grains`` (see ``voronoi_seeds``).

    Returns:
        Grain IDs, int32, shape ``shape``, values in 0..n_grains-1.

    References: PolyCrysDiff §4.1.
    """
    seeds = voronoi_seeds(
        key,
        shape,
        n_grains,
        regularity=regularity,
        stretch=stretch,
        periodic=periodic,
        capacity=capacity,
    )
    active = None if capacity is None else n_grains
    ids = voronoi_from_seeds(seeds, shape, stretch=stretch, periodic=periodic, n_active=active)
    if _validate.is_concrete(ids) and _validate.is_concrete(n_grains):
        missing = int(empty_grains(ids, int(n_grains)))
        if missing:
            warnings.warn(
                f"voronoi: {missing} of {n_grains} grains own no voxel on a grid of shape "
                f"{tuple(shape)}; use a finer grid or fewer grains",
                stacklevel=2,
            )
    return ids
