"""Symmetrized hyperspherical harmonics (SHSH): HSH invariant under crystal symmetry and q -> -q.

Crystal symmetry acts on orientations as ``g -> S g``, i.e. on quaternions as
``q -> quat_multiply(s, q)`` for each ``s`` of ``jaxmicro.orientations.symmetry_quats``. This
action maps the HSH space of degree ``n`` onto itself, ``hsh(s q) = R_s hsh(q)`` with an orthogonal
``R_s``. The SHSH of degree ``n`` are an orthonormal basis of the subspace fixed by every ``R_s``
and by ``q -> -q`` (which multiplies degree ``n`` by ``(-1)**n``, so odd degrees have none): the
range of the projector ``mean_s R_s``.

The basis is built once per ``(symmetry, degree)`` in float64 NumPy and cached: ``R_s`` by exact
least squares on generic sample points, the projector's range by ``eigh`` (eigenvalue 1), and a
canonical orthonormal basis of that range by Gram-Schmidt on the projector's columns in HSH index
order (so the result does not depend on how LAPACK orders a degenerate eigenspace). Each SHSH is
a fixed real combination of the HSH of :func:`jaxmicro.harmonics.hsh`, hence orthonormal on S^3.

Evaluation: each SHSH of degree ``n`` equals on S^3 a homogeneous polynomial of degree ``n`` in
the four quaternion components (``C(n + 3, 3)`` monomials, 165 for ``n = 8``). Its coefficients
are fitted once per ``(symmetry, degree)`` in float64 against the HSH recurrence (least squares on
generic points of S^3 with unit-norm columns; a homogeneous polynomial is determined by its values
on S^3, so the fit is exact up to rounding: ~5e-15 at ``n = 8``, ~1e-12 at ``n = 24``), and
:func:`shsh` evaluates ``coefficients.T @ monomials(q)``: power tables, one outer product per
block of monomials and one matrix product. The derivative of a polynomial is a polynomial of
degree ``n - 1`` whose coefficients follow exactly from the power rule, so the JVP is one more
such evaluation (``custom_jvp``, recursively for higher orders) instead of autodiff through the
recurrence, whose gathers become slow scatters in reverse mode (128x128 float32 map, cubic
degree 8: value + gradient 6 ms instead of 100 ms on the shared 2-core CPU). On S^3 the sum of
``|coefficient x monomial|`` stays within 6x the largest SHSH value at ``n = 8`` (70x at
``n = 16``), which bounds the float32 rounding error (4e-7 at ``n = 8``). Off S^3 the features
are that homogeneous polynomial: ``shsh(c q) = c**n shsh(q)``.

Dimensions follow from representation theory: the HSH of degree ``n = 2j`` carry the irreducible
representation ``D^j x D^j`` of SO(4), with crystal symmetry acting on one factor only, so
``dim = (n + 1) * (multiplicity of the trivial representation of the rotation group in D^j)``.
For cubic (O): n = 0, 8, 12, 16, 18, 20, 24 -> 1, 9, 13, 17, 19, 21, 50 and 0 for n = 2, 4, 6, 10,
14, 22; the cubic degree-8 set (9 functions) is the rotated cubic harmonic of degree 4, which
determines the orientation up to symmetry.

References:
    J. K. Mason, C. A. Schuh, Acta Mater. 56 (2008) 6141 (symmetrized harmonics);
    mcr-shsh §2.2, eqs. (17)-(18).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.harmonics._sampling import super_fibonacci
from jaxmicro.harmonics.hsh import _check_degree, hsh_polynomial
from jaxmicro.orientations import check_symmetry, quat_multiply, symmetry_quats

# Quaternion components of the crystallographic rotations in their standard settings.
_EXACT_COMPONENTS = np.array([0.0, 0.5, math.sqrt(0.5), math.sqrt(0.75), 1.0])


def _exact(values: np.ndarray) -> np.ndarray:
    """Snaps entries within 1e-5 of a crystallographic value to it (float32 tables -> float64)."""
    mag = np.abs(values)
    nearest = _EXACT_COMPONENTS[np.argmin(np.abs(mag[..., None] - _EXACT_COMPONENTS), axis=-1)]
    return np.where(np.abs(mag - nearest) < 1e-5, np.sign(values) * nearest, values)


def _symmetric_images(symmetry: str, points: np.ndarray) -> np.ndarray:
    """quat_multiply(s, p) for every symmetry element s and point p, float64, shape (g, N, 4)."""
    # Evaluated eagerly and in float64 even when called while tracing or with x64 disabled.
    with jax.enable_x64(True), jax.ensure_compile_time_eval():
        s = _exact(np.asarray(symmetry_quats(symmetry, np.float64), dtype=np.float64))
        s = s / np.linalg.norm(s, axis=-1, keepdims=True)
        images = quat_multiply(jnp.asarray(s)[:, None, :], jnp.asarray(points)[None, :, :])
        return np.asarray(images, dtype=np.float64)


def _canonical_basis(projector: np.ndarray, rank: int) -> np.ndarray:
    """Orthonormal basis of range(projector): Gram-Schmidt on its columns in index order."""
    basis = np.zeros((projector.shape[0], 0))
    for col in projector.T:
        if basis.shape[1] == rank:
            break
        resid = col - basis @ (basis.T @ col)
        resid = resid - basis @ (basis.T @ resid)  # second pass keeps it orthogonal to 1e-16
        norm = np.linalg.norm(resid)
        if norm > 1e-6:
            basis = np.concatenate([basis, (resid / norm)[:, None]], axis=1)
    return basis


@functools.cache
def _basis(symmetry: str, degree: int) -> np.ndarray:
    size = (degree + 1) ** 2
    if degree % 2:
        return np.zeros((size, 0))
    points = super_fibonacci(2 * size + 64)
    h = hsh_polynomial(points, degree, np)
    images = _symmetric_images(symmetry, points)
    pinv = np.linalg.pinv(h)
    # hsh(s p) = R_s hsh(p) for all p; in rows H_s = H R_s^T, solved exactly by least squares.
    projector = np.mean([(pinv @ hsh_polynomial(im, degree, np)).T for im in images], axis=0)
    projector = 0.5 * (projector + projector.T)
    eigval, _ = np.linalg.eigh(projector)
    if np.max(np.minimum(np.abs(eigval), np.abs(eigval - 1.0))) > 1e-8:
        raise RuntimeError(
            f"symmetry {symmetry!r}: the averaged representation at degree {degree} is not a "
            "projector; symmetry_quats does not return a closed group"
        )
    basis = _canonical_basis(projector, int(np.sum(eigval > 0.5)))
    basis.setflags(write=False)
    return basis


@functools.cache
def _exponents(degree: int) -> tuple[tuple[int, int, int, int], ...]:
    """Exponents ``(a, b, c, d)`` of ``q0^a q1^b q2^c q3^d``, ``a + b + c + d = degree``.

    In the order of :func:`_monomials`: by ``s = a + b``, then ``b``, then ``d``.
    """
    n = degree
    return tuple(
        (s - b, b, n - s - d, d)
        for s in range(n + 1)
        for b in range(s + 1)
        for d in range(n - s + 1)
    )


def _monomials(q, degree: int, xp):
    """The monomials of :func:`_exponents` at ``q`` (..., 4), stacked first: (C(n + 3, 3), ...).

    Built from power tables by one outer product per block ``a + b = s`` (a few dozen operations
    for any degree, so compilation stays fast); never differentiated (see :func:`_polynomial`).
    """
    qt = xp.moveaxis(q, -1, 0)
    powers = [xp.ones_like(qt)]
    for _ in range(degree):
        powers.append(powers[-1] * qt)
    p = xp.stack(powers, axis=1)  # (4, n + 1, ...): p[i, k] = q_i**k
    blocks = []
    for s in range(degree + 1):
        left = p[0, s::-1] * p[1, : s + 1]  # q0^(s - b) q1^b, b = 0..s
        right = p[2, degree - s :: -1] * p[3, : degree - s + 1]  # q2^(n - s - d) q3^d
        blocks.append((left[:, None] * right[None]).reshape((-1, *q.shape[:-1])))
    return xp.concatenate(blocks, axis=0)


@functools.cache
def _coefficients(symmetry: str, degree: int, order: int = 0) -> np.ndarray:
    """Monomial coefficients of the SHSH of one degree (order 0) or of their derivatives.

    Order 0: (C(n + 3, 3), d) with ``shsh_features(q, symmetry, (n,)) = monomials(q) @ coef``,
    fitted in float64 by least squares against the HSH recurrence on generic points of S^3
    (unit-norm columns). Order k: (C(n - k + 3, 3), 4**k * d), the coefficients of the k-th
    derivative tensor ``d^k f / dq_{i_1} ... dq_{i_k}`` (index ``i_k`` outermost), obtained
    exactly from order k - 1 by the power rule.
    """
    if order == 0:
        points = super_fibonacci(2 * len(_exponents(degree)) + 64)
        values = hsh_polynomial(points, degree, np) @ _basis(symmetry, degree)
        design = _monomials(points, degree, np).T
        scale = np.linalg.norm(design, axis=0)  # condition number 15 at n = 8, 2e4 at n = 24
        coef = np.linalg.lstsq(design / scale, values, rcond=None)[0] / scale[:, None]
        if np.max(np.abs(design @ coef - values), initial=0.0) > 1e-9:
            raise RuntimeError(f"symmetry {symmetry!r}, degree {degree}: monomial fit failed")
    else:
        upper = _coefficients(symmetry, degree, order - 1)
        m = degree - order  # degree of the derivative
        row = {e: j for j, e in enumerate(_exponents(m))}
        coef = np.zeros((len(row), 4, upper.shape[1]))
        for k, e in enumerate(_exponents(m + 1)):
            for i in np.flatnonzero(e):
                lower = list(e)
                lower[i] -= 1
                coef[row[tuple(lower)], i] += e[i] * upper[k]
        coef = coef.reshape(len(row), -1)
    coef.setflags(write=False)
    return coef


def _evaluate(q, symmetry: str, degree: int, order: int, xp):
    """``monomials(q) @ _coefficients(symmetry, degree, order)``: (..., 4**order * d)."""
    coef = xp.asarray(_coefficients(symmetry, degree, order).T, dtype=q.dtype)
    # Contracting the monomials' leading axis in place (no transposed copy of the monomials).
    return xp.moveaxis(xp.tensordot(coef, _monomials(q, degree - order, xp), axes=(1, 0)), 0, -1)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _polynomial(q, symmetry: str, degree: int, order: int):
    """:func:`_evaluate` in JAX, differentiated through the derivative's own coefficients.

    Autodiff through :func:`_monomials` would be slow (its reverse pass reduces over broadcast
    axes); the derivative of a polynomial is another polynomial, so the JVP is one more
    evaluation of degree ``n - 1``, and its transpose is a per-site contraction.
    """
    return _evaluate(q, symmetry, degree, order, jnp)


@_polynomial.defjvp
def _polynomial_jvp(symmetry, degree, order, primals, tangents):
    (q,), (dq,) = primals, tangents
    m = degree - order
    if m == 0:
        value = _polynomial(q, symmetry, degree, order)
        return value, jnp.zeros_like(value)
    jac = _polynomial(q, symmetry, degree, order + 1)
    jac = jac.reshape(*q.shape[:-1], 4, jac.shape[-1] // 4)
    # Euler's identity for a homogeneous polynomial of degree m: f(q) = q . grad f(q) / m.
    value = jnp.einsum("...if,...i->...f", jac, q) / m
    return value, jnp.einsum("...if,...i->...f", jac, dq)


def shsh_basis(symmetry: str, degree: int) -> np.ndarray:
    """Coefficients of the SHSH of one degree in the HSH of that degree.

    Args:
        symmetry: one of :data:`jaxmicro.orientations.SYMMETRIES`.
        degree: HSH degree ``n >= 0``; odd degrees give an empty basis.

    Returns:
        Read-only float64 NumPy array ((n + 1)**2, d): orthonormal columns; ``hsh(q, n) @ basis``
        are the SHSH of degree ``n``. Cached per (symmetry, degree).
    """
    check_symmetry(symmetry)
    _check_degree(degree)
    return _basis(symmetry, int(degree))


def shsh_dim(symmetry: str, degree: int) -> int:
    """Number of SHSH of one degree (0 for odd degrees and e.g. cubic n = 2, 4, 6, 10)."""
    return shsh_basis(symmetry, degree).shape[1]


def _check_degrees(symmetry: str, degrees) -> tuple[int, ...]:
    if isinstance(degrees, int | np.integer):
        degrees = (degrees,)
    if not isinstance(degrees, Sequence) or len(degrees) == 0:
        raise ValueError(
            f"degrees: expected a non-empty sequence of even integers, got {degrees!r}"
        )
    for n in degrees:
        _check_degree(n)
        if n % 2:
            raise ValueError(
                f"degrees: degree {n} is odd; invariance under q -> -q leaves no symmetrized "
                "harmonics of odd degree"
            )
    degrees = tuple(int(n) for n in degrees)
    if sum(shsh_dim(symmetry, n) for n in degrees) == 0:
        raise ValueError(f"degrees: {degrees} give no symmetrized harmonics for {symmetry!r}")
    return degrees


def shsh_size(symmetry: str, degrees: Sequence[int] = (8,)) -> int:
    """Length of the feature vector of :func:`shsh` for these degrees."""
    check_symmetry(symmetry)
    return sum(shsh_dim(symmetry, n) for n in _check_degrees(symmetry, degrees))


def shsh_features(q, symmetry: str, degrees: tuple[int, ...], xp=jnp):
    """:func:`shsh` without checks, for NumPy or jax.numpy (shared with the inverse)."""
    parts = [
        _polynomial(q, symmetry, n, 0) if xp is jnp else _evaluate(q, symmetry, n, 0, xp)
        for n in degrees
        if shsh_dim(symmetry, n)
    ]
    return xp.concatenate(parts, axis=-1)


# One compiled program per (shape, symmetry, degrees) when called eagerly.
_shsh = jax.jit(functools.partial(shsh_features, xp=jnp), static_argnames=("symmetry", "degrees"))


def shsh(q, symmetry: str, degrees: Sequence[int] = (8,)) -> jax.Array:
    """Symmetrized hyperspherical harmonics, concatenated over degrees.

    Args:
        q: array (..., 4) of unit quaternions, scalar first (P = -1). Concrete inputs are checked
            for NaN and unit norm (tolerance 1e-3); under ``jit``/``grad`` the homogeneous
            polynomials that equal the SHSH on S^3 are evaluated at ``q`` as given (smooth
            everywhere, no normalization; degree ``n`` scales as ``|q|**n``).
        symmetry: crystal symmetry, one of :data:`jaxmicro.orientations.SYMMETRIES` (static).
        degrees: even HSH degrees (static); degrees without SHSH for this symmetry contribute
            nothing, but not all of them may be empty. Default ``(8,)``: the 9 cubic functions.

    Returns:
        Array (..., shsh_size(symmetry, degrees)) of the dtype of ``q``, invariant under
        ``q -> quat_multiply(s, q)`` for every symmetry element ``s`` and under ``q -> -q``;
        orthonormal on S^3 (measure ``2 pi^2``).

    References:
        Mason & Schuh, Acta Mater. 56 (2008) 6141 (symmetrized HSH); mcr-shsh §2.2, eq. (18).
    """
    check_symmetry(symmetry)
    degrees = _check_degrees(symmetry, degrees)
    q = _validate.as_float_array(q, "q")
    _validate.check_trailing(q, "q", 4)
    _validate.check_unit_norm(q, "q")
    return _shsh(q, symmetry, degrees)
