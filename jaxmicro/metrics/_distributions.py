"""Distances between two empirical 1-D distributions (grain sizes, aspect ratios, scores...).

All functions take two samples of any shape (flattened), are pure and jittable, and return a
scalar in the floating dtype of the inputs (ints promoted to the default float).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .._validate import as_float_array, check_finite


def _samples(a, b) -> tuple[jax.Array, jax.Array]:
    a = as_float_array(a, "a").ravel()
    b = as_float_array(b, "b").ravel()
    for x, name in ((a, "a"), (b, "b")):
        if x.size == 0:
            raise ValueError(f"{name}: expected a non-empty sample")
        check_finite(x, name)
    dtype = jnp.result_type(a.dtype, b.dtype)
    return a.astype(dtype), b.astype(dtype)


def _cdf_gap(a: jax.Array, b: jax.Array):
    """Sorted pooled sample and ``|F_a - F_b|`` of the right-continuous empirical CDFs on it.

    Computed as ``|c_a n_b - c_b n_a| / (n_a n_b)`` from the counts, so equal samples give
    exactly 0 in any precision.
    """
    a, b = jnp.sort(a), jnp.sort(b)
    x = jnp.sort(jnp.concatenate([a, b]))
    ca = jnp.searchsorted(a, x, side="right").astype(a.dtype)
    cb = jnp.searchsorted(b, x, side="right").astype(a.dtype)
    return x, jnp.abs(ca * b.size - cb * a.size) / (a.size * b.size)


@jax.jit
def _ks(a, b):
    return jnp.max(_cdf_gap(a, b)[1])


def ks_distance(a, b) -> jax.Array:
    """Two-sample Kolmogorov-Smirnov statistic ``sup_x |F_a(x) - F_b(x)|``, in [0, 1].

    Equals ``scipy.stats.ks_2samp(a, b).statistic``.

    References:
        PolyCrysDiff §4.3, eq. 2.
    """
    return _ks(*_samples(a, b))


@jax.jit
def _emd(a, b):
    x, gap = _cdf_gap(a, b)
    w1 = jnp.sum(gap[:-1] * jnp.diff(x))
    spread = x[-1] - x[0]
    return jnp.where(spread > 0, w1 / jnp.where(spread > 0, spread, 1), 0)


def emd_normalized(a, b) -> jax.Array:
    """1-Wasserstein distance between the two samples divided by their pooled range, in [0, 1].

    ``W1 = integral |F_a(x) - F_b(x)| dx`` (exact for empirical distributions, equal to
    ``scipy.stats.wasserstein_distance(a, b)``), divided by ``max(a, b) - min(a, b)`` over the
    pooled samples. PolyCrysDiff eq. 4 divides by ``x_max - x_min`` without saying over which
    data; the pooled range makes the value symmetric in ``a, b`` and scale-free. Returns 0 when
    both samples hold one and the same value.

    References:
        PolyCrysDiff §4.3, eqs. 3-4.
    """
    return _emd(*_samples(a, b))


@partial(jax.jit, static_argnames=("bins",))
def _kl(a, b, pseudocount, *, bins):
    lo = jnp.minimum(a.min(), b.min())
    hi = jnp.maximum(a.max(), b.max())
    width = jnp.where(hi > lo, hi - lo, 1)

    def histogram(x):
        idx = jnp.clip(jnp.floor((x - lo) / width * bins).astype(jnp.int32), 0, bins - 1)
        counts = jnp.zeros(bins, x.dtype).at[idx].add(1)
        return (counts + pseudocount) / (x.size + pseudocount * bins)

    p, q = histogram(a), histogram(b)
    return jnp.sum(p * (jnp.log(p) - jnp.log(q)))


def kl_divergence(a, b, *, bins: int = 30, pseudocount: float = 0.5) -> jax.Array:
    """``KL(P_a || P_b)`` (nats) of the two samples' histograms on shared bins.

    Both histograms use ``bins`` equal bins spanning the pooled range ``[min(a, b), max(a, b)]``
    (GrainPaint's code took the bounds from one sample only, which drops the other's tail).
    ``pseudocount`` is added to every bin of both histograms before normalizing (additive
    smoothing; 0.5 is the Jeffreys prior), so empty bins give a finite value. Pass the
    reference as ``a`` and the generated sample as ``b``.

    Args:
        a, b: samples of any shape.
        bins: number of bins.
        pseudocount: count added to each bin (> 0).

    References:
        GrainPaint §3.2 and Table 1.
    """
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: expected a positive int, got {bins!r}")
    if not pseudocount > 0:
        raise ValueError(f"pseudocount: expected a positive count, got {pseudocount}")
    a, b = _samples(a, b)
    return _kl(a, b, jnp.asarray(pseudocount, a.dtype), bins=bins)


@jax.jit
def _r2(target, achieved):
    residual = jnp.sum((achieved - target) ** 2)
    total = jnp.sum((target - jnp.mean(target)) ** 2)
    return 1 - residual / total


def r2_score(target, achieved) -> jax.Array:
    """Coefficient of determination of achieved vs target conditions, ``1 - SS_res / SS_tot``.

    ``SS_tot`` is taken about the mean target (as ``sklearn.metrics.r2_score``); NaN if all
    targets are equal.

    References:
        PolyCrysDiff §2.3, Fig. 3 (R^2 of target vs generated grain size and sphericity).
    """
    target, achieved = _samples(target, achieved)
    if target.shape != achieved.shape:
        raise ValueError(
            f"achieved: expected {target.size} values, one per target, got {achieved.size}"
        )
    return _r2(target, achieved)


@jax.jit
def _histogram_emd(p, q):
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    q = q / jnp.sum(q, axis=-1, keepdims=True)
    w1 = jnp.sum(jnp.abs(jnp.cumsum(p - q, axis=-1))[..., :-1], axis=-1)
    return w1 / (p.shape[-1] - 1)


def histogram_emd(p, q) -> jax.Array:
    """Normalized 1-Wasserstein distance between histograms on the same unit-spaced bins.

    ``sum_i |P_i - Q_i| / (n_bins - 1)`` with cumulative sums ``P, Q`` of the normalized
    histograms: ``W1`` in bin units divided by the support length, the histogram form of
    :func:`emd_normalized`. Used for chord-length distributions.

    Args:
        p, q: non-negative histograms ``(..., n_bins)`` with ``n_bins >= 2``, each nonzero.

    Returns:
        ``(...)`` values in [0, 1].
    """
    p, q = as_float_array(p, "p"), as_float_array(q, "q")
    if p.shape != q.shape or p.ndim == 0 or p.shape[-1] < 2:
        raise ValueError(
            f"q: expected histograms of one shape (..., n_bins >= 2), got {p.shape} and {q.shape}"
        )
    return _histogram_emd(p, q)
