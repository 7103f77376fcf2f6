"""Grain orientations: uniform, or scattered about one or several texture components."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxmicro import _validate
from jaxmicro.orientations import axis_angle_to_quat, quat_multiply, random_quats


def grain_orientations(
    key: jax.Array,
    n_grains: int,
    *,
    texture=None,
    spread: float = 0.1,
    dtype=None,
) -> jax.Array:
    """One orientation (unit quaternion, scalar first, P = -1) per grain.

    Without ``texture`` the orientations are uniform (Haar measure). With a texture, each grain
    takes a component (uniformly among the rows of ``texture``) and is rotated away from it by
    ``exp(v)`` with a rotation vector ``v ~ N(0, spread^2 I_3)``: an isotropic Gaussian spread on
    SO(3) whose misorientation angle ``|v|`` follows a Maxwell distribution with scale ``spread``
    (mean ``2 spread sqrt(2/pi)``); the scatter is applied in the crystal frame, ``q = dq * q0``.

    Args:
        key: a ``jax.random.key``.
        n_grains: number of grains (static).
        texture: ``None`` (uniform), one component (4,) or a list of components (K, 4), unit
          quaternions.
        spread: standard deviation of each rotation-vector component, radians (texture only).
        dtype: floating dtype of the result (default: the texture's, else JAX's default float).

    Returns:
        Unit quaternions with q0 >= 0, shape (n_grains, 4).

    References: PolyCrysDiff §4.1 (orientation per grain); Rowenhorst et al. 2015 (conventions).
    """
    if int(n_grains) < 1:
        raise ValueError(f"n_grains: expected a positive count, got {n_grains}")
    if texture is None:
        return random_quats(key, (int(n_grains),), dtype=dtype)
    texture = _validate.as_float_array(texture, "texture")
    _validate.check_trailing(texture, "texture", 4)
    _validate.check_ndim(texture, "texture", (1, 2), "(4,) or (K, 4)")
    _validate.check_unit_norm(texture, "texture")
    _validate.check_finite(spread, "spread")
    dtype = texture.dtype if dtype is None else jnp.dtype(dtype)
    return _textured(key, texture, spread, n_grains=int(n_grains), dtype=dtype)


@functools.partial(jax.jit, static_argnames=("n_grains", "dtype"))
def _textured(key: jax.Array, texture: jax.Array, spread, *, n_grains: int, dtype):
    """Gaussian scatter about the texture components: the kernel of ``grain_orientations``."""
    components = jnp.reshape(texture, (-1, 4)).astype(dtype)
    spread = jnp.asarray(spread, dtype)
    k_pick, k_spread = jax.random.split(key)
    pick = jax.random.randint(k_pick, (n_grains,), 0, components.shape[0])
    v = spread * jax.random.normal(k_spread, (n_grains, 3), dtype)
    angle = jnp.linalg.norm(v, axis=-1)
    axis = jnp.where(angle[:, None] > 0, v, jnp.array([1.0, 0.0, 0.0], dtype))
    return quat_multiply(axis_angle_to_quat(axis, angle), components[pick])
