"""Inverse-pole-figure (IPF) colours of orientations.

A sample direction ``d`` is expressed in the crystal frame, ``h = g d``, and moved by the Laue
group (the proper rotations of the symmetry and their products with the inversion, since a
direction and its opposite are not told apart in an IPF) into the standard stereographic
triangle with corners ``(v_red, v_green, v_blue)``. Writing ``h = a v_red + b v_green + c v_blue``
(a, b, c >= 0 inside the triangle), the colour is ``(a, b, c) / max(a, b, c)``: each corner is
a pure primary, edges mix two primaries, and the brightest channel is always 1.

Triangles (crystal Cartesian frame of ``jaxmicro.orientations.symmetry``):

- cubic (m-3m): [001] red, [101] green, [111] blue.
- hexagonal (6/mmm): [0001] red, [2-1-10] (= x) green, [10-10] (azimuth 30 deg) blue.
- tetragonal (4/mmm): [001] red, [100] green, [110] blue.
- trigonal (-3m): [0001] red, azimuth 30 deg green, azimuth 90 deg blue.
- orthorhombic (mmm): [001] red, [100] green, [010] blue.

Monoclinic and triclinic sectors are not triangles (a lune and a hemisphere) and are rejected.

References: G. Nolze and R. Hielscher, Orientations - perfectly colored, J. Appl. Cryst. 49
(2016) 1786 (sections 2-3: the IPF sector of each Laue group); the barycentric key is the
classic TSL-style scheme.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.orientations.quaternion import _rotate, checked_quats
from jaxmicro.orientations.symmetry import _group_array, check_symmetry


def _azimuth(deg: float) -> tuple[float, float, float]:
    return (np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg)), 0.0)


_TRIANGLES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "cubic": ((0, 0, 1), (1, 0, 1), (1, 1, 1)),
    "hexagonal": ((0, 0, 1), _azimuth(0), _azimuth(30)),
    "tetragonal": ((0, 0, 1), (1, 0, 0), (1, 1, 0)),
    "trigonal": ((0, 0, 1), _azimuth(30), _azimuth(90)),
    "orthorhombic": ((0, 0, 1), (1, 0, 0), (0, 1, 0)),
}

IPF_SYMMETRIES: tuple[str, ...] = tuple(_TRIANGLES)
"""Symmetries with an IPF colour key."""


@functools.cache
def _barycentric_matrix(symmetry: str) -> np.ndarray:
    corners = np.asarray(_TRIANGLES[symmetry], dtype=np.float64)
    corners /= np.linalg.norm(corners, axis=1, keepdims=True)
    return np.linalg.inv(corners.T)  # maps h to (a, b, c) with h = corners.T @ (a, b, c)


def ipf_color(q, symmetry: str, direction=(0.0, 0.0, 1.0)) -> jax.Array:
    """RGB colours in [0, 1] of the crystal direction parallel to a sample direction.

    Args:
        q: unit quaternions, shape (..., 4).
        symmetry: one of ``IPF_SYMMETRIES`` (colour keys in the module docstring).
        direction: sample direction, shape (3,) or broadcastable against ``q[..., :3]``; it is
          normalized here and must be non-zero. Default: the sample z axis (normal direction).

    Returns:
        Colours, shape broadcast(...), 3), in the dtype of ``q``. Invariant under ``q -> s * q``.
        Not differentiable (the sector reduction is piecewise).

    References: Nolze and Hielscher 2016 (IPF sectors); see the module docstring for the key.
    """
    check_symmetry(symmetry, allowed=IPF_SYMMETRIES)
    q = checked_quats(q, "q")
    d = _validate.as_float_array(direction, "direction")
    _validate.check_trailing(d, "direction", 3)
    _validate.check_finite(d, "direction")
    if _validate.is_concrete(d) and np.any(np.linalg.norm(np.asarray(d), axis=-1) == 0):
        raise ValueError("direction: the sample direction must be a non-zero vector")
    return _ipf_color(q, d.astype(q.dtype), symmetry)


@functools.partial(jax.jit, static_argnames="symmetry")
def _ipf_color(q: jax.Array, d: jax.Array, symmetry: str) -> jax.Array:
    h = _rotate(q, d / jnp.linalg.norm(d, axis=-1, keepdims=True))
    s = jnp.asarray(_group_array(symmetry), dtype=q.dtype)
    proper = _rotate(s, h[..., None, :])  # (..., n, 3)
    candidates = jnp.concatenate([proper, -proper], axis=-2)
    coords = candidates @ jnp.asarray(_barycentric_matrix(symmetry), dtype=q.dtype).T
    # Exactly one candidate has all coordinates >= 0 (ties on the triangle's edges agree).
    best = jnp.argmax(jnp.min(coords, axis=-1), axis=-1)
    abc = jnp.take_along_axis(coords, best[..., None, None], axis=-2)[..., 0, :]
    abc = jnp.maximum(abc, 0.0)
    return jnp.clip(abc / jnp.max(abc, axis=-1, keepdims=True), 0.0, 1.0)
