"""Face neighbours on voxel grids (host-side NumPy), shared by generators, datasets and grains.

A face-neighbour pair is voxel ``i`` and voxel ``i + 1`` along one axis. With ``periodic`` the
last slice pairs with the first (every voxel starts one pair per axis); otherwise the pairs stop
at the edge (one fewer per row). Every host-side neighbour computation goes through
:func:`face_neighbours`; :func:`face_pairs` joins the axes and :func:`boundary_mask` marks the
voxels of unequal pairs.
"""

from __future__ import annotations

import numpy as np


def face_neighbours(ids: np.ndarray, axis: int, periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Values of every face-neighbour pair along ``axis``: voxel ``i`` and voxel ``i + 1``.

    Args:
        ids: array of shape (*spatial).
        axis: the axis along which neighbours are paired.
        periodic: pair the last slice with the first; otherwise the pairs stop at the edge.

    Returns:
        ``(a, b)``, two arrays of the same shape: ``ids.shape`` if periodic, else one shorter
        along ``axis``. Entry ``k`` of ``a`` is the first voxel of pair ``k``, of ``b`` its
        successor.
    """
    if periodic:
        return ids, np.roll(ids, -1, axis=axis)
    n = ids.shape[axis]
    return np.take(ids, range(n - 1), axis=axis), np.take(ids, range(1, n), axis=axis)


def face_pairs(ids: np.ndarray, periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Values of every face-neighbour pair along all axes, flattened.

    Args:
        ids: array of shape (*spatial), at least one axis.
        periodic: as in :func:`face_neighbours`.

    Returns:
        ``(a, b)``, two 1-D arrays of length P (the number of pairs): the pairs of
        :func:`face_neighbours` for axis 0, then axis 1, ..., each in C order.
    """
    pairs = [face_neighbours(ids, axis, periodic) for axis in range(ids.ndim)]
    return (
        np.concatenate([a.ravel() for a, _ in pairs]),
        np.concatenate([b.ravel() for _, b in pairs]),
    )


def _either_end(flags: np.ndarray, axis: int, periodic: bool) -> np.ndarray:
    """Voxels at either end of a flagged pair: ``flags`` in :func:`face_neighbours`' layout
    along ``axis`` -> bool (*spatial)."""
    if periodic:
        return flags | np.roll(flags, 1, axis=axis)
    edge = list(flags.shape)
    edge[axis] = 1
    none = np.zeros(edge, bool)
    return np.concatenate([flags, none], axis=axis) | np.concatenate([none, flags], axis=axis)


def boundary_mask(labels: np.ndarray, periodic: bool) -> np.ndarray:
    """Voxels with a face neighbour of another label: both voxels of every unequal pair.

    Args:
        labels: array of shape (*spatial), at least one axis.
        periodic: neighbours across opposite faces count; otherwise the box faces are no
            boundary.

    Returns:
        bool array of shape (*spatial).
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        a, b = face_neighbours(labels, axis, periodic)
        out |= _either_end(a != b, axis, periodic)
    return out
