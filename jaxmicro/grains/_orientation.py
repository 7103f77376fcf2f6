"""Segmentation of orientation fields: grains are regions of small neighbour disorientation."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import orientations
from .._grid import face_neighbours
from .._validate import check_ndim, check_trailing, check_unit_norm
from ._graph import absorb_small, components


@partial(jax.jit, static_argnames=("symmetry",))
def neighbour_disorientation(q: jax.Array, symmetry: str) -> jax.Array:
    """Disorientation (radians) between each voxel and its successor along every spatial axis.

    Args:
        q: unit quaternions ``(*spatial, 4)``, scalar first, P = -1.
        symmetry: crystal symmetry name (see ``jaxmicro.orientations.SYMMETRIES``).

    Returns:
        ``(ndim, *spatial)``: entry ``[a, i]`` is the angle between voxel ``i`` and
        ``roll(i, -1, axis=a)`` (the last slice pairs with the first).
    """

    def per_axis(axis):
        pairs = face_neighbours(q, axis, periodic=True)
        # one slab at a time keeps the (voxels, symmetry operators) table small
        return jax.lax.map(lambda ab: orientations.misorientation_angle(*ab, symmetry), pairs)

    return jnp.stack([per_axis(a) for a in range(q.ndim - 1)])


def segment_orientations(
    q,
    symmetry: str,
    *,
    threshold_deg: float = 5.0,
    periodic: bool = False,
    min_size: int = 1,
) -> np.ndarray:
    """Grains of an orientation field: face neighbours closer than a disorientation threshold.

    Two face-adjacent voxels belong to one grain when their disorientation (misorientation
    angle minimised over the crystal symmetry) is below ``threshold_deg``; grains are the
    connected components of that graph (union of the accepted edges, as in EBSD grain
    reconstruction). A gradual orientation gradient can therefore chain into one grain even if
    its ends differ by more than the threshold, which is the usual EBSD convention.

    Args:
        q: unit quaternions ``(*spatial, 4)`` with 2 or 3 spatial axes, scalar first, P = -1.
        symmetry: crystal symmetry name, e.g. ``'cubic'``.
        threshold_deg: disorientation threshold in degrees.
        periodic: grains continue across opposite faces.
        min_size: grains with fewer voxels are absorbed by their neighbours.

    Returns:
        int32 labels ``(*spatial)``, 1..n (no voxel is left unassigned).

    References:
        Union-find grain reconstruction from EBSD maps (e.g. MTEX ``calcGrains``, Bachmann et
        al., Ultramicroscopy 111 (2011) 1720); disorientation after Rowenhorst et al. 2015.
    """
    check_ndim(q, "q", (3, 4), "(*spatial, 4) with 2 or 3 spatial axes")
    check_trailing(q, "q", 4)
    check_unit_norm(q, "q")
    if not threshold_deg > 0:
        raise ValueError(f"threshold_deg: expected a positive angle, got {threshold_deg}")
    angles = np.asarray(neighbour_disorientation(jnp.asarray(q), symmetry))
    edges = list(angles < np.deg2rad(threshold_deg))
    labels = components(edges, periodic)
    return absorb_small(labels, int(min_size), periodic)
