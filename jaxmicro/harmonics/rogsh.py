"""Reduced-order generalized spherical harmonics (ROGSH): three symmetrized GSH per orientation.

A single orientation g is represented by three of Bunge's crystal-symmetrized GSH functions,
``T.._l^{n, mu}(g)`` (upper indices: sample index n, symmetrized crystal index mu, as printed in
the paper), with Bunge's normalization (``mean over SO(3) of |T_l|^2 = 1 / (2l + 1)``):

- ``hexagonal`` (622 crystal, triclinic sample):
  ``[T_2^{0,1}, Re T_2^{1,1}, T_6^{0,2}] = [(3 cos^2 Phi - 1) / 2,
  (sqrt 6 / 4) sin phi1 sin 2 Phi, -(sqrt 462 / 32) sin^6 Phi cos 6 phi2]``.
- ``cubic`` (432 crystal, triclinic sample): ``[Re T_4^{-4,1}, T_4^{0,1}, T_12^{0,2}]``, eqs.
  (13)-(15) of appendix B.2, written out in ``_cubic``.

Values are invariant under crystal symmetry ``g -> S g`` and single-valued on SO(3), so
symmetry-equivalent orientations and equivalent Euler triplets map to the same point.

**The map is not one-to-one** (measured in ``docs/orientations.md``). Both bases are invariant
under more than the crystal group, so many orientations share one coefficient triple:

- hexagonal: also ``phi1 -> pi - phi1`` and ``phi2 -> -phi2``, i.e. four classes of
  hexagonally distinct orientations per triple (not six equivalent ones as the paper states);
- cubic: also the sample 4-fold ``phi1 -> phi1 + pi/2`` and ``(phi1, phi2) -> (-phi1, -phi2)``
  (eight classes), and two roots for phi1 given (Phi, phi2): 16 classes per triple for most
  orientations, 32 where the axial equations have two roots (a fold), 8 where the phi1
  roots coincide.

``rogsh_to_euler`` therefore returns one preimage; compare orientation statistics in ROGSH space,
not by misorientation after inversion.

Errata to the printed appendix B (checked against Bunge's ``T_l^{mn} = e^{i m phi2}
P_l^{mn}(Phi) e^{i n phi1}``, ``P_l^{mn} = i^{n-m} d^l_{nm}``):

- (11) is printed as ``Re T_2^{-1,1}`` but equals ``Re T_2^{+1,1}``; Re T_2^{-1,1} is its
  negative. The printed expression (the one the paper's inverse uses) is kept.
- (10): the inverse is ``cos^2 Phi = (2 T_2^{0,1} + 1) / 3``, not ``2 T_2^{0,1} / 3``.
- (13): the factor ``(cos Phi + 1)^2`` belongs inside the bracket: the function is
  ``sqrt(30)/192 (14 sin^4 Phi cos 4phi1 + (1 + cos Phi)^4 cos(4phi1 + 4phi2)
  + (1 - cos Phi)^4 cos(4phi1 - 4phi2))`` = Re of the cubic l = 4 invariant with Bunge's
  weights ``sqrt(5/24), sqrt(7/12), sqrt(5/24)`` on m = -4, 0, 4 and n = -4.
- (14) and (15) are correct as printed (``161 sin^4 - 280 sin^2 + 120 = 161 cos^4 - 42 cos^2
  + 1``); (15) is a unit vector of Bunge's two-dimensional cubic l = 12 invariant space.

References: Buzzy, Robertson, Kalidindi, Acta Mater. (2024), rogsh-local-global section 4 and
appendix B, eqs. (10)-(15); H.-J. Bunge, Texture Analysis in Materials Science (1982), ch. 14.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.orientations import check_symmetry

ROGSH_SYMMETRIES: tuple[str, ...] = ("hexagonal", "cubic")
"""Crystal symmetries with a ROGSH basis."""

_CUBIC_GRID_STEP_DEG = 0.25
_CUBIC_STARTS = 4
_NEWTON_STEPS = 24
_CHUNK = 1024
_T4_SCALE = math.sqrt(21.0) / 48.0


def _checked(x, name: str) -> jax.Array:
    x = _validate.as_float_array(x, name)
    _validate.check_trailing(x, name, 3)
    _validate.check_finite(x, name)
    return x


def rogsh(euler, symmetry: str) -> jax.Array:
    """ROGSH coefficients of orientations given by Bunge Euler angles.

    Args:
        euler: (phi1, Phi, phi2) in radians, shape (..., 3) (any real values).
        symmetry: ``'hexagonal'`` or ``'cubic'``.

    Returns:
        Coefficients, shape (..., 3), in the dtype of ``euler`` (components in the module
        docstring). Smooth (differentiable everywhere) and invariant under crystal symmetry.

    References: rogsh-local-global appendix B, eqs. (10)-(15) with the errata of the module
    docstring; Bunge (1982), ch. 14.
    """
    check_symmetry(symmetry, allowed=ROGSH_SYMMETRIES)
    e = _checked(euler, "euler")
    return _hexagonal(e) if symmetry == "hexagonal" else _cubic(e)


@jax.jit
def _hexagonal(e: jax.Array) -> jax.Array:
    phi1, Phi, phi2 = e[..., 0], e[..., 1], e[..., 2]
    c, s = jnp.cos(Phi), jnp.sin(Phi)
    t2 = 0.5 * (3.0 * c * c - 1.0)
    t2_re = math.sqrt(6.0) / 4.0 * jnp.sin(phi1) * jnp.sin(2.0 * Phi)
    t6 = -math.sqrt(462.0) / 32.0 * s**6 * jnp.cos(6.0 * phi2)
    return jnp.stack([t2, t2_re, t6], axis=-1)


def _t4_re_coefficients(Phi: jax.Array, phi2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(a, b) with Re T_4^{-4,1} = a cos 4phi1 + b sin 4phi1 (eq. 13, angle sums expanded)."""
    c, s = jnp.cos(Phi), jnp.sin(Phi)
    k = math.sqrt(30.0) / 192.0
    plus, minus = (1.0 + c) ** 4, (1.0 - c) ** 4
    a = k * (14.0 * s**4 + (plus + minus) * jnp.cos(4.0 * phi2))
    b = k * (minus - plus) * jnp.sin(4.0 * phi2)
    return a, b


