"""Face neighbours on voxel grids, shared by generators, datasets, grains and reports.

A face-neighbour pair is voxel ``i`` and voxel ``i + 1`` along one axis. With ``periodic`` the
last slice pairs with the first (every voxel starts one pair per axis); otherwise the pairs stop
at the edge (one fewer per row). Every neighbour computation goes through
:func:`face_neighbours`; :func:`face_pairs` joins the axes and :func:`boundary_mask` marks the
voxels of unequal pairs. NumPy input is computed with NumPy on the host; JAX arrays (tracers
included, so the functions work under ``jit`` and ``vmap``) with ``jax.numpy``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Grid = np.ndarray | jax.Array


def _xp(x):
    """``jax.numpy`` for JAX arrays and tracers, else ``numpy``."""
    return jnp if isinstance(x, jax.Array) else np


def face_neighbours(ids: Grid, axis: int, periodic: bool) -> tuple[Grid, Grid]:
    """Values of every face-neighbour pair along ``axis``: voxel ``i`` and voxel ``i + 1``.

    Args:
        ids: array of shape (*spatial) (trailing axes beyond ``axis`` are carried along).
        axis: the axis along which neighbours are paired.
        periodic: pair the last slice with the first; otherwise the pairs stop at the edge.

    Returns:
        ``(a, b)``, two arrays of the same shape: ``ids.shape`` if periodic, else one shorter
        along ``axis``. Entry ``k`` of ``a`` is the first voxel of pair ``k``, of ``b`` its
        successor.
    """
    if periodic:
        return ids, _xp(ids).roll(ids, -1, axis=axis)
    before = (slice(None),) * axis
    return ids[(*before, slice(None, -1))], ids[(*before, slice(1, None))]


def face_pairs(ids: Grid, periodic: bool) -> tuple[Grid, Grid]:
    """Values of every face-neighbour pair along all axes, flattened.

    Args:
        ids: array of shape (*spatial), at least one axis.
        periodic: as in :func:`face_neighbours`.

    Returns:
        ``(a, b)``, two 1-D arrays of length P (the number of pairs): the pairs of
        :func:`face_neighbours` for axis 0, then axis 1, ..., each in C order.
    """
    xp = _xp(ids)
    pairs = [face_neighbours(ids, axis, periodic) for axis in range(ids.ndim)]
    return (
        xp.concatenate([a.ravel() for a, _ in pairs]),
        xp.concatenate([b.ravel() for _, b in pairs]),
    )


def _either_end(flags: Grid, axis: int, periodic: bool) -> Grid:
    """Voxels at either end of a flagged pair: ``flags`` in :func:`face_neighbours`' layout
    along ``axis`` -> bool (*spatial)."""
    xp = _xp(flags)
    if periodic:
        return flags | xp.roll(flags, 1, axis=axis)
    edge = list(flags.shape)
    edge[axis] = 1
    none = xp.zeros(edge, bool)
    return xp.concatenate([flags, none], axis=axis) | xp.concatenate([none, flags], axis=axis)


def boundary_mask(labels: Grid, periodic: bool) -> Grid:
    """Voxels with a face neighbour of another label: both voxels of every unequal pair.

    Args:
        labels: array of shape (*spatial), at least one axis.
        periodic: neighbours across opposite faces count; otherwise the box faces are no
            boundary.

    Returns:
        bool array of shape (*spatial).
    """
    labels = labels if isinstance(labels, jax.Array) else np.asarray(labels)
    out = _xp(labels).zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        a, b = face_neighbours(labels, axis, periodic)
        out = out | _either_end(a != b, axis, periodic)
    return out
