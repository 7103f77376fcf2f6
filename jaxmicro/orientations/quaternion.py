"""Unit quaternions: conversions to and from Bunge Euler angles, matrices and axis-angle pairs.

Conventions are those of the package docstring (``jaxmicro.orientations``): passive rotations,
scalar-first quaternions with P = -1, the matrix ``g`` maps sample to crystal components, and
``quat_to_matrix(quat_multiply(a, b)) == quat_to_matrix(a) @ quat_to_matrix(b)``.

Every function works on any leading shape (the component axis is last), is jittable and vmappable,
and is differentiable where the map is smooth: square roots and ``arctan2`` at the origin are
guarded with the double-``where`` trick so that gradients stay finite at the singular points.

References: D. Rowenhorst et al., Consistent representations of and conversions between 3D
rotations, Modelling Simul. Mater. Sci. Eng. 23 (2015) 083501, sections 4.1-4.2 and appendix A.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate

UNIT_NORM_ATOL = 1e-3
"""Largest deviation of a concrete input quaternion's norm from 1 before a ValueError."""


def checked_quats(q, name: str) -> jax.Array:
    """Converts ``q`` to a float array and validates shape (..., 4), finiteness and unit norm."""
    q = _validate.as_float_array(q, name)
    _validate.check_trailing(q, name, 4)
    _validate.check_unit_norm(q, name, atol=UNIT_NORM_ATOL)
    return q


def _checked_vectors(v, name: str) -> jax.Array:
    v = _validate.as_float_array(v, name)
    _validate.check_trailing(v, name, 3)
    _validate.check_finite(v, name)
    return v


def safe_norm(x: jax.Array, axis: int = -1) -> jax.Array:
    """Euclidean norm along ``axis`` whose gradient is 0 (not NaN) at the origin."""
    sq = jnp.sum(x * x, axis=axis)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def safe_arctan2(y: jax.Array, x: jax.Array) -> jax.Array:
    """``arctan2`` that returns 0 with zero gradient at ``y = x = 0``."""
    origin = (x == 0) & (y == 0)
    return jnp.where(origin, 0.0, jnp.arctan2(y, jnp.where(origin, 1.0, x)))


def _positive_scalar(q: jax.Array) -> jax.Array:
    """Picks the representative of +-q with q0 >= 0 (the northern hemisphere of S^3)."""
    return jnp.where(q[..., :1] < 0, -q, q)


def quat_multiply(a, b) -> jax.Array:
    """Product ``a * b`` of quaternions with the P = -1 cross-product sign.

    With this product the matrices compose in the same order: ``g(a * b) = g(a) @ g(b)``, i.e.
    ``a * b`` is the passive rotation ``b`` followed by ``a``.

    Args:
        a: quaternions, shape (..., 4).
        b: quaternions, shape (..., 4), broadcastable against ``a``.

    Returns:
        Quaternions, shape broadcast(...), 4). Not sign-normalized (q0 may be negative).

    References: Rowenhorst et al. 2015, eq. (23) with P = -1.
    """
    a = _validate.as_float_array(a, "a")
    b = _validate.as_float_array(b, "b")
    _validate.check_trailing(a, "a", 4)
    _validate.check_trailing(b, "b", 4)
    return _multiply(a, b)


@jax.jit
def _multiply(a: jax.Array, b: jax.Array) -> jax.Array:
    a0, av = a[..., :1], a[..., 1:]
    b0, bv = b[..., :1], b[..., 1:]
    scalar = a0 * b0 - jnp.sum(av * bv, axis=-1, keepdims=True)
    vector = a0 * bv + b0 * av - jnp.cross(av, bv)
    return jnp.concatenate([scalar, vector], axis=-1)


def quat_conjugate(q) -> jax.Array:
    """Conjugate (= inverse for unit quaternions) ``(q0, -q1, -q2, -q3)``, shape (..., 4)."""
    q = _validate.as_float_array(q, "q")
    _validate.check_trailing(q, "q", 4)
    return _conjugate(q)