def _cubic_axial(u: jax.Array, x: jax.Array) -> jax.Array:
    """(T_4^{0,1}, T_12^{0,2}) as polynomials of u = cos^2 Phi and x = sin^4 Phi cos 4phi2.

    With rho = sin^2 Phi = 1 - u, Chebyshev's identities give ``sin^8 Phi cos 8phi2 =
    2 x^2 - rho^4`` and ``sin^12 Phi cos 12phi2 = 4 x^3 - 3 x rho^4``, so eqs. (14)-(15) are
    polynomials in (u, x): smooth at the pole, and T_4^{0,1} is linear in x.
    """
    rho4 = (1.0 - u) ** 4
    t4 = _T4_SCALE * (5.0 * x + (35.0 * u - 30.0) * u + 3.0)
    p12 = jnp.polyval(  # 2048 P_12(cos Phi) as a polynomial in cos^2 Phi
        jnp.asarray([1352078, -3879876, 4157010, -2042040, 450450, -36036, 462], u.dtype), u
    )
    p12_4 = jnp.polyval(jnp.asarray([7429, -9044, 3230, -340, 5], u.dtype), u)
    p12_8 = jnp.polyval(jnp.asarray([161, -42, 1], u.dtype), u)
    t12 = (math.sqrt(166305594.0) / 40304640.0) * (
        1025.0 * (4.0 * x * x - 3.0 * rho4) * x
        + 66.0 * p12_8 * (2.0 * x * x - rho4)
        + 99.0 * p12_4 * x
        + p12
    )
    return jnp.stack([t4, t12], axis=-1)


def _axial_coordinates(Phi: jax.Array, phi2: jax.Array) -> tuple[jax.Array, jax.Array]:
    s2 = jnp.sin(Phi) ** 2
    return 1.0 - s2, s2 * s2 * jnp.cos(4.0 * phi2)


@jax.jit
def _cubic(e: jax.Array) -> jax.Array:
    a, b = _t4_re_coefficients(e[..., 1], e[..., 2])
    t4_re = a * jnp.cos(4.0 * e[..., 0]) + b * jnp.sin(4.0 * e[..., 0])
    axial = _cubic_axial(*_axial_coordinates(e[..., 1], e[..., 2]))
    return jnp.concatenate([t4_re[..., None], axial], axis=-1)


