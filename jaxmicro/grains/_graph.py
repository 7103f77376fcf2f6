"""Face-neighbour graphs on voxel grids: connected components, adjacency, absorbing small grains.

A voxel grid of shape ``(*spatial)`` is a graph whose edges join face neighbours: the pairs of
``jaxmicro._grid.face_neighbours`` (voxel ``i`` and its successor along each axis, across the
wrap only if ``periodic``). Segmentation modes only differ in which edges they keep, so they all
build per-axis boolean edge masks and call :func:`components`.

These are host-side NumPy/SciPy routines: their outputs have data-dependent sizes (the number of
grains), which a jitted function cannot return.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .._grid import face_neighbours, face_pairs


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Maps positive labels to 1..n in order of their first voxel (C order); 0 stays 0."""
    flat = labels.ravel()
    values, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    positive = values > 0
    order = np.argsort(np.where(positive, first, -1), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    new = rank - np.count_nonzero(~positive) + 1
    new = np.where(positive, new, 0)
    return new[inverse].reshape(labels.shape).astype(np.int32)


def components(edges: Sequence[np.ndarray], periodic: bool) -> np.ndarray:
    """Labels the connected components of a voxel graph.

    Args:
        edges: one boolean array of shape ``(*spatial)`` per axis; ``edges[a][i]`` says whether
            voxel ``i`` is joined to its successor along axis ``a`` (wrapping around).
        periodic: keep the wrap-around edges (else the last slice's flags are ignored).

    Returns:
        int32 labels of shape ``(*spatial)``, 1..n in order of each component's first voxel.
    """
    shape = edges[0].shape
    ids = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    src, dst = [], []
    for axis, edge in enumerate(edges):
        a, b = face_neighbours(ids, axis, periodic)
        # the flag of each pair sits at its first voxel
        keep, _ = face_neighbours(np.asarray(edge, bool), axis, periodic)
        src.append(a[keep])
        dst.append(b[keep])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(ids.size, ids.size))
    _, labels = connected_components(graph, directed=False)
    return relabel_sequential(labels.reshape(shape) + 1)


def label_pairs(labels: np.ndarray, periodic: bool) -> np.ndarray:
    """Unique pairs ``(a, b)``, ``a < b``, of face-adjacent positive labels, shape ``(m, 2)``."""
    a, b = face_pairs(labels, periodic)
    keep = (a != b) & (a > 0) & (b > 0)
    a, b = a[keep], b[keep]
    return np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)


def fill_unassigned(labels: np.ndarray, periodic: bool) -> np.ndarray:
    """Grows the positive labels into the zeros, one face-neighbour layer per pass.

    Each zero voxel takes the largest label among its labelled face neighbours, so a removed
    speck is absorbed by the grain around it (ties between two neighbours go to the larger label).
    """
    labels = labels.copy()
    if not np.any(labels > 0):
        return labels
    footprint = ndi.generate_binary_structure(labels.ndim, 1)
    mode = "wrap" if periodic else "nearest"
    while True:
        empty = labels == 0
        if not empty.any():
            return labels
        grown = ndi.grey_dilation(labels, footprint=footprint, mode=mode)
        labels[empty] = grown[empty]


def absorb_small(labels: np.ndarray, min_size: int, periodic: bool) -> np.ndarray:
    """Merges grains with fewer than ``min_size`` voxels into their neighbours; relabels 1..n.

    If no grain reaches ``min_size``, the labels are returned unchanged (relabelled).
    """
    counts = np.bincount(labels.ravel())
    small = counts < min_size
    small[0] = False
    if small[labels].any() and not np.all(small[1:][counts[1:] > 0]):
        labels = np.where(small[labels], 0, labels)
        labels = fill_unassigned(labels, periodic)
    return relabel_sequential(labels)
