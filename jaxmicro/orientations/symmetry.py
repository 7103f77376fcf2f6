"""Crystal symmetry: proper rotation groups, fundamental-zone reduction, misorientation angles.

Crystal symmetry acts on the left, ``g -> S g`` (quaternions ``q -> s * q``): the operation is
applied to crystal-frame components. Each group is listed with the identity first.

Axis settings (Cartesian crystal frame; Rowenhorst et al. 2015 and DAMASK use the same ones):

- ``cubic`` (432, Laue m-3m, 24): 4-folds along x, y, z; 3-folds along <111>; 2-folds along <110>.
- ``hexagonal`` (622, 6/mmm, 12): 6-fold along c = z; 2-folds every 30 deg in the basal plane,
  starting at a1 = x (so both <2-1-10> and <10-10> are 2-fold axes).
- ``tetragonal`` (422, 4/mmm, 8): 4-fold along z; 2-folds along x, y and <110>.
- ``trigonal`` (32, -3m, 6): 3-fold along z; 2-folds along a1 = x and at 60 and 120 deg from it.
- ``orthorhombic`` (222, mmm, 4): 2-folds along x, y, z.
- ``monoclinic`` (2, 2/m, 2): 2-fold along y (unique axis b, International Tables setting).
- ``triclinic`` (1, -1, 1): the identity only.

References: D. Rowenhorst et al., Modelling Simul. Mater. Sci. Eng. 23 (2015) 083501;
International Tables for Crystallography, Vol. A (2016), tables 10.1.2.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.orientations.quaternion import (
    _angle,
    _conjugate,
    _multiply,
    _positive_scalar,
    checked_quats,
)


def _basal(azimuth_deg: float) -> tuple[float, float, float]:
    a = np.deg2rad(azimuth_deg)
    return (np.cos(a), np.sin(a), 0.0)


# (axis, angle in degrees) generating each group element, identity first.
_GROUP_ELEMENTS: dict[str, list[tuple[tuple[float, float, float], float]]] = {
    "triclinic": [((0, 0, 1), 0)],
    "monoclinic": [((0, 0, 1), 0), ((0, 1, 0), 180)],
    "orthorhombic": [((0, 0, 1), 0), ((1, 0, 0), 180), ((0, 1, 0), 180), ((0, 0, 1), 180)],
    "trigonal": [((0, 0, 1), a) for a in (0, 120, 240)] + [(_basal(a), 180) for a in (0, 60, 120)],
    "tetragonal": [((0, 0, 1), a) for a in (0, 90, 180, 270)]
    + [(_basal(a), 180) for a in (0, 45, 90, 135)],
    "hexagonal": [((0, 0, 1), a) for a in (0, 60, 120, 180, 240, 300)]
    + [(_basal(a), 180) for a in (0, 30, 60, 90, 120, 150)],
    "cubic": [((0, 0, 1), 0)]
    + [(ax, a) for ax in ((1, 0, 0), (0, 1, 0), (0, 0, 1)) for a in (90, 180, 270)]
    + [(ax, a) for ax in ((1, 1, 1), (-1, 1, 1), (1, -1, 1), (1, 1, -1)) for a in (120, 240)]
    + [(ax, 180) for ax in ((1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1), (0, 1, 1), (0, 1, -1))],
}

SYMMETRIES: tuple[str, ...] = tuple(_GROUP_ELEMENTS)
"""Names accepted by every ``symmetry`` argument."""


@functools.cache
def _group_array(symmetry: str) -> np.ndarray:
    rows = []
    for axis, angle in _GROUP_ELEMENTS[symmetry]:
        n = np.asarray(axis, dtype=np.float64)
        n /= np.linalg.norm(n)
        half = np.deg2rad(angle) / 2
        q = np.concatenate([[np.cos(half)], np.sin(half) * n])
        q[np.abs(q) < 1e-15] = 0.0  # exact zeros for the 180 degree elements
        rows.append(q if q[0] >= 0 else -q)
    out = np.stack(rows)
    out.setflags(write=False)
    return out


def check_symmetry(symmetry: str, name: str = "symmetry", allowed=None) -> None:
    """Raises ValueError unless ``symmetry`` is one of ``SYMMETRIES`` (and of ``allowed``).

    The one check of symmetry names in the package: functions defined for a subset of the groups
    (IPF colours, ROGSH bases) pass that subset as ``allowed``, so an unknown name and a known but
    unsupported one get distinct messages.
    """
    _validate.check_choice(symmetry, name, SYMMETRIES)
    if allowed is not None and symmetry not in allowed:
        raise ValueError(
            f"{name}: {symmetry!r} is not supported here; expected one of {tuple(allowed)}"
        )


def symmetry_quats(symmetry: str, dtype=None) -> jax.Array:
    """Quaternions (q0 >= 0) of the proper rotations of a crystal symmetry, identity first.

    Args:
        symmetry: one of ``SYMMETRIES`` (axis settings in the module docstring).
        dtype: floating dtype (default: JAX's default float).

    Returns:
        Array of shape (n, 4), n = 24, 12, 8, 6, 4, 2, 1 for cubic, hexagonal, tetragonal,
        trigonal, orthorhombic, monoclinic, triclinic.
    """
    check_symmetry(symmetry)
    return jnp.asarray(_group_array(symmetry), dtype=dtype or jnp.result_type(float))


@functools.partial(jax.jit, static_argnames="symmetry")
def _best_equivalent(q: jax.Array, symmetry: str) -> jax.Array:
    """``s * q`` for the group element s maximizing |(s * q)_0|, made q0 >= 0."""
    s = jnp.asarray(_group_array(symmetry), dtype=q.dtype)
    equivalents = _multiply(s, q[..., None, :])  # (..., n, 4)
    best = jnp.argmax(jnp.abs(equivalents[..., 0]), axis=-1)
    chosen = jnp.take_along_axis(equivalents, best[..., None, None], axis=-2)[..., 0, :]
    return _positive_scalar(chosen)


def to_fundamental_zone(q, symmetry: str) -> jax.Array:
    """The symmetry-equivalent orientation with the smallest rotation angle.

    Among ``s * q`` for the crystal symmetry elements s, returns the one with the largest |q0|,
    made q0 >= 0: the orientation inside the (crystal-symmetry) Rodrigues fundamental zone. On
    the zone boundary, ties go to the first group element in ``symmetry_quats`` order, so the
    reduction is idempotent.

    Args:
        q: unit quaternions, shape (..., 4).
        symmetry: one of ``SYMMETRIES``.

    Returns:
        Quaternions, shape (..., 4), in the dtype of ``q``.

    References: Rowenhorst et al. 2015, section 3.3; A. Heinz and P. Neumann, Acta Cryst. A47
    (1991) 780 (fundamental zones of the proper point groups).
    """
    check_symmetry(symmetry)
    return _best_equivalent(checked_quats(q, "q"), symmetry)


def misorientation_angle(q1, q2, symmetry: str) -> jax.Array:
    """Disorientation angle (radians, in [0, pi]) between two orientations of one crystal phase.

    With ``g1, g2`` the passive matrices, the misorientation is ``dg = g2 g1^T`` and the
    symmetrized angle is ``min_{i,j} angle(S_i g2 g1^T S_j^T)``. The rotation angle is a class
    function, so this equals ``min_S angle(S dg)``: with ``d = q2 * conj(q1)`` it is
    ``2 atan2(|v|, |w|)`` of ``s * d`` for the s maximizing ``|(s * d)_0|``. Symmetric in q1, q2
    and invariant under ``q -> s * q`` of either argument and under a common sample rotation
    ``q -> q * r``. Differentiable except where the angle is 0 or the best s changes.

    Args:
        q1: unit quaternions, shape (..., 4).
        q2: unit quaternions, shape (..., 4), broadcastable against ``q1``.
        symmetry: one of ``SYMMETRIES``.

    Returns:
        Angles, shape broadcast(...), in the dtype of the inputs.

    References: Rowenhorst et al. 2015, section 3.4; G. Grimmer, Acta Cryst. A30 (1974) 685.
    """
    check_symmetry(symmetry)
    q1 = checked_quats(q1, "q1")
    q2 = checked_quats(q2, "q2")
    return _disorientation(q1, q2, symmetry)


@functools.partial(jax.jit, static_argnames="symmetry")
def _disorientation(q1: jax.Array, q2: jax.Array, symmetry: str) -> jax.Array:
    return _angle(_best_equivalent(_multiply(q2, _conjugate(q1)), symmetry))