def rogsh_to_euler(c, symmetry: str) -> jax.Array:
    """One Bunge Euler triplet whose ROGSH coefficients are (closest to) ``c``.

    - hexagonal: the analytic inverse of eqs. (10)-(12) (with the errata), choosing
      Phi in [0, pi/2], phi1 = arcsin(...) and phi2 in [0, pi/6]; out-of-range ratios (noisy
      or generated coefficients) are clipped.
    - cubic: the paper found no closed form and used a 1 degree nearest-neighbour database.
      Here the two axial functions are written in u = cos^2 Phi and x = sin^4 Phi cos 4phi2,
      where they are polynomials and T_4^{0,1} is linear in x; eliminating x leaves one
      equation of degree 6 in u. A database of u on a 0.25 degree grid of Phi over the
      standard triangle (Phi <= 55 deg; every coefficient triple has a preimage there) is
      searched by brute force, its 4 best local minima of the mismatch (one per root) are
      polished by safeguarded Newton steps, phi2 = arccos(x / sin^4 Phi) / 4 and phi1 follows
      in closed form from ``Re T_4^{-4,1} = a cos 4phi1 + b sin 4phi1``; the candidate with
      the smallest coefficient residual is returned. For valid coefficients the residual is
      at round-off level (max 3e-14 over 10^4 random orientations in float64), not limited
      by the grid; for invalid ones the result is a nearby fit.

    The result is one of several preimages (see the module docstring): it reproduces ``c``,
    not necessarily the orientation ``c`` was computed from.

    Args:
        c: ROGSH coefficients, shape (..., 3).
        symmetry: ``'hexagonal'`` or ``'cubic'``.

    Returns:
        Euler angles (phi1, Phi, phi2) in radians, shape (..., 3), in the dtype of ``c``, with
        phi1, phi2 in [0, 2 pi). Jittable (``static_argnames="symmetry"``); not meant for
        gradients (piecewise choices).

    References: rogsh-local-global section 4.2 (database inverse) and appendix B.1 (analytic
    hexagonal inverse, with the errata of the module docstring).
    """
    check_symmetry(symmetry, allowed=ROGSH_SYMMETRIES)
    c = _checked(c, "c")
    return _hexagonal_inverse(c) if symmetry == "hexagonal" else _cubic_inverse(c)


def _safe_ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    """num / den clipped to [-1, 1]; 0 where den is 0 (the angle is then arbitrary)."""
    ok = den != 0
    return jnp.where(ok, jnp.clip(num / jnp.where(ok, den, 1.0), -1.0, 1.0), 0.0)


def _wrap(angle: jax.Array) -> jax.Array:
    """angle mod 2 pi in [0, 2 pi) (jnp.mod of a tiny negative number rounds to 2 pi)."""
    wrapped = jnp.mod(angle, 2.0 * math.pi)
    return jnp.where(wrapped >= 2.0 * math.pi, 0.0, wrapped)


@jax.jit
def _hexagonal_inverse(c: jax.Array) -> jax.Array:
    cos2 = jnp.clip((2.0 * c[..., 0] + 1.0) / 3.0, 0.0, 1.0)
    Phi = jnp.arccos(jnp.sqrt(cos2))
    phi1 = jnp.arcsin(_safe_ratio(4.0 * c[..., 1], math.sqrt(6.0) * jnp.sin(2.0 * Phi)))
    phi2 = jnp.arccos(_safe_ratio(-32.0 * c[..., 2], math.sqrt(462.0) * jnp.sin(Phi) ** 6)) / 6.0
    return jnp.stack([_wrap(phi1), Phi, phi2], axis=-1)


@functools.cache
def _cubic_table() -> np.ndarray:
    """The database: u = cos^2 Phi on a 0.25 degree grid of Phi in [0, 55] deg.

    The axial functions depend on h = g e_z (the sample z axis in crystal axes) only and are
    m-3m invariant; every h has an equivalent in the standard triangle, where
    Phi <= atan(sqrt 2) = 54.7 deg.
    """
    return np.cos(np.deg2rad(np.arange(0.0, 55.0 + 1e-9, _CUBIC_GRID_STEP_DEG))) ** 2


