"""Watershed splitting of grains that segmentation merged (two touching grains of one colour).

A merged pair of convex grains has a neck; the distance to the grain boundary then has two
maxima. Maxima that rise at least ``h`` voxels above the saddle between them seed a watershed of
the negated distance inside the grain (PolyCrysDiff §4.2 applies a watershed for the same purpose
without giving its parameters; the h-maxima criterion is the usual way to keep a single convex
grain in one piece).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from .._grid import boundary_mask
from ._graph import relabel_sequential


def boundary_distance(labels: np.ndarray, periodic: bool) -> np.ndarray:
    """Euclidean distance (voxels) from each voxel to the nearest voxel on another grain's side.

    Voxels with a face neighbour of a different label have distance 1. With ``periodic``, the
    distance is exact up to 32 voxels across the wrap (the field is padded by that much).
    """
    interior = ~boundary_mask(labels, periodic)
    if not periodic:
        return ndi.distance_transform_edt(interior) + (~interior)
    pad = [(min(n // 2, 32),) * 2 for n in labels.shape]
    dist = ndi.distance_transform_edt(np.pad(interior, pad, mode="wrap"))
    crop = tuple(slice(p, p + n) for (p, _), n in zip(pad, labels.shape, strict=True))
    return dist[crop] + (~interior)


def split_merged(labels: np.ndarray, h: float, periodic: bool) -> np.ndarray:
    """Splits each grain whose boundary distance has two or more h-maxima; relabels 1..n.

    Args:
        labels: int labels ``(*spatial)``, 1..n.
        h: minimum height (voxels) of a distance maximum above its saddle to seed a new grain.
        periodic: boundaries wrap around.

    Returns:
        int32 labels, 1..m with m >= n.
    """
    dist = boundary_distance(labels, periodic)
    peaks = h_maxima(dist, h).astype(bool)
    seeds = np.where(peaks, labels, 0)
    # one seed per connected peak region, kept inside its grain
    seed_ids, _ = ndi.label(peaks)
    seeds_per_grain = np.zeros(labels.max() + 1, np.int64)
    pairs = np.unique(np.stack([seeds[peaks], seed_ids[peaks]]), axis=1)
    np.add.at(seeds_per_grain, pairs[0], 1)
    out = labels.astype(np.int64).copy()
    next_label = int(labels.max()) + 1
    boxes = ndi.find_objects(labels)
    for grain in np.flatnonzero(seeds_per_grain > 1):
        box = boxes[grain - 1]
        mask = labels[box] == grain
        parts = watershed(-dist[box], np.where(mask, seed_ids[box], 0), mask=mask)
        parts_ids = np.unique(parts[mask])
        for offset, part in enumerate(parts_ids[1:]):
            out[box][parts == part] = next_label + offset
        next_label += parts_ids.size - 1
    return relabel_sequential(out)
