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
    x = m if w is None else m * w[..., None]
    spec, k = _spectrum(x, sizes)

    canon = sorted({(min(a, b), max(a, b)) for a, b in out_pairs})
    ia = np.array([a for a, _ in canon])
    ib = np.array([b for _, b in canon])
    scale = (1.0 / float(np.prod(spatial)) if (w is None and periodic) else 1.0) / k**2
    corr = _shifted_correlation(spec, ia, ib, sizes, below, scale)

    # f[b, a] is f[a, b] at -r: read canonical pairs backwards instead of transforming. All of
    # them are read backwards and the row take keeps the ones needed: XLA fuses the whole
    # selection into one pass (a row gather before the lag reversal would be materialized).
    position = {p: i for i, p in enumerate(canon)}
    window = _lag_window(corr, below, above)
    if any(a > b for a, b in out_pairs):
        window = jnp.concatenate([window, _lag_window(corr, below, above, negate=True)])
    take = [position[(a, b)] if a <= b else len(canon) + position[(b, a)] for a, b in out_pairs]
    out = _take_static(window, np.array(take))
    if w is not None or not periodic:
        out = out * _inverse_pair_count(w, spatial, sizes, below, above, m.dtype)
    return out.reshape(lead_shape + out.shape[1:])


def _spectrum(x: jax.Array, sizes) -> tuple[jax.Array, float]:
    """``(k * rfftn(x), k)`` for channels-last ``x`` zero-padded to ``sizes``; channels first.

    ``k = 1 / prod(sizes)`` where that cancels JAX's transpose of ``rfftn`` exactly (else 1). That
    transpose is ``prod(sizes) * irfftn(...)``: a scalar multiply after the inverse transform, which
    XLA does not fuse with the channels-last transpose of the gradient (one more pass over the
    field). Multiplying by ``k`` right before ``rfftn`` puts ``k`` next to it in reverse mode,
    where XLA folds the two constants to 1 and drops the pass; the forward multiply is fused with
    the transpose and padding of the input, and callers undo ``k`` in the (fused) spectrum product.
    """
    nd = x.ndim - 1
    x = jnp.moveaxis(x, -1, 0)
    pad = [(0, 0, 0)] + [(0, p - n, 0) for n, p in zip(x.shape[1:], sizes, strict=True)]
    if any(hi for _, hi, _ in pad):
        x = jax.lax.pad(x, jnp.zeros((), x.dtype), pad)
    n = int(np.prod(sizes))
    real = np.dtype(x.dtype).type
    k = 1.0 / n if real(n) * real(1.0 / n) == 1 else 1.0
    return jnp.fft.rfftn(x * jnp.asarray(k, x.dtype), axes=tuple(range(1, nd + 1))), k


