"""Multi-output Gaussian random fields with prescribed 1- and 2-point statistics.

A stationary multi-channel Gaussian field is fixed by its mean ``mu`` (the 1-point statistics) and
its cross-covariances ``c[a, b, r] = f[a, b, r] - mu_a mu_b`` (the 2-point statistics ``f`` minus
the mean products). On a periodic grid their DFTs ``F^{ab}(k)`` are the cross-spectra. Robertson &
Kalidindi sample such a field with one white-noise input:

- channel 0: ``X^0 = H^0 W`` with ``H^0 = sqrt(max(F^{00}, 0))`` and ``W`` the DFT of real white
  noise, so that ``E |X^0|^2 / S = F^{00}`` (negative spectrum from estimation noise is clipped);
- channel j: the linear filter of channel 0 with transfer function ``F^{0j} / F^{00}``, i.e.
  ``X^j = (F^{0j} / H^0) W``.

The sampled cross-spectral matrix is then ``H^a conj(H^b) = F^{a0} F^{0b} / F^{00}``: rank one and
positive semi-definite by construction, equal to the target whenever the target itself is rank one
(always true for the statistics of a single reference field). Otherwise row 0 is reproduced and
the other auto-spectra become ``|F^{0j}|^2 / F^{00}``, which Cauchy-Schwarz bounds by ``F^{jj}``
only for consistent estimates (hence the optional cap). Frequencies where ``F^{00}`` vanishes carry
no power in any channel.

Non-periodic references are embedded in a torus of ``2 n_i - 1`` sites (zero padding), sampled
there and cropped back to ``n_i`` sites (circulant embedding of the padded periodogram).

References:
    Robertson & Kalidindi, Acta Mater. 232 (2022) 117927 (multi-output GRF); Buzzy, Robertson &
    Kalidindi, Acta Mater. 2024 (rogsh-local-global) §3.3 and §5.1.1; jaxmicro papers README.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxmicro import _validate

__all__ = ["grf_from_reference", "grf_from_spectra", "grf_from_two_point"]


def grf_from_spectra(
    key: jax.Array,
    mean,
    spectra,
    num_samples: int,
    *,
    auto=None,
    shape: Sequence[int] | None = None,
) -> jax.Array:
    """Samples Gaussian random fields from target cross-spectra with channel 0.

    Args:
        key: PRNG key; sample ``i`` uses ``jax.random.split(key, num_samples)[i]``, so a sample
            does not depend on ``num_samples``.
        mean: ``(C,)`` target 1-point statistics.
        spectra: ``(C, *grid)`` DFTs (``jnp.fft.fftn`` over the grid axes, lag 0 at index 0) of
            the cross-covariance maps ``c[0, j, r]`` between channel 0 and channel ``j``. Row 0
            is the auto-spectrum ``F^{00}``; only its real part is used, negative values clipped.
        num_samples: number of fields (static).
        auto: optional ``(C, *grid)`` auto-spectra ``F^{jj}``. If given, each filter's magnitude
            is capped at ``sqrt(max(F^{jj}, 0))`` (Cauchy-Schwarz), which matters when the
            spectra are estimates that are not those of one field (non-periodic or averaged
            statistics): there ``|F^{0j}|^2 / F^{00}`` can exceed ``F^{jj}`` without bound.
        shape: spatial shape of the output, a corner crop of ``grid`` (default: ``grid``).

    Returns:
        ``(num_samples, *shape, C)`` fields in the real dtype of ``spectra``.

    References:
        Robertson & Kalidindi, Acta Mater. 232 (2022) 117927; papers README (GRF summary).
    """
    spectra = jnp.asarray(spectra)
    mean = jnp.asarray(mean)
    _validate.check_ndim(mean, "mean", 1, "(C,)")
    if spectra.ndim < 2 or spectra.shape[0] != mean.shape[0]:
        raise ValueError(
            f"spectra: expected shape (C, *grid) with C = {mean.shape[0]} (len(mean)), "
            f"got {spectra.shape}"
        )
    grid = spectra.shape[1:]
    shape = tuple(grid) if shape is None else tuple(int(n) for n in shape)
    if len(shape) != len(grid) or any(not 0 < n <= g for n, g in zip(shape, grid, strict=True)):
        raise ValueError(f"shape: expected {len(grid)} sizes within the grid {grid}, got {shape}")
    _validate.check_finite(spectra, "spectra")
    real = jnp.real(spectra).dtype
    if auto is not None and jnp.shape(auto) != spectra.shape:
        raise ValueError(
            f"auto: expected shape {spectra.shape} (that of spectra), got {jnp.shape(auto)}"
        )
    transfer = _transfer_functions(spectra, auto)[..., : grid[-1] // 2 + 1]
    axes = tuple(range(1, len(grid) + 1))

    def one(k):
        white = jnp.fft.rfftn(jax.random.normal(k, grid, real), axes=tuple(range(len(grid))))
        x = jnp.fft.irfftn(transfer * white, s=grid, axes=axes)
        x = x[(slice(None),) + tuple(slice(0, n) for n in shape)]
        return jnp.moveaxis(x, 0, -1) + mean.astype(real)

    return jax.vmap(one)(jax.random.split(key, int(num_samples)))


def grf_from_two_point(
    key: jax.Array,
    mean,
    two_point,
    num_samples: int,
    *,
    shape: Sequence[int] | None = None,
) -> jax.Array:
    """Samples Gaussian random fields from target 1-point and 2-point statistics.

    Args:
        key: PRNG key (see ``grf_from_spectra``).
        mean: ``(C,)`` target 1-point statistics.
        two_point: ``(C, C, *grid)`` 2-point statistics ``f[a, b, r] = mean_s m[s, a] m[s+r, b]``
            on a centred lag window (lag 0 at index ``n // 2``), as returned by
            ``jaxmicro.descriptors.two_point``; the grid is taken as periodic. Row 0 and the
            diagonal are used.
        num_samples: number of fields (static).
        shape: spatial shape of the output, a corner crop of the grid (default: the grid).

    Returns:
        ``(num_samples, *shape, C)`` fields whose ensemble 2-point statistics equal the target
        (exactly for the statistics of one periodic field, see the module docstring).

    References:
        Robertson & Kalidindi, Acta Mater. 232 (2022) 117927; rogsh-local-global eqs. 1-2.
    """
    f = _validate.as_float_array(two_point, "two_point")
    mean = _validate.as_float_array(mean, "mean").astype(f.dtype)
    _validate.check_ndim(mean, "mean", 1, "(C,)")
    c = mean.shape[0]
    if f.ndim < 3 or f.shape[:2] != (c, c):
        raise ValueError(f"two_point: expected shape (C, C, *grid) with C = {c}, got {f.shape}")
    pairs = jnp.concatenate([f[0], jnp.moveaxis(jnp.diagonal(f, axis1=0, axis2=1), -1, 0)])
    products = jnp.concatenate([mean[0] * mean, mean * mean])
    cross, auto = _spectra(pairs - products.reshape((-1,) + (1,) * (f.ndim - 2)), c)
    return grf_from_spectra(key, mean, cross, num_samples, auto=auto, shape=shape)


def grf_from_reference(
    key: jax.Array,
    reference,
    num_samples: int,
    *,
    periodic: bool = True,
    shape: Sequence[int] | None = None,
) -> jax.Array:
    """Samples Gaussian random fields with the 1- and 2-point statistics of a reference field.

    The cross-spectra are those of the centred reference, ``F^{0j} = conj(D^0) D^j / S`` with
    ``D = DFT(m - mu)`` and ``S`` voxels: rank one, so the multi-output construction reproduces
    every pair of channels, not only pairs with channel 0.

    Args:
        key: PRNG key (see ``grf_from_spectra``).
        reference: ``(*spatial, C)`` field with 2 or 3 spatial axes (e.g. ROGSH coefficients or
            phase indicators).
        num_samples: number of fields (static).
        periodic: if True, the reference is a torus: the ensemble mean of
            ``descriptors.two_point(x)`` equals ``descriptors.two_point(reference)`` and each
            sample's mean equals the reference mean exactly. If False, the reference is
            zero-padded to ``2 n_i - 1`` sites, sampled there and cropped: the samples'
            covariance at lag ``r`` is the reference's non-periodic covariance times
            ``prod_i (1 - |r_i| / n_i)`` (the padded periodogram, which is positive
            semi-definite; the unbiased estimate's embedding is not, and clipping it distorts
            short lags); exact at ``r = 0``, a relative bias of ``|r_i| / n_i`` beyond.
        shape: spatial shape of the samples, at most the reference's (a window of the
            stationary field; default: the reference's).

    Returns:
        ``(num_samples, *shape, C)`` fields in the dtype of ``reference``.

    References:
        Robertson & Kalidindi, Acta Mater. 232 (2022) 117927; rogsh-local-global §5.1.1 (200
        samples match the reference statistics to about 0.003).
    """
    _validate.check_ndim(reference, "reference", (3, 4), "(*spatial, C) with 2 or 3 spatial axes")
    _validate.check_finite(reference, "reference")
    m = _validate.as_float_array(reference, "reference")
    spatial = m.shape[:-1]
    axes = tuple(range(len(spatial)))
    mean = jnp.mean(m, axis=axes)
    grid = spatial if periodic else tuple(2 * n - 1 for n in spatial)
    d = jnp.fft.fftn(m - mean, s=grid, axes=axes)
    cross = jnp.moveaxis(jnp.conj(d[..., :1]) * d, -1, 0) / math.prod(spatial)
    return grf_from_spectra(
        key, mean, cross, num_samples, shape=spatial if shape is None else shape
    )


def _spectra(cov: jax.Array, c: int) -> tuple[jax.Array, jax.Array]:
    """DFTs of centred covariance maps: pairs ``(0, j)`` (first ``c``), then ``(j, j)``."""
    axes = tuple(range(1, cov.ndim))
    spectra = jnp.fft.fftn(jnp.fft.ifftshift(cov, axes=axes), axes=axes)
    return spectra[:c], spectra[c:]


def _transfer_functions(spectra: jax.Array, auto: jax.Array | None) -> jax.Array:
    """``(C, *grid)`` filters ``H^j = F^{0j} / sqrt(F^{00})`` applied to the white-noise DFT."""
    first = jnp.maximum(jnp.real(spectra[0]), 0.0)
    # Below this floor (FFT rounding of the largest entry) the division is noise over noise:
    # such frequencies get no power.
    floor = 64 * jnp.finfo(first.dtype).eps * jnp.max(first)
    ok = first > floor
    root = jnp.sqrt(first)
    cross = jnp.where(ok, spectra / jnp.where(ok, root, 1.0), 0.0)
    if auto is not None:
        cap = jnp.sqrt(jnp.maximum(jnp.real(jnp.asarray(auto)), 0.0))
        size = jnp.abs(cross)
        cross = cross * jnp.where(size > cap, cap / jnp.where(size > 0, size, 1.0), 1.0)
    return cross.at[0].set(root.astype(cross.dtype))
