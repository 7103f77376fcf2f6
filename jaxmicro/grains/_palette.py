"""Segmentation of colour-coded grain fields (PolyCrysDiff's RGB volumes with a fixed palette)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._grid import face_neighbours
from .._validate import check_finite, check_ndim, check_trailing
from ._graph import absorb_small, components
from ._split import split_merged


@jax.jit
def quantize_palette(rgb: jax.Array, palette: jax.Array) -> jax.Array:
    """Index of the nearest palette colour (Euclidean in colour space) for every voxel.

    Args:
        rgb: colours ``(*spatial, C)``.
        palette: the ``P`` reference colours ``(P, C)``, in the same units as ``rgb``.

    Returns:
        int32 indices ``(*spatial)`` in ``[0, P)``.

    References:
        PolyCrysDiff §4.2 (colour quantization to the ten orientation colours).
    """
    palette = palette.astype(rgb.dtype)

    def nearest(rows):
        d2 = jnp.sum((rows[..., None, :] - palette) ** 2, axis=-1)
        return jnp.argmin(d2, axis=-1).astype(jnp.int32)

    # mapping over the first axis bounds the (voxels, P) distance table to one slab
    return jax.lax.map(nearest, rgb)


def segment_palette(
    rgb,
    palette,
    *,
    min_size: int = 1,
    periodic: bool = False,
    split_h: float | None = None,
) -> np.ndarray:
    """Grains of a colour-coded field: quantize, connect, absorb specks, optionally split.

    1. Every voxel takes the nearest palette colour (:func:`quantize_palette`).
    2. Face-connected voxels of one colour form a grain (wrapping around if ``periodic``).
    3. Grains with fewer than ``min_size`` voxels are absorbed by their neighbours (each removed
       voxel joins a face-adjacent surviving grain, layer by layer).
    4. With ``split_h``, grains whose distance-to-boundary map has several maxima at least
       ``split_h`` voxels high are split by a watershed (touching grains of the same colour).

    Args:
        rgb: colours ``(*spatial, C)`` (2-D or 3-D spatial), any real units.
        palette: reference colours ``(P, C)``.
        min_size: smallest grain kept, in voxels (PolyCrysDiff uses 200 for 64^3 volumes).
        periodic: grains continue across opposite faces.
        split_h: watershed h-maxima height in voxels; ``None`` disables splitting.

    Returns:
        int32 labels ``(*spatial)``, 1..n (no voxel is left unassigned).

    References:
        PolyCrysDiff §4.2 (quantization, connectivity, 200-voxel threshold, watershed).
    """
    check_ndim(rgb, "rgb", (3, 4), "(*spatial, C) with 2 or 3 spatial axes")
    check_ndim(palette, "palette", 2, "(P, C)")
    check_trailing(rgb, "rgb", np.shape(palette)[-1])
    check_finite(rgb, "rgb")
    check_finite(palette, "palette")
    if int(min_size) < 1:
        raise ValueError(f"min_size: expected a positive voxel count, got {min_size}")
    rgb = jnp.asarray(rgb)
    if not jnp.issubdtype(rgb.dtype, jnp.floating):
        rgb = rgb.astype(jnp.float32)
    index = np.asarray(quantize_palette(rgb, jnp.asarray(palette)))
    # every voxel against its successor, wrapping; ``components`` drops the wrap unless periodic
    edges = [np.equal(*face_neighbours(index, a, True)) for a in range(index.ndim)]
    labels = components(edges, periodic)
    labels = absorb_small(labels, int(min_size), periodic)
    if split_h is not None:
        labels = split_merged(labels, float(split_h), periodic)
    return labels
