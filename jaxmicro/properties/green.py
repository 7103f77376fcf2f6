"""Green operators of periodic cells: projections onto compatible (gradient) fields.

A periodic field ``e(x)`` with zero mean is *compatible* when it is a gradient: ``e = grad u``
for a scalar potential (conductivity) or ``e = sym grad u`` for a displacement (elasticity). In
Fourier space, at a wave vector ``xi != 0`` with direction ``n = xi / |xi|``, the orthogonal
projections onto compatible fields are

    vector fields:          G(xi) q     = n (n . q)
    symmetric tensors:      G(xi) sigma = v (x) n + n (x) v - (n . v) n (x) n,   v = sigma n

and ``G(0) = 0`` (the mean is imposed separately). These are the Green operators of
Moulinec & Suquet (1998) for a homogeneous reference medium, scaled by the reference modulus:
``Gamma0 = G / k0`` for an isotropic conductor ``k0``; for elasticity ``G`` is ``Gamma0`` of an
isotropic reference with Lame constants ``lambda0 = 0``, ``mu0 = 1/2`` (eq. (11) of the paper with
those values), for which ``C0`` is the identity in Mandel notation and ``Gamma0`` becomes an
orthogonal projection.

Discretization. Voxels are cubes of unit size and the wave vector of the DFT index ``m`` is
``xi_i = m_i / n_i`` (``numpy.fft.fftfreq``). On an axis of even size the Nyquist index
``|m_i| = n_i / 2`` has no sign, and a projection built from a signed ``xi`` would be neither the
transform of a real operator nor symmetric under rotations of the grid. At a frequency whose
Nyquist components are the axes ``S`` (``|xi_i| = 1/2``, the largest components) ``G`` projects
onto the span of the compatible fields of every sign choice of those components, with the other
components dropped: vectors in ``span{e_i, i in S}``, tensors with at least one index in ``S``.
For one Nyquist axis this is the projection of the wave direction ``e_i``. ``G`` stays a real,
symmetric projection, commutes with the symmetries of the grid, and laminates aligned with the
grid are exact (their fields vary along one axis only).

Tensor fields use Mandel notation: symmetric ``d x d`` tensors as vectors of ``d (d + 1) / 2``
components, off-diagonal entries times ``sqrt(2)``, ordered ``(11, 22, 33, 23, 13, 12)`` in 3D and
``(11, 22, 12)`` in 2D, so that the Euclidean inner product of two vectors is the double
contraction of the tensors.

References: H. Moulinec, P. Suquet, A numerical method for computing the overall response of
nonlinear composites with complex microstructure, Comput. Methods Appl. Mech. Engrg. 157 (1998)
69-94, eqs. (10)-(11).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

MANDEL_PAIRS = {
    2: ((0, 0), (1, 1), (0, 1)),
    3: ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)),
}
"""Tensor index pairs ``(i, j)`` of the Mandel components, per spatial dimension."""


def wave_directions(shape: tuple[int, ...], dtype) -> tuple[list[jax.Array], list[jax.Array]]:
    """Unit wave directions and Nyquist masks on the ``rfftn`` grid of ``shape``.

    Returns:
        ``(n, nyquist)``: ``d`` arrays each, broadcastable to the ``rfftn`` shape
        ``(*shape[:-1], shape[-1] // 2 + 1)``. ``n`` is 0 at the zero frequency; ``nyquist[i]``
        marks the frequencies whose component ``i`` is a Nyquist index, where the projection
        follows the rule of the module docstring instead of ``n``.
    """
    d = len(shape)
    xi, nyquist = [], []
    for axis, n in enumerate(shape):
        m = np.fft.rfftfreq(n) * n if axis == d - 1 else np.fft.fftfreq(n) * n
        bshape = [1] * d
        bshape[axis] = m.size
        xi.append(jnp.asarray((m / n).reshape(bshape), dtype))
        nyquist.append(jnp.asarray((n % 2 == 0) & (np.abs(m) == n // 2)).reshape(bshape))
    norm2 = sum(x * x for x in xi)
    positive = norm2 > 0
    inv = jnp.where(positive, 1.0 / jnp.sqrt(jnp.where(positive, norm2, 1.0)), 0.0)
    return [x * inv for x in xi], nyquist


def _any(masks: list[jax.Array]) -> jax.Array:
    out = masks[0]
    for m in masks[1:]:
        out = out | m
    return out


def project_vectors(q_hat: jax.Array, n: list[jax.Array], nyquist: list[jax.Array]) -> jax.Array:
    """``G q = n (n . q)`` on a transformed vector field ``q_hat`` ``(*rfft_shape, d)``."""
    dot = sum(n_i * q_hat[..., i] for i, n_i in enumerate(n))
    on_nyquist = _any(nyquist)
    out = [
        jnp.where(on_nyquist, jnp.where(nq, q_hat[..., i], 0), n_i * dot)
        for i, (n_i, nq) in enumerate(zip(n, nyquist, strict=True))
    ]
    return jnp.stack(out, axis=-1)


def project_symmetric(s_hat: jax.Array, n: list[jax.Array], nyquist: list[jax.Array]) -> jax.Array:
    """``G sigma = v n + n v - (n . v) n n`` on a transformed Mandel field ``(*rfft_shape, c)``."""
    d = len(n)
    pairs = MANDEL_PAIRS[d]
    entry = {}
    for a, (i, j) in enumerate(pairs):
        value = s_hat[..., a] if i == j else s_hat[..., a] / math.sqrt(2.0)
        entry[i, j] = entry[j, i] = value
    v = [sum(entry[i, j] * n[j] for j in range(d)) for i in range(d)]
    s = sum(v_i * n_i for v_i, n_i in zip(v, n, strict=True))
    on_nyquist = _any(nyquist)
    out = []
    for a, (i, j) in enumerate(pairs):
        g = v[i] * n[j] + n[i] * v[j] - s * n[i] * n[j]
        g = g if i == j else math.sqrt(2.0) * g
        out.append(jnp.where(on_nyquist, jnp.where(nyquist[i] | nyquist[j], s_hat[..., a], 0), g))
    return jnp.stack(out, axis=-1)


def fourier_projector(shape: tuple[int, ...], dtype, kind: str):
    """``G`` acting on ``rfftn`` spectra ``(*rfft_shape, c)``: a pointwise function.

    Args:
        shape: the spatial shape (2 or 3 axes).
        dtype: the real dtype of the fields.
        kind: ``"vector"`` (``c = d``) or ``"symmetric"`` (Mandel, ``c = d (d + 1) / 2``).
    """
    n, nyquist = wave_directions(shape, dtype)
    apply = project_vectors if kind == "vector" else project_symmetric
    return lambda f_hat: apply(f_hat, n, nyquist)


def rfft_weights(shape: tuple[int, ...], dtype) -> jax.Array:
    """Parseval weights of an ``rfftn`` half spectrum, broadcastable to ``(*rfft_shape, 1)``.

    ``sum_x a(x) b(x) = Re sum_k w_k conj(a_k) b_k / N``: ``w = 1`` on the planes of the last axis
    that are their own conjugates (index 0 and, for even size, ``n / 2``), 2 elsewhere.
    """
    m = shape[-1]
    w = np.full(m // 2 + 1, 2.0)
    w[0] = 1.0
    if m % 2 == 0:
        w[-1] = 1.0
    return jnp.asarray(w, dtype)[:, None]


def projector(shape: tuple[int, ...], dtype, kind: str):
    """The compatible-field projection ``G`` of real fields ``(*shape, c)`` as a function.

    Args:
        shape: the spatial shape (2 or 3 axes).
        dtype: the real dtype of the fields.
        kind: ``"vector"`` (``c = d``) or ``"symmetric"`` (Mandel, ``c = d (d + 1) / 2``).

    Returns:
        ``G(field) -> field``, linear, self-adjoint and idempotent; one ``rfftn`` and one
        ``irfftn`` per call.
    """
    axes = tuple(range(len(shape)))
    g_hat = fourier_projector(shape, dtype, kind)

    def project(field: jax.Array) -> jax.Array:
        f_hat = jnp.fft.rfftn(field, axes=axes)
        return jnp.fft.irfftn(g_hat(f_hat), s=shape, axes=axes).astype(field.dtype)

    return project
