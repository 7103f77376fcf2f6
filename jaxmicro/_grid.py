"""Face neighbours on voxel grids (host-side NumPy), shared by generators, datasets and grains."""

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
        along ``axis``.
    """
    if periodic:
        return ids, np.roll(ids, -1, axis=axis)
    n = ids.shape[axis]
    return np.take(ids, range(n - 1), axis=axis), np.take(ids, range(1, n), axis=axis)