def _conjugate(q: jax.Array) -> jax.Array:
    return q * jnp.asarray([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def quat_angle(q) -> jax.Array:
    """Rotation angle in [0, pi] (radians) of quaternions, shape (...).

    Computed as ``2 atan2(|q_v|, |q0|)``: accurate near 0 and pi and independent of the norm.
    """
    return _angle(checked_quats(q, "q"))


@jax.jit
def _angle(q: jax.Array) -> jax.Array:
    return 2.0 * jnp.arctan2(safe_norm(q[..., 1:]), jnp.abs(q[..., 0]))


def quat_rotate(q, v) -> jax.Array:
    """Components in the crystal frame of sample-frame vectors: ``g(q) @ v`` (passive).

    Args:
        q: quaternions, shape (..., 4).
        v: vectors, shape (..., 3), broadcastable against ``q[..., :3]``.

    Returns:
        Rotated vectors, shape broadcast(...), 3).

    References: Rowenhorst et al. 2015, eq. (24) with P = -1.
    """
    return _rotate(checked_quats(q, "q"), _checked_vectors(v, "v"))


@jax.jit
def _rotate(q: jax.Array, v: jax.Array) -> jax.Array:
    q0, u = q[..., :1], q[..., 1:]
    return (
        (q0 * q0 - jnp.sum(u * u, axis=-1, keepdims=True)) * v
        + 2.0 * jnp.sum(u * v, axis=-1, keepdims=True) * u
        + 2.0 * q0 * jnp.cross(v, u)
    )


def euler_to_quat(euler) -> jax.Array:
    """Quaternions (q0 >= 0) of Bunge Euler angles.

    Args:
        euler: (phi1, Phi, phi2) in radians, shape (..., 3). Any real values are accepted.

    Returns:
        Unit quaternions, shape (..., 4), in the dtype of ``euler``.

    References: Rowenhorst et al. 2015, appendix A.1 (eu2qu) with P = -1.
    """
    return _euler_to_quat(_checked_vectors(euler, "euler"))


@jax.jit
def _euler_to_quat(e: jax.Array) -> jax.Array:
    phi1, Phi, phi2 = e[..., 0], e[..., 1], e[..., 2]
    sigma = 0.5 * (phi1 + phi2)
    delta = 0.5 * (phi1 - phi2)
    c, s = jnp.cos(0.5 * Phi), jnp.sin(0.5 * Phi)
    q = jnp.stack(
        [c * jnp.cos(sigma), s * jnp.cos(delta), s * jnp.sin(delta), c * jnp.sin(sigma)], -1
    )
    return _positive_scalar(q)


def quat_to_euler(q) -> jax.Array:
    """Bunge Euler angles of quaternions.

    The angles follow from ``phi1 + phi2 = 2 atan2(q3, q0)``, ``phi1 - phi2 = 2 atan2(q2, q1)`` and
    ``Phi = 2 atan2(|(q1, q2)|, |(q0, q3)|)``, which are exact at Phi = 0 and Phi = pi and do not
    depend on the norm of ``q``. At the degenerate points (within 4 ulps of Phi = 0 or pi) only
    one sum is defined; it goes to phi1 and phi2 = 0 (Phi = 0: phi1 = 2 atan2(q3, q0); Phi = pi:
    phi1 = 2 atan2(q2, q1)).

    Args:
        q: quaternions, shape (..., 4); either sign.

    Returns:
        (phi1, Phi, phi2), shape (..., 3), with phi1, phi2 in [0, 2 pi) and Phi in [0, pi].
        Differentiable away from Phi in {0, pi} and from the 0 / 2 pi wrap.

    References: Rowenhorst et al. 2015, appendix A.5 (qu2eu) with P = -1, rewritten with
    half-angle sums so that no division by ``chi`` is needed.
    """
    return _quat_to_euler(checked_quats(q, "q"))


@jax.jit
def _quat_to_euler(q: jax.Array) -> jax.Array:
    q0, q1, q2, q3 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    sigma = safe_arctan2(q3, q0)
    delta = safe_arctan2(q2, q1)
    sin_half = safe_norm(q[..., 1:3])
    cos_half = safe_norm(jnp.stack([q0, q3], -1))
    # Within a few ulps of Phi = 0 or pi (e.g. euler_to_quat of Phi = np.pi, where cos(pi/2) is
    # 6e-17) the second half-angle sum is noise: treat the point as degenerate.
    tiny = 4 * jnp.finfo(q.dtype).eps * safe_norm(q)
    at_zero = sin_half <= tiny
    at_pi = cos_half <= tiny
    Phi = jnp.where(at_zero, 0.0, jnp.where(at_pi, np.pi, 2.0 * jnp.arctan2(sin_half, cos_half)))
    phi1 = jnp.where(at_zero, 2.0 * sigma, jnp.where(at_pi, 2.0 * delta, sigma + delta))
    phi2 = jnp.where(at_zero | at_pi, 0.0, sigma - delta)
    return jnp.stack([_wrap_2pi(phi1), Phi, _wrap_2pi(phi2)], -1)


def _wrap_2pi(angle: jax.Array) -> jax.Array:
    two_pi = 2.0 * np.pi
    wrapped = jnp.mod(angle, two_pi)
    # mod of a tiny negative number rounds to exactly 2 pi.
    return jnp.where(wrapped >= two_pi, wrapped - two_pi, wrapped)


def quat_to_matrix(q) -> jax.Array:
    """Passive rotation matrices ``g`` (sample -> crystal components) of unit quaternions.

    Args:
        q: unit quaternions, shape (..., 4) (used as given, not renormalized).

    Returns:
        Matrices, shape (..., 3, 3); ``v_crystal = g @ v_sample``. For Bunge angles
        ``g = R_z(phi2) R_x(Phi) R_z(phi1)`` with ``R_z(a) = [[c, s, 0], [-s, c, 0], [0, 0, 1]]``.

    References: Rowenhorst et al. 2015, appendix A.3 (qu2om) with P = -1.
    """
    return _quat_to_matrix(checked_quats(q, "q"))


@jax.jit
def _quat_to_matrix(q: jax.Array) -> jax.Array:
    q0, q1, q2, q3 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    qbar = q0 * q0 - (q1 * q1 + q2 * q2 + q3 * q3)
    rows = [
        [qbar + 2 * q1 * q1, 2 * (q1 * q2 + q0 * q3), 2 * (q1 * q3 - q0 * q2)],
        [2 * (q1 * q2 - q0 * q3), qbar + 2 * q2 * q2, 2 * (q2 * q3 + q0 * q1)],
        [2 * (q1 * q3 + q0 * q2), 2 * (q2 * q3 - q0 * q1), qbar + 2 * q3 * q3],
    ]
    return jnp.stack([jnp.stack(r, -1) for r in rows], -2)


def matrix_to_quat(m) -> jax.Array:
    """Unit quaternions (q0 >= 0) of passive rotation matrices.

    Uses Shepperd's method: of the four products ``4 q_k q`` readable from sums and differences of
    the entries, the one with the largest ``q_k^2`` is normalized, so the result is accurate for
    every rotation and is the nearest unit quaternion for slightly non-orthogonal input.

    Args:
        m: rotation matrices, shape (..., 3, 3); orthogonal with det +1 within 1e-3 (checked on
          concrete input).

    Returns:
        Quaternions, shape (..., 4).

    References: Rowenhorst et al. 2015, appendix A.3 (om2qu) with P = -1; S. W. Shepperd,
    J. Guid. Control 1 (1978) 223.
    """
    m = _validate.as_float_array(m, "m")
    shape = np.shape(m)
    if len(shape) < 2 or shape[-2:] != (3, 3):
        raise ValueError(f"m: expected trailing axes of shape (3, 3), got shape {shape}")
    _check_rotation_matrices(m)
    return _matrix_to_quat(m)


@jax.jit
def _matrix_to_quat(m: jax.Array) -> jax.Array:
    g11, g22, g33 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    anti = m - jnp.swapaxes(m, -1, -2)  # anti[i, j] = g_ij - g_ji
    sym = m + jnp.swapaxes(m, -1, -2)
    # products[k, l] = 4 q_k q_l (symmetric)
    d0, d1 = 1 + g11 + g22 + g33, 1 + g11 - g22 - g33
    d2, d3 = 1 - g11 + g22 - g33, 1 - g11 - g22 + g33
    a1, a2, a3 = anti[..., 1, 2], anti[..., 2, 0], anti[..., 0, 1]  # 4 q0 q1, 4 q0 q2, 4 q0 q3
    s12, s13, s23 = sym[..., 0, 1], sym[..., 0, 2], sym[..., 1, 2]  # 4 q1 q2, 4 q1 q3, 4 q2 q3
    rows = [[d0, a1, a2, a3], [a1, d1, s12, s13], [a2, s12, d2, s23], [a3, s13, s23, d3]]
    products = jnp.stack([jnp.stack(r, -1) for r in rows], -2)
    k = jnp.argmax(jnp.stack([d0, d1, d2, d3], -1), axis=-1)
    row = jnp.take_along_axis(products, k[..., None, None], axis=-2)[..., 0, :]
    # The chosen row has norm 4 |q_k| >= 2, so the division is safe.
    return _positive_scalar(row / jnp.linalg.norm(row, axis=-1, keepdims=True))


def _check_rotation_matrices(m: jax.Array, atol: float = UNIT_NORM_ATOL) -> None:
    _validate.check_finite(m, "m")
    if not _validate.is_concrete(m) or np.size(m) == 0:
        return
    a = np.asarray(m, dtype=np.float64)
    orth = np.max(np.abs(a @ np.swapaxes(a, -1, -2) - np.eye(3)))
    det = np.min(np.linalg.det(a))
    if orth > atol or det < 0:
        raise ValueError(
            f"m: expected proper rotation matrices (orthogonal within {atol}, det +1); "
            f"worst |m m^T - I| = {orth:.3g}, smallest det = {det:.3g}"
        )


def axis_angle_to_quat(axis, angle) -> jax.Array:
    """Quaternions (q0 >= 0) of passive rotations by ``angle`` about ``axis``.

    Args:
        axis: rotation axes, shape (..., 3); normalized here, must be non-zero.
        angle: rotation angles in radians, shape (...), broadcastable against ``axis[..., 0]``.

    Returns:
        ``(cos(angle/2), n sin(angle/2))`` made q0 >= 0, shape broadcast(...), 4).

    References: Rowenhorst et al. 2015, appendix A.4 (ax2qu).
    """
    axis = _checked_vectors(axis, "axis")
    angle = _validate.as_float_array(angle, "angle")
    _validate.check_finite(angle, "angle")
    if _validate.is_concrete(axis) and np.any(np.linalg.norm(np.asarray(axis), axis=-1) == 0):
        raise ValueError("axis: rotation axes must be non-zero vectors")
    return _axis_angle_to_quat(axis, angle)


@jax.jit
def _axis_angle_to_quat(axis: jax.Array, angle: jax.Array) -> jax.Array:
    dtype = jnp.result_type(axis, angle)
    n = axis / jnp.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * angle.astype(dtype)[..., None]
    q = jnp.concatenate([jnp.cos(half), n.astype(dtype) * jnp.sin(half)], axis=-1)
    return _positive_scalar(q)


def random_quats(key: jax.Array, shape: tuple[int, ...] = (), dtype=None) -> jax.Array:
    """Quaternions (q0 >= 0) of rotations drawn uniformly (Haar measure) from SO(3).

    A normalized standard-normal 4-vector is uniform on S^3, which maps to the Haar measure.

    Args:
        key: a ``jax.random.key``.
        shape: leading shape of the result.
        dtype: floating dtype (default: JAX's default float).

    Returns:
        Unit quaternions, shape (*shape, 4).
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    x = jax.random.normal(key, (*tuple(shape), 4), dtype=dtype)
    return _positive_scalar(x / jnp.linalg.norm(x, axis=-1, keepdims=True))
