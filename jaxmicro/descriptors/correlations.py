"""1- and 2-point spatial statistics of channels-last fields, computed with real FFTs.

A field ``m`` has shape ``(*spatial, C)``: N-phase indicators, SHSH/ROGSH coefficient fields or any
real features. The 2-point statistic of channels ``a, b`` at lag ``r`` is the mean over sites ``s``
of ``m[s, a] * m[s + r, b]``. Periodic fields use circular shifts and divide by the number of
voxels; non-periodic fields are zero-padded and divided by the (mask-weighted) number of pairs, as
in PyMKS. Lags are returned on a centred window: lag 0 sits at index ``n // 2`` of each axis
(``numpy.fft.fftshift`` layout) or at index ``L`` when ``max_lag=L``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.descriptors import _fields

Pairs = str | Sequence[tuple[int, int]]


def one_point(m, *, mask=None) -> jax.Array:
    """1-point statistics: the mean of each channel (volume fractions for phase indicators).

    Args:
      m: field ``(*spatial, C)`` with 2 or 3 spatial axes.
      mask: optional confidence weights ``(*spatial)`` in [0, 1]; the mean is then weighted.

    Returns:
      ``(C,)`` array in the dtype of ``m``.

    References:
      Buzzy et al., Acta Mater. 2024 (rogsh-local-global), Sec. 3.1.
    """
    m = _fields.as_field(m)
    return _one_point(m, None if mask is None else _as_mask(mask, m))


@jax.jit
def _one_point(m: jax.Array, w: jax.Array | None) -> jax.Array:
    axes = tuple(range(m.ndim - 1))
    if w is None:
        return jnp.mean(m, axis=axes)
    return jnp.sum(m * w[..., None], axis=axes) / jnp.sum(w)


def two_point(
    m,
    *,
    periodic: bool = True,
    mask=None,
    max_lag: int | Sequence[int] | None = None,
    pairs: Pairs = "all",
) -> jax.Array:
    """2-point correlations ``f[a, b, r] = mean_s m[s, a] * m[s + r, b]`` on a centred lag window.

    One batched ``rfftn`` over the channels, products in Fourier space (with a phase ramp that
    centres the lags), one batched ``irfftn`` over the requested pairs, then the lag window is
    a slice. Only pairs ``a <= b`` are transformed; ``f[b, a, r] = f[a, b, -r]`` supplies the
    others.

    Args:
      m: field ``(*spatial, C)`` with 2 or 3 spatial axes (float32 or float64; ints promoted).
      periodic: circular shifts, denominator = number of voxels. If False, the field is
        zero-padded (no wrap-around) and each lag is divided by its number of valid pairs.
      mask: optional confidence field ``(*spatial)`` with values in [0, 1] (PyMKS convention).
        The field is multiplied by it and each lag is divided by the autocorrelation of the
        mask (the weighted count of valid pairs) instead of the voxel count. Lags whose count is
        numerically zero (below ``64 * eps * sum(mask**2)``) return 0. Works with either
        ``periodic`` value.
      max_lag: half-width ``L`` of the lag window (int, or one per spatial axis). The output
        keeps lags ``|r_i| <= L_i`` (size ``2 L_i + 1``, lag 0 at index ``L_i``). Periodic:
        ``L_i <= n_i // 2`` (for even ``n_i`` the two ends ``+-n_i/2`` are the same lag);
        non-periodic: ``L_i <= n_i - 1``. ``None`` keeps ``n_i`` lags ``-(n_i // 2) ..
        n_i - 1 - n_i // 2`` (lag 0 at index ``n_i // 2``) in both modes.
      pairs: ``'all'`` -> output ``(C, C, *lags)``; ``'auto'`` -> ``(C, *lags)`` (entry
        ``[a] = f[a, a]``); a sequence of ``(a, b)`` -> ``(P, *lags)`` in the order given.

    Returns:
      Array in the dtype of ``m`` with the shape given under ``pairs``.

    Raises:
      ValueError: bad ``m`` rank, ``mask`` shape/range, ``max_lag`` or ``pairs``.

    References:
      Buzzy et al., Acta Mater. 2024 (rogsh-local-global), Sec. 3.1, eqs. 1-2; SHSH-MCR paper
      (mcr-shsh), Sec. 2.3, eq. 19; non-periodic normalization as in PyMKS ``two_point_stats``.
    """
    m = _fields.as_field(m)
    spatial = m.shape[:-1]
    out_pairs, lead_shape = _resolve_pairs(pairs, m.shape[-1])
    if max_lag is None:
        below = tuple(n // 2 for n in spatial)
        above = tuple(n - 1 - n // 2 for n in spatial)
    else:
        limit = (lambda n: n // 2) if periodic else (lambda n: n - 1)
        below = above = _fields.lag_extent(max_lag, spatial, limit=limit)
    sizes = (
        tuple(spatial)
        if periodic
        else tuple(
            _fft_size(n + max(lo, hi)) for n, lo, hi in zip(spatial, below, above, strict=True)
        )
    )

    w = None if mask is None else _as_mask(mask, m)
    return _two_point(
        m,
        w,
        periodic=bool(periodic),
        sizes=sizes,
        below=below,
        above=above,
        out_pairs=tuple(out_pairs),
        lead_shape=lead_shape,
    )


@functools.partial(
    jax.jit, static_argnames=("periodic", "sizes", "below", "above", "out_pairs", "lead_shape")
)
def _two_point(m, w, *, periodic, sizes, below, above, out_pairs, lead_shape) -> jax.Array:
    """The FFT kernel of ``two_point`` (arguments validated and resolved there)."""
    spatial = m.shape[:-1]
    nd = len(spatial)
    x = m if w is None else m * w[..., None]
    # Transform channels-last over the leading axes and move the channels of the (half-size)
    # spectrum: ~40% cheaper than moving the channels of the input first (64^3 x 9, XLA:CPU).
    spec = jnp.moveaxis(jnp.fft.rfftn(x, s=sizes, axes=tuple(range(nd))), -1, 0)

    canon = sorted({(min(a, b), max(a, b)) for a, b in out_pairs})
    ia = np.array([a for a, _ in canon])
    ib = np.array([b for _, b in canon])
    scale = 1.0 / float(np.prod(spatial)) if (w is None and periodic) else 1.0
    spec_a = _take(spec, ia)
    spec_b = spec_a if np.array_equal(ia, ib) else _take(spec, ib)
    corr = _shifted_correlation(spec_a, spec_b, sizes, below, scale)

    # f[b, a] is f[a, b] at -r: read the needed canonical pairs backwards instead of transforming.
    position = {p: i for i, p in enumerate(canon)}
    flipped = sorted({position[(b, a)] for a, b in out_pairs if a > b})
    parts = [_lag_window(corr, below, above)]
    if flipped:
        parts.append(_lag_window(_take(corr, np.array(flipped)), below, above, negate=True))
    corr = jnp.concatenate(parts) if flipped else parts[0]
    take = np.array(
        [
            position[(a, b)] if a <= b else len(canon) + flipped.index(position[(b, a)])
            for a, b in out_pairs
        ]
    )
    corr = _take(corr, take)
    if w is not None or not periodic:
        corr = corr * _inverse_pair_count(w, spatial, sizes, below, above, m.dtype)
    return corr.reshape(lead_shape + corr.shape[1:])


def _shifted_correlation(spec_a, spec_b, sizes, below, scale) -> jax.Array:
    """``scale * irfftn(conj(A) B)`` with lag ``r`` at index ``(r + below_i) mod P_i``.

    The circular shift by ``below`` is a phase ramp in Fourier space, fused with the product,
    so the lag window is a plain leading slice of the result (no fftshift pass).
    """
    nd = len(sizes)
    if spec_a is spec_b:
        # Auto terms: |A|^2 is real, which saves a complex pass forward and backward.
        prod = jnp.real(spec_a) ** 2 + jnp.imag(spec_a) ** 2
    else:
        prod = jnp.conj(spec_a) * spec_b
    for i, (p, b) in enumerate(zip(sizes, below, strict=True)):
        k = np.arange(p // 2 + 1 if i == nd - 1 else p)
        ramp = np.exp(-2j * np.pi * ((k * b) % p) / p) * (scale if i == 0 else 1.0)
        shape = [1] * (nd + 1)
        shape[i + 1] = k.size
        prod = prod * jnp.asarray(ramp.reshape(shape), spec_a.dtype)
    return jnp.fft.irfftn(prod, s=sizes, axes=tuple(range(1, nd + 1)))


def _lag_window(y: jax.Array, below, above, *, negate: bool = False) -> jax.Array:
    """Lags ``-below_i .. above_i`` of a shifted correlation (see ``_shifted_correlation``).

    Index ``j`` reads ``j mod P_i``; with ``negate`` it reads ``(2 below_i - j) mod P_i``, the
    value at ``-r``. Both are (reversed) slices unless the window wraps around.
    """
    for axis, (b, a) in enumerate(zip(below, above, strict=True), start=1):
        p = y.shape[axis]
        if not negate and a + b + 1 <= p:
            y = jax.lax.slice_in_dim(y, 0, a + b + 1, axis=axis)
        elif negate and 2 * b < p:
            y = jnp.flip(jax.lax.slice_in_dim(y, b - a, 2 * b + 1, axis=axis), axis=axis)
        else:  # the window wraps around (periodic, max_lag = n // 2 with even n)
            j = np.arange(a + b + 1)
            y = jnp.take(y, (2 * b - j if negate else j) % p, axis=axis)
    return y


def _inverse_pair_count(w, spatial, sizes, below, above, dtype) -> jax.Array:
    """1 / (number of valid pairs) per lag of the window, broadcastable to ``(P, *window)``."""
    if w is None:
        # Without a mask the count factorizes: prod_i (n_i - |r_i|), exact and FFT-free.
        count = np.ones(())
        for n, lo, hi in zip(spatial, below, above, strict=True):
            count = np.multiply.outer(count, n - np.abs(np.arange(-lo, hi + 1)))
        return jnp.asarray(1.0 / count, dtype)
    spec = jnp.fft.rfftn(w[None], s=sizes, axes=tuple(range(1, w.ndim + 1)))
    count = _lag_window(_shifted_correlation(spec, spec, sizes, below, 1.0), below, above)
    tol = 64 * jnp.finfo(dtype).eps * jnp.sum(w * w)
    ok = count > tol
    return jnp.where(ok, 1.0 / jnp.where(ok, count, 1.0), 0.0)


def _take(x: jax.Array, index: np.ndarray) -> jax.Array:
    """``x[index]`` along axis 0, skipping the gather (a full copy) when it is the identity."""
    if np.array_equal(index, np.arange(x.shape[0])):
        return x
    return x[index]


def _resolve_pairs(pairs: Pairs, c: int) -> tuple[list[tuple[int, int]], tuple[int, ...]]:
    """Output pair list and the leading output shape for the ``pairs`` argument."""
    if isinstance(pairs, str):
        _validate.check_choice(pairs, "pairs", ("all", "auto"))
        if pairs == "all":
            return [(a, b) for a in range(c) for b in range(c)], (c, c)
        return [(a, a) for a in range(c)], (c,)
    try:
        out = [(int(a), int(b)) for a, b in pairs]
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"pairs: expected 'all', 'auto' or a sequence of (a, b) channel pairs, got {pairs!r}"
        ) from err
    if not out or any(not (0 <= a < c and 0 <= b < c) for a, b in out):
        raise ValueError(
            f"pairs: expected a non-empty list of (a, b) with 0 <= a, b < {c}, got {pairs!r}"
        )
    return out, (len(out),)


def _as_mask(mask, m: jax.Array) -> jax.Array:
    """Validates a ``(*spatial)`` confidence mask in [0, 1] and casts it to the dtype of ``m``."""
    spatial = m.shape[:-1]
    if np.shape(mask) == (*spatial, 1):
        mask = mask[..., 0]
    if np.shape(mask) != spatial:
        raise ValueError(
            f"mask: expected shape {spatial} (the spatial shape of m), got {np.shape(mask)}"
        )
    _validate.check_range(mask, "mask", 0.0, 1.0)
    return _validate.as_float_array(mask, "mask").astype(m.dtype)


def _fft_size(n: int) -> int:
    """Smallest 5-smooth integer >= n (fast FFT length for zero padding)."""
    size = n
    while True:
        k = size
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return size
        size += 1
