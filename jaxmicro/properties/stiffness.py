"""Stiffness tensors in Mandel notation: isotropic phases, cubic and hexagonal crystals, rotation
of crystal stiffness into the sample frame.

Mandel notation writes a symmetric tensor as the 6-vector ``(s11, s22, s33, sqrt2 s23, sqrt2 s13,
sqrt2 s12)`` (Voigt's order) and a stiffness as the ``6 x 6`` matrix with ``sigma = C eps``
between such vectors. Unlike Voigt notation, the same rule holds for stresses and strains, the
Euclidean inner product is the double contraction, rotations are orthogonal ``6 x 6`` matrices,
and ``C^-1`` is the compliance. Tabulated single-crystal constants ``C_IJ`` are Voigt's: the
shear block is ``2 C44`` in Mandel notation (``voigt_to_mandel`` converts).

Crystal frames: cubic constants refer to the cube axes; hexagonal constants to an orthonormal
frame with ``z`` along ``c`` (the stiffness is transversely isotropic about ``c``, so the in-plane
axes do not matter). Orientations follow ``jaxmicro.orientations``: the passive ``g`` maps sample
to crystal components, so a crystal tensor is brought to the sample frame by ``R = g^T``:
``C_sample[ijkl] = g[pi] g[qj] g[rk] g[sl] C_crystal[pqrs]``.

References: K. Mandel (1965); M. Mehrabadi, S. Cowin, Eigentensors of linear anisotropic elastic
materials, Q. J. Mech. Appl. Math. 43 (1990) 15-41 (the orthonormal basis and 6 x 6 rotations).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.orientations import quat_to_matrix
from jaxmicro.properties.green import MANDEL_PAIRS

_WEIGHTS = np.array([1.0, 1.0, 1.0, math.sqrt(2.0), math.sqrt(2.0), math.sqrt(2.0)])


def _basis() -> np.ndarray:
    """Orthonormal basis ``B[a]`` ``(6, 3, 3)`` of symmetric tensors, in Mandel order."""
    basis = np.zeros((6, 3, 3))
    for a, (i, j) in enumerate(MANDEL_PAIRS[3]):
        w = 1.0 if i == j else 1.0 / math.sqrt(2.0)
        basis[a, i, j] = basis[a, j, i] = w
    return basis


_BASIS = _basis()


def voigt_to_mandel(c_voigt) -> jax.Array:
    """Stiffness ``(..., 6, 6)`` from Voigt to Mandel notation: ``C_M[a, b] = w_a w_b C_V[a, b]``
    with ``w = (1, 1, 1, sqrt2, sqrt2, sqrt2)``."""
    c = _checked_six(c_voigt, "c_voigt")
    w = jnp.asarray(_WEIGHTS, c.dtype)
    return c * w[:, None] * w[None, :]


def mandel_to_voigt(c_mandel) -> jax.Array:
    """Stiffness ``(..., 6, 6)`` from Mandel to Voigt notation (inverse of ``voigt_to_mandel``)."""
    c = _checked_six(c_mandel, "c_mandel")
    w = jnp.asarray(_WEIGHTS, c.dtype)
    return c / (w[:, None] * w[None, :])


def isotropic_stiffness(*, E=None, nu=None, K=None, G=None) -> jax.Array:
    """Isotropic stiffness ``3K J + 2G (I - J)`` in Mandel notation, from ``(E, nu)`` or ``(K, G)``.

    ``J = m m^T / 3`` with ``m = (1, 1, 1, 0, 0, 0)`` is the volumetric projector. Arguments
    broadcast: arrays of moduli give a field ``(..., 6, 6)``.

    Args:
        E, nu: Young's modulus and Poisson's ratio (``-1 < nu < 1/2``), or
        K, G: bulk and shear moduli. Exactly one pair.

    Returns:
        ``(..., 6, 6)``.
    """
    if (E is None) == (K is None) or (E is None) != (nu is None) or (K is None) != (G is None):
        raise ValueError("isotropic_stiffness: pass exactly one of the pairs (E, nu) or (K, G)")
    if E is not None:
        E = _validate.as_float_array(E, "E")
        nu = _validate.as_float_array(nu, "nu")
        K = E / (3 * (1 - 2 * nu))
        G = E / (2 * (1 + nu))
    K = _validate.as_float_array(K, "K")
    G = _validate.as_float_array(G, "G")
    K, G = jnp.broadcast_arrays(K, G)
    m = jnp.asarray([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], K.dtype)
    vol = jnp.outer(m, m) / 3
    eye = jnp.eye(6, dtype=K.dtype)
    return 3 * K[..., None, None] * vol + 2 * G[..., None, None] * (eye - vol)


def cubic_stiffness(c11, c12, c44) -> jax.Array:
    """Cubic single-crystal stiffness (cube axes) in Mandel notation from Voigt constants.

    Args:
        c11, c12, c44: Voigt elastic constants (any unit), broadcastable.

    Returns:
        ``(..., 6, 6)``: ``C11`` and ``C12`` in the normal block, ``2 C44`` on the shear diagonal.
    """
    c11, c12, c44 = jnp.broadcast_arrays(
        *(_validate.as_float_array(c, "c") for c in (c11, c12, c44))
    )
    return _from_constants(
        c11=c11, c22=c11, c33=c11, c12=c12, c13=c12, c23=c12, c44=c44, c55=c44, c66=c44
    )


def hexagonal_stiffness(c11, c12, c13, c33, c44) -> jax.Array:
    """Hexagonal single-crystal stiffness (``z`` along ``c``) in Mandel notation from Voigt
    constants; ``C66 = (C11 - C12) / 2``.

    Returns:
        ``(..., 6, 6)``.
    """
    args = (c11, c12, c13, c33, c44)
    c11, c12, c13, c33, c44 = jnp.broadcast_arrays(
        *(_validate.as_float_array(c, "c") for c in args)
    )
    return _from_constants(
        c11=c11, c22=c11, c33=c33, c12=c12, c13=c13, c23=c13, c44=c44, c55=c44, c66=(c11 - c12) / 2
    )


def _from_constants(*, c11, c22, c33, c12, c13, c23, c44, c55, c66) -> jax.Array:
    zero = jnp.zeros_like(c11)
    rows = [
        [c11, c12, c13, zero, zero, zero],
        [c12, c22, c23, zero, zero, zero],
        [c13, c23, c33, zero, zero, zero],
        [zero, zero, zero, 2 * c44, zero, zero],
        [zero, zero, zero, zero, 2 * c55, zero],
        [zero, zero, zero, zero, zero, 2 * c66],
    ]
    return jnp.stack([jnp.stack(r, -1) for r in rows], -2)


def mandel_rotation(r) -> jax.Array:
    """The orthogonal ``6 x 6`` matrix ``M`` with ``mandel(R s R^T) = M mandel(s)``.

    Args:
        r: rotation matrices ``(..., 3, 3)`` (active on the tensor components).

    Returns:
        ``(..., 6, 6)``; ``M(R1 R2) = M(R1) M(R2)``, ``M(R^T) = M(R)^T``.
    """
    r = _validate.as_float_array(r, "r")
    _validate.check_trailing(r, "r", 3)
    basis = jnp.asarray(_BASIS, r.dtype)
    return jnp.einsum("aij,...ik,bkl,...jl->...ab", basis, r, basis, r)


def rotate_stiffness(c_crystal, q) -> jax.Array:
    """Stiffness of crystals with orientations ``q``, in the sample frame (Mandel notation).

    ``C_sample = M(g^T) C_crystal M(g^T)^T`` with ``g = quat_to_matrix(q)`` (passive, sample ->
    crystal components) and ``M`` of ``mandel_rotation``.

    Args:
        c_crystal: crystal-frame stiffness ``(..., 6, 6)`` (e.g. ``cubic_stiffness(...)``).
        q: unit quaternions ``(..., 4)`` (package conventions), broadcastable against the leading
          shape of ``c_crystal``: one crystal stiffness and an orientation field give a stiffness
          field ``(*spatial, 6, 6)``.

    Returns:
        ``(..., 6, 6)``.
    """
    c = _checked_six(c_crystal, "c_crystal")
    g = quat_to_matrix(q).astype(c.dtype)
    m = mandel_rotation(jnp.swapaxes(g, -1, -2))
    return m @ c @ jnp.swapaxes(m, -1, -2)


def _checked_six(c, name: str) -> jax.Array:
    c = _validate.as_float_array(c, name)
    if c.ndim < 2 or c.shape[-2:] != (6, 6):
        raise ValueError(f"{name}: expected trailing axes (6, 6), got shape {c.shape}")
    return c
