"""Inverse of the SHSH feature map: features -> a quaternion in the fundamental zone.

Nearest neighbours in a constant database of SHSH features of ``database_size`` nearly uniform
orientations (super-Fibonacci points, which cover the fundamental zone about as densely as
``database_size`` points placed in it, since the features are symmetry invariant) give a few
starting quaternions (the nearest entry of each of a few interleaved sub-databases); each is
refined by damped Gauss-Newton (Levenberg-Marquardt) steps on ``|| shsh(q / |q|) - features ||^2``,
and the candidate with the smallest residual wins. The
normalization leaves ``J`` a null direction along ``q``; the damped normal equations give no update
along it, so the 4-parameter step stays tangent to S^3.

The map is injective (up to symmetry) only when the chosen degrees determine the orientation:
the cubic degree-8 set is the rotated cubic harmonic of degree 4, whose rotational stabilizer is
exactly O, so it is; the hexagonal degrees 4 and 8 hold only zonal harmonics (functions of the
c-axis direction) and are not; add degree 12 for hexagonal.

References:
    mcr-shsh §2.2 (recovery of orientations from SHSH and its ambiguities);
    M. Alexa, Super-Fibonacci spirals, CVPR 2022 (database points).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.harmonics._sampling import super_fibonacci
from jaxmicro.harmonics.shsh import _check_degrees, shsh_features
from jaxmicro.orientations import check_symmetry, to_fundamental_zone


@functools.lru_cache(maxsize=8)
def _database(symmetry: str, degrees: tuple[int, ...], size: int) -> tuple[np.ndarray, np.ndarray]:
    quats = super_fibonacci(size)
    feats = shsh_features(quats, symmetry, degrees, xp=np)
    return quats, feats


def _nearest(features, db_feats, db_sq, candidates: int, block: int):
    """Indices (M, candidates): the nearest row of each interleaved sub-database i::candidates.

    Each residue class of the super-Fibonacci indices is itself spread over all of S^3, so the
    candidates are good and distinct starts; one argmax over (rows/k, k) also avoids ``top_k``,
    which is slow on CPU.
    """

    def one(f):
        score = 2.0 * (db_feats @ f) - db_sq  # -|d - f|^2 + |f|^2
        best = jnp.argmax(score.reshape(-1, candidates), axis=0)
        return best * candidates + jnp.arange(candidates)

    return jax.lax.map(one, features, batch_size=block)


def _refine(q, target, symmetry: str, degrees: tuple[int, ...], steps: int):
    """Levenberg-Marquardt on the unit sphere from q (4,) toward target (d,); returns (q, cost)."""

    def resid(p):
        return shsh_features(p / jnp.linalg.norm(p), symmetry, degrees) - target

    def step(_, p):
        r, jac = resid(p), jax.jacfwd(resid)(p)
        jtj = jac.T @ jac
        damping = 1e-6 * jnp.trace(jtj) + jnp.finfo(p.dtype).tiny
        delta = jnp.linalg.solve(jtj + damping * jnp.eye(4, dtype=p.dtype), jac.T @ r)
        p = p - delta
        return p / jnp.linalg.norm(p)

    q = jax.lax.fori_loop(0, steps, step, q)
    r = resid(q)
    return q, r @ r


def shsh_to_quat(
    features,
    symmetry: str,
    degrees: Sequence[int] = (8,),
    *,
    database_size: int = 10_000,
    candidates: int = 4,
    steps: int = 8,
    block: int = 256,
) -> jax.Array:
    """Orientations whose SHSH features are closest to ``features``.

    Args:
        features: array (..., shsh_size(symmetry, degrees)) of SHSH features, e.g. from
            :func:`jaxmicro.harmonics.shsh`; need not be exactly realizable (least squares).
        symmetry: crystal symmetry (static), as in :func:`jaxmicro.harmonics.shsh`.
        degrees: the even degrees the features were computed with (static).
        database_size: number of database orientations (static); at 10,000 the nearest entry of a
            cubic orientation is typically ~2 degrees away before refinement (measured: from
            1,000 entries on, 5,000 random cubic and hexagonal orientations all converge).
        candidates: starts refined per query (static): the nearest entry in each of
            ``candidates`` interleaved sub-databases; the lowest final residual wins, which
            guards against local minima of the non-convex residual.
        steps: Levenberg-Marquardt steps per candidate (static).
        block: queries per block of the brute-force nearest-neighbour search (bounds memory to
            ``block * database_size`` scores).

    Returns:
        Array (..., 4) of unit quaternions of the dtype of ``features``, in the fundamental zone
        of ``symmetry`` (``jaxmicro.orientations.to_fundamental_zone``). Jittable; gradients
        with respect to ``features`` flow through the refinement steps only (the database lookup
        is piecewise constant). Where the degrees do not determine the orientation (see module
        docstring) the result is one of the orientations with these features.

    References:
        mcr-shsh §2.2; Mason & Schuh, Acta Mater. 56 (2008) 6141.
    """
    check_symmetry(symmetry)
    degrees = _check_degrees(symmetry, degrees)
    features = _validate.as_float_array(features, "features")
    if not 1 <= candidates <= database_size:
        raise ValueError(f"candidates: expected 1..database_size, got {candidates}")
    rows = int(database_size) // candidates * candidates
    _validate.check_trailing(features, "features", _database(symmetry, degrees, rows)[1].shape[1])
    _validate.check_finite(features, "features")
    batch = features.shape[:-1]
    flat = features.reshape(-1, features.shape[-1])
    quats = _invert(flat, symmetry, degrees, rows, candidates, steps, block)
    return quats.reshape(*batch, 4)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def _invert(features, symmetry, degrees, rows, candidates, steps, block):
    """(M, d) features -> (M, 4) quaternions in the fundamental zone."""
    db_quats, db_feats = _database(symmetry, degrees, rows)
    # Constants are prepared in NumPy: XLA would constant-fold them slowly at compile time.
    dtype = np.dtype(features.dtype)
    db_sq = np.sum(db_feats * db_feats, axis=-1).astype(dtype)
    idx = _nearest(features, db_feats.astype(dtype), db_sq, candidates, block)
    starts = jnp.asarray(db_quats.astype(dtype))[idx]  # (M, k, 4)
    refine = functools.partial(_refine, symmetry=symmetry, degrees=degrees, steps=steps)
    quats, cost = jax.vmap(jax.vmap(refine, in_axes=(0, None)))(starts, features)
    best = jnp.take_along_axis(quats, jnp.argmin(cost, axis=-1)[:, None, None], axis=1)[:, 0]
    return to_fundamental_zone(best, symmetry)