def _shifted_correlation(spec, ia, ib, sizes, below, scale) -> jax.Array:
    """``scale * irfftn(conj(A[ia]) A[ib])`` with lag ``r`` at index ``(r + below_i) mod P_i``.

    The circular shift by ``below`` is a phase ramp in Fourier space, fused with the product,
    so the lag window is a plain leading slice of the result (no fftshift pass). When the pairs
    need rows of ``spec`` gathered (``'all'``, most pair lists), the product is rematerialized
    in reverse mode (``jax.checkpoint``): the residual is then ``spec`` itself, and XLA fuses the
    gathers into the product, forward and backward, instead of keeping two gathered ``(P, ...)``
    copies of the spectrum (value + gradient of ``'all'``, 9 channels: ~10% faster).
    """
    nd = len(sizes)

    def product(spec):
        spec_a = _take_static(spec, ia)
        if np.array_equal(ia, ib):
            # Auto terms: |A|^2 is real, which saves a complex pass forward and backward.
            prod = jnp.real(spec_a) ** 2 + jnp.imag(spec_a) ** 2
        else:
            prod = jnp.conj(spec_a) * _take_static(spec, ib)
        for i, (p, b) in enumerate(zip(sizes, below, strict=True)):
            k = np.arange(p // 2 + 1 if i == nd - 1 else p)
            ramp = np.exp(-2j * np.pi * ((k * b) % p) / p) * (scale if i == 0 else 1.0)
            shape = [1] * (nd + 1)
            shape[i + 1] = k.size
            prod = prod * jnp.asarray(ramp.reshape(shape), spec.dtype)
        return prod

    if not (np.array_equal(ia, ib) and np.array_equal(ia, np.arange(spec.shape[0]))):
        product = jax.checkpoint(product)
    return jnp.fft.irfftn(product(spec), s=sizes, axes=tuple(range(1, nd + 1)))


def _lag_window(y: jax.Array, below, above, *, negate: bool = False) -> jax.Array:
    """Lags ``-below_i .. above_i`` of a shifted correlation (see ``_shifted_correlation``).

    Index ``j`` reads ``j mod P_i``; with ``negate`` it reads ``(2 below_i - j) mod P_i``, the
    value at ``-r``: (reversed) slices, two of them where the window wraps around (periodic,
    ``max_lag = n // 2`` with even ``n``).
    """
    for axis, (b, a) in enumerate(zip(below, above, strict=True), start=1):
        j = np.arange(a + b + 1)
        y = _take_static(y, (2 * b - j if negate else j) % y.shape[axis], axis=axis)
    return y


def _take_static(x: jax.Array, index: np.ndarray, axis: int = 0) -> jax.Array:
    """``jnp.take(x, index, axis)`` for a static ``index``, with slices where that is cheaper.

    ``index`` is cut into runs of step +1 or -1. One run is a (reversed) slice. Several runs
    along the minor axis (a lag window that wraps around: periodic, ``n // 2`` lags, even ``n``)
    are (reversed) slices, zero-padded to the output length and merged with selects: that fuses
    with its consumer, and its transpose is slices and pads, where a gather's transpose along
    the minor axis is a scatter-add that XLA:CPU runs ~15-20x slower than a copy (36 x 256^2).
    Anything else (rows of spectra or of correlations, a wrapping lag window along another axis)
    stays a gather, which fuses and whose scatter-add of whole rows is cheap. The identity is
    returned as is.
    """
    index = np.asarray(index, dtype=np.int64)
    if np.array_equal(index, np.arange(x.shape[axis])):
        return x
    runs = _runs(index)
    if len(runs) > 1 and (axis < x.ndim - 1 or len(runs) > 4):
        return x[(slice(None),) * axis + (index,)]
    shape = (*x.shape[:axis], len(index), *x.shape[axis + 1 :])
    position = jax.lax.broadcasted_iota(np.int32, shape, axis)
    out, start = None, 0
    for first, step, length in runs:
        if step == 1:
            piece = jax.lax.slice_in_dim(x, first, first + length, axis=axis)
        else:
            piece = jax.lax.slice_in_dim(x, first - length + 1, first + 1, axis=axis)
            piece = jax.lax.rev(piece, (axis,))
        if len(runs) > 1:
            pad = [(0, 0, 0)] * x.ndim
            pad[axis] = (start, len(index) - start - length, 0)
            piece = jax.lax.pad(piece, jnp.zeros((), x.dtype), pad)
        out = piece if out is None else jnp.where(position < start, out, piece)
        start += length
    return out


def _runs(index: np.ndarray) -> list[tuple[int, int, int]]:
    """``(first, step, length)`` runs of consecutive entries of ``index`` with step +1 or -1."""
    runs, i, n = [], 0, len(index)
    while i < n:
        step = -1 if i + 1 < n and index[i + 1] - index[i] == -1 else 1
        length = 1
        while i + length < n and index[i + length] - index[i + length - 1] == step:
            length += 1
        runs.append((int(index[i]), step, length))
        i += length
    return runs


def _inverse_pair_count(w, spatial, sizes, below, above, dtype) -> jax.Array:
    """1 / (number of valid pairs) per lag of the window, broadcastable to ``(P, *window)``."""
    if w is None:
        # Without a mask the count factorizes: prod_i (n_i - |r_i|), exact and FFT-free.
        count = np.ones(())
        for n, lo, hi in zip(spatial, below, above, strict=True):
            count = np.multiply.outer(count, n - np.abs(np.arange(-lo, hi + 1)))
        return jnp.asarray(1.0 / count, dtype)
    spec, k = _spectrum(w[..., None], sizes)
    count = _shifted_correlation(spec, np.zeros(1, int), np.zeros(1, int), sizes, below, 1 / k**2)
    count = _lag_window(count, below, above)
    tol = 64 * jnp.finfo(dtype).eps * jnp.sum(w * w)
    ok = count > tol
    return jnp.where(ok, 1.0 / jnp.where(ok, count, 1.0), 0.0)


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
