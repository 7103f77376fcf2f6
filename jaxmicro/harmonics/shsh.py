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
from jaxmicro.orientations import SYMMETRIES, quat_multiply, symmetry_quats

# Quaternion components of the crystallographic rotations in their standard settings.
_EXACT_COMPONENTS = np.array([0.0, 0.5, math.sqrt(0.5), math.sqrt(0.75), 1.0])


def _check_symmetry(symmetry) -> None:
    _validate.check_choice(symmetry, "symmetry", SYMMETRIES)


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


def shsh_basis(symmetry: str, degree: int) -> np.ndarray:
    """Coefficients of the SHSH of one degree in the HSH of that degree.

    Args:
        symmetry: one of :data:`jaxmicro.orientations.SYMMETRIES`.
        degree: HSH degree ``n >= 0``; odd degrees give an empty basis.

    Returns:
        Read-only float64 NumPy array ((n + 1)**2, d): orthonormal columns; ``hsh(q, n) @ basis``
        are the SHSH of degree ``n``. Cached per (symmetry, degree).
    """
    _check_symmetry(symmetry)
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
    _check_symmetry(symmetry)
    return sum(shsh_dim(symmetry, n) for n in _check_degrees(symmetry, degrees))


def shsh_features(q, symmetry: str, degrees: tuple[int, ...], xp=jnp):
    """:func:`shsh` without checks, for NumPy or jax.numpy (shared with the inverse)."""
    parts = []
    for n in degrees:
        basis = shsh_basis(symmetry, n)
        if basis.shape[1]:
            parts.append(hsh_polynomial(q, n, xp) @ xp.asarray(basis, dtype=q.dtype))
    return xp.concatenate(parts, axis=-1)


# One compiled program per (shape, symmetry, degrees) when called eagerly.
_shsh = jax.jit(functools.partial(shsh_features, xp=jnp), static_argnames=("symmetry", "degrees"))


def shsh(q, symmetry: str, degrees: Sequence[int] = (8,)) -> jax.Array:
    """Symmetrized hyperspherical harmonics, concatenated over degrees.

    Args:
        q: array (..., 4) of unit quaternions, scalar first (P = -1). Concrete inputs are checked
            for NaN and unit norm (tolerance 1e-3); under ``jit``/``grad`` the harmonic
            polynomials are evaluated at ``q`` as given (smooth everywhere, no normalization).
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
    _check_symmetry(symmetry)
    degrees = _check_degrees(symmetry, degrees)
    q = _validate.as_float_array(q, "q")
    _validate.check_trailing(q, "q", 4)
    _validate.check_unit_norm(q, "q")
    return _shsh(q, symmetry, degrees)
