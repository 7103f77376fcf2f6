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
``|m_i| = n_i / 2`` has no sign, and a projection built from a signed ``xi`` would not be the
transform of a real operator. At frequencies with a Nyquist component this module keeps only the
Nyquist components of ``xi`` (the largest ones, ``|xi_i| = 1/2``), which keeps ``G`` a real,
symmetric projection and makes laminates aligned with the grid exact (their fields vary along
one axis only, where this direction is the true one).

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


def wave_directions(shape: tuple[int, ...], dtype) -> list[jax.Array]:
    """Unit wave directions ``n`` on the ``rfftn`` grid of ``shape``, one array per component.

    Each array has the ``rfftn`` shape ``(*shape[:-1], shape[-1] // 2 + 1)``; ``n = 0`` at the
    zero frequency. Nyquist frequencies follow the rule of the module docstring.
    """
    d = len(shape)
    xi, nyquist = [], []
    for axis, n in enumerate(shape):
        m = np.fft.rfftfreq(n) * n if axis == d - 1 else np.fft.fftfreq(n) * n
        bshape = [1] * d
        bshape[axis] = m.size
        xi.append(jnp.asarray((m / n).reshape(bshape), dtype))
        nyquist.append(jnp.asarray((n % 2 == 0) & (np.abs(m) == n // 2)).reshape(bshape))
    any_nyquist = nyquist[0]
    for nq in nyquist[1:]:
        any_nyquist = any_nyquist | nq
    xi = [
        jnp.where(any_nyquist & ~nq, 0.0, x).astype(dtype)
        for x, nq in zip(xi, nyquist, strict=True)
    ]
    norm2 = sum(x * x for x in xi)
    positive = norm2 > 0
    inv = jnp.where(positive, 1.0 / jnp.sqrt(jnp.where(positive, norm2, 1.0)), 0.0)
    return [x * inv for x in xi]


def project_vectors(q_hat: jax.Array, n: list[jax.Array]) -> jax.Array:
    """``G q = n (n . q)`` on a transformed vector field ``q_hat`` ``(*rfft_shape, d)``."""
    dot = sum(n_i * q_hat[..., i] for i, n_i in enumerate(n))
    return jnp.stack([n_i * dot for n_i in n], axis=-1)


def project_symmetric(s_hat: jax.Array, n: list[jax.Array]) -> jax.Array:
    """``G sigma = v n + n v - (n . v) n n`` on a transformed Mandel field ``(*rfft_shape, c)``."""
    d = len(n)
    pairs = MANDEL_PAIRS[d]
    entry = {}
    for a, (i, j) in enumerate(pairs):
        value = s_hat[..., a] if i == j else s_hat[..., a] / math.sqrt(2.0)
        entry[i, j] = entry[j, i] = value
    v = [sum(entry[i, j] * n[j] for j in range(d)) for i in range(d)]
    s = sum(v_i * n_i for v_i, n_i in zip(v, n, strict=True))
    out = []
    for i, j in pairs:
        g = v[i] * n[j] + n[i] * v[j] - s * n[i] * n[j]
        out.append(g if i == j else math.sqrt(2.0) * g)
    return jnp.stack(out, axis=-1)


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
    n = wave_directions(shape, dtype)
    apply = project_vectors if kind == "vector" else project_symmetric

    def project(field: jax.Array) -> jax.Array:
        f_hat = jnp.fft.rfftn(field, axes=axes)
        return jnp.fft.irfftn(apply(f_hat, n), s=shape, axes=axes).astype(field.dtype)

    return project
