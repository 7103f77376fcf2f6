"""Tests of jaxmicro.fields: Gaussian random fields with prescribed 1- and 2-point statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxmicro import descriptors
from jaxmicro.fields import grf_from_reference, grf_from_spectra, grf_from_two_point


def _reference(shape, seed=0):
    """Three correlated, partly non-Gaussian channels with small variance (coefficient-like)."""
    rng = np.random.default_rng(seed)

    def smooth(s):
        return ndimage.gaussian_filter(rng.normal(size=shape), s, mode="wrap")

    a, b = smooth(2.0), smooth(1.0)
    a, b = 0.2 * a / a.std(), 0.2 * b / b.std()
    return np.stack([a + 0.3, 0.6 * a + 0.5 * b - 0.1, 0.2 * np.tanh(5 * (a - b)) + 0.1], -1)


def _mean_two_point(x):
    """Ensemble mean of the periodic 2-point maps by direct FFT (independent of descriptors)."""
    spatial = tuple(range(1, x.ndim - 1))
    f = np.fft.fftn(x, axes=spatial)
    cross = np.einsum("n...a,n...b->ab...", np.conj(f), f) / len(x)
    lag_axes = tuple(range(2, cross.ndim))
    maps = np.real(np.fft.ifftn(cross, axes=lag_axes)) / np.prod(x.shape[1:-1])
    return np.fft.fftshift(maps, axes=lag_axes)


def test_statistics_of_200_samples_match_reference():
    ref = _reference((128, 128))
    x = np.asarray(grf_from_reference(jax.random.key(0), ref, 200))
    assert x.shape == (200, 128, 128, 3)
    # 1-point: every periodic sample has exactly the reference mean (no k = 0 power).
    np.testing.assert_allclose(
        x.mean(axis=(1, 2)), np.broadcast_to(ref.mean((0, 1)), (200, 3)), atol=1e-10
    )
    target = np.asarray(descriptors.two_point(ref))
    error = _mean_two_point(x) - target
    # Paper: +-0.003 on 200 samples; here 1e-3 absolute on a field of variance ~0.04-0.07.
    assert np.abs(error).max() < 1e-3
    # The error is Monte-Carlo noise and nothing else: z-scores of a few lags have unit RMS.
    lags = (slice(None), slice(None), slice(60, 69), slice(60, 69))
    per_sample = np.stack([descriptors.two_point(s)[lags] for s in x[:200]])
    z = error[lags] / (per_sample.std(0) / np.sqrt(200))
    assert 0.7 < np.sqrt(np.mean(z**2)) < 1.3


def test_nonperiodic_3d_covariance_is_the_padded_periodogram():
    ref = _reference((12, 12, 12), seed=1)[..., :2]
    x = grf_from_reference(jax.random.key(1), ref, 200, periodic=False)
    assert x.shape == (200, 12, 12, 12, 2)
    mean = ref.mean((0, 1, 2))
    stats = jax.vmap(lambda s: descriptors.two_point(s, periodic=False, max_lag=3))(x)
    # Expected covariance: the reference's non-periodic one times prod(1 - |r_i| / n_i).
    taper = np.multiply.outer(
        np.multiply.outer(*[1 - np.abs(np.arange(-3, 4)) / 12] * 2),
        1 - np.abs(np.arange(-3, 4)) / 12,
    )
    cov = descriptors.two_point(ref - mean, periodic=False, max_lag=3) * taper
    expected = cov + np.multiply.outer(mean, mean)[..., None, None, None]
    z = (stats.mean(0) - expected) / (stats.std(0) / np.sqrt(200))
    assert np.sqrt(np.mean(z**2)) < 1.3 and np.abs(z).max() < 5
    means = x.mean(axis=(1, 2, 3))
    z1 = (means.mean(0) - mean) / (means.std(0) / np.sqrt(200))
    assert np.abs(z1).max() < 4


def test_linearly_related_channels_are_reproduced_exactly():
    # Channel 1 is a filter of channel 0 (scaled shift): the transfer function F01/F00 recovers
    # the filter, so every sample obeys the same relation.
    rng = np.random.default_rng(2)
    c0 = ndimage.gaussian_filter(rng.normal(size=(32, 32)), 1.5, mode="wrap")
    ref = np.stack([c0 + 1.0, 2.0 * np.roll(c0, (3, -2), axis=(0, 1)) - 0.5], -1)
    x = np.asarray(grf_from_reference(jax.random.key(3), ref, 4))
    expected = 2.0 * (np.roll(x[..., 0], (3, -2), axis=(1, 2)) - 1.0) - 0.5
    np.testing.assert_allclose(x[..., 1], expected, atol=1e-6)


def test_white_spectrum_gives_scaled_white_noise():
    key, mean = jax.random.key(4), jnp.array([0.5])
    x = grf_from_spectra(key, mean, jnp.full((1, 8, 6), 4.0 + 0j), 3)
    noise = jax.vmap(lambda k: jax.random.normal(k, (8, 6)))(jax.random.split(key, 3))
    np.testing.assert_allclose(x[..., 0], 0.5 + 2.0 * noise, atol=1e-12)


def test_two_point_entry_point_agrees_and_crops():
    # White noise keeps F00 far above FFT rounding, where both routes agree to rounding.
    ref = _reference((16, 20)) + 0.05 * np.random.default_rng(5).normal(size=(16, 20, 3))
    key = jax.random.key(5)
    f = descriptors.two_point(ref)
    a = grf_from_two_point(key, ref.mean((0, 1)), f, 3)
    np.testing.assert_allclose(a, grf_from_reference(key, ref, 3), atol=1e-7)
    assert grf_from_two_point(key, ref.mean((0, 1)), f, 3, shape=(8, 20)).shape == (3, 8, 20, 3)


def test_cross_spectra_are_capped_by_auto_spectra():
    # Averaged statistics need not be rank one: |F01|^2 / F00 may exceed F11. The cap keeps
    # channel 1's variance at most its target.
    f00 = jnp.full((8, 8), 1.0 + 0j)
    f01 = jnp.full((8, 8), 3.0 + 0j)
    x = grf_from_spectra(
        jax.random.key(8), jnp.zeros(2), jnp.stack([f00, f01]), 64, auto=jnp.stack([f00, f00])
    )
    np.testing.assert_allclose(np.var(x[..., 1]), 1.0, rtol=0.1)
    np.testing.assert_allclose(x[..., 1], x[..., 0], atol=1e-12)


def test_negative_spectrum_is_clipped_and_finite():
    spectra = jnp.stack([jnp.asarray(np.random.default_rng(6).normal(size=(8, 8))) + 0j] * 2)
    x = grf_from_spectra(jax.random.key(6), jnp.zeros(2), spectra, 2)
    assert bool(jnp.all(jnp.isfinite(x)))


def test_float32_jit_and_sample_independence():
    ref = _reference((16, 16)).astype(np.float32)
    key = jax.random.key(7)
    eager = grf_from_reference(key, ref, 4)
    assert eager.dtype == jnp.float32
    jitted = jax.jit(grf_from_reference, static_argnames=("num_samples", "periodic"))
    np.testing.assert_allclose(jitted(key, ref, num_samples=4), eager, atol=1e-5)
    np.testing.assert_allclose(grf_from_reference(key, ref, 2), eager[:2], atol=1e-5)


def test_validation_errors():
    with pytest.raises(ValueError, match="reference"):
        grf_from_reference(jax.random.key(0), np.zeros((8, 8)), 2)
    with pytest.raises(ValueError, match="reference"):
        grf_from_reference(jax.random.key(0), np.full((4, 4, 1), np.nan), 2)
    with pytest.raises(ValueError, match="spectra"):
        grf_from_spectra(jax.random.key(0), jnp.zeros(2), jnp.ones((3, 4, 4)), 1)
    with pytest.raises(ValueError, match="shape"):
        grf_from_spectra(jax.random.key(0), jnp.zeros(1), jnp.ones((1, 4, 4)), 1, shape=(5, 4))
    with pytest.raises(ValueError, match="two_point"):
        grf_from_two_point(jax.random.key(0), jnp.zeros(2), jnp.ones((2, 3, 4, 4)), 1)
    with pytest.raises(ValueError, match="auto"):
        grf_from_spectra(jax.random.key(0), jnp.zeros(1), jnp.ones((1, 4, 4)), 1, auto=jnp.ones(3))