def _phi1_from_t4(t4_re: jax.Array, Phi: jax.Array, phi2: jax.Array) -> jax.Array:
    """phi1 solving Re T_4^{-4,1} = a cos 4phi1 + b sin 4phi1 = R cos(4phi1 - alpha) (the
    root alpha + arccos; alpha - arccos is another preimage)."""
    a, b = _t4_re_coefficients(Phi, phi2)
    ratio = _safe_ratio(t4_re, jnp.sqrt(a * a + b * b))
    return _wrap((jnp.arctan2(b, a) + jnp.arccos(ratio)) / 4.0)


def _x_from_t4(u: jax.Array, t4: jax.Array) -> jax.Array:
    """x = sin^4 Phi cos 4phi2 solving T_4^{0,1}(u, x) = t4 (the relation is linear in x)."""
    return (t4 / _T4_SCALE - (35.0 * u - 30.0) * u - 3.0) / 5.0


def _axial_mismatch(u: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """T_12^{0,2}(u, x(u)) - target, and how far x(u) leaves |x| <= (1 - u)^2."""
    x = _x_from_t4(u, target[0])
    excess = jnp.maximum(jnp.abs(x) - (1.0 - u) ** 2, 0.0)
    return _cubic_axial(u, x)[..., 1] - target[1], excess


def _refine_u(u: jax.Array, target: jax.Array) -> jax.Array:
    """Newton steps on T_12^{0,2}(u, x(u)) = target, u kept in [0, 1]; a step that does not
    lower |mismatch| is halved (double roots at the fold converge linearly)."""
    g = lambda v: _axial_mismatch(v, target)[0]  # noqa: E731

    def step(_, state):
        v, size = state
        r, slope = jax.value_and_grad(g)(v)
        trial = jnp.clip(v - size * r / jnp.where(slope == 0, 1.0, slope), 0.0, 1.0)
        better = jnp.abs(g(trial)) < jnp.abs(r)
        return jnp.where(better, trial, v), jnp.where(better, 1.0, 0.5 * size)

    return jax.lax.fori_loop(0, _NEWTON_STEPS, step, (u, jnp.ones_like(u)))[0]


def _local_minima(cost: jax.Array, k: int) -> jax.Array:
    """Indices of the k smallest local minima of a 1D array (ties: the first)."""
    padded = jnp.pad(cost, 1, constant_values=jnp.inf)
    is_min = (cost <= padded[:-2]) & (cost <= padded[2:])
    x = jnp.where(is_min, cost, jnp.inf)
    positions = jnp.arange(x.size)
    out = []
    for _ in range(k):
        # min + min-of-positions: argmin's variadic reduction is slow on CPU.
        i = jnp.min(jnp.where(x == jnp.min(x), positions, x.size - 1))
        out.append(i)
        x = jnp.where(positions == i, jnp.inf, x)
    return jnp.stack(out)


def _cubic_inverse_one(c: jax.Array) -> jax.Array:
    table = jnp.asarray(_cubic_table(), c.dtype)
    mismatch, excess = _axial_mismatch(table, c[1:])
    starts = table[_local_minima(mismatch**2 + excess**2, _CUBIC_STARTS)]
    u = jnp.concatenate([starts, jax.vmap(_refine_u, in_axes=(0, None))(starts, c[1:])])
    Phi = jnp.arccos(jnp.sqrt(u))
    cos4 = _safe_ratio(_x_from_t4(u, c[1]), (1.0 - u) ** 2)
    phi2 = jnp.arccos(cos4) / 4.0
    euler = jnp.stack([_phi1_from_t4(c[0], Phi, phi2), Phi, phi2], axis=-1)
    residual = jnp.nan_to_num(jnp.sum((_cubic(euler) - c) ** 2, axis=-1), nan=jnp.inf)
    return euler[jnp.argmin(residual)]


@jax.jit
def _cubic_inverse(c: jax.Array) -> jax.Array:
    flat = c.reshape(-1, 3)
    out = jax.lax.map(_cubic_inverse_one, flat, batch_size=_CHUNK)
    return out.reshape(c.shape)
