"""Tests of lineal_path and chord_length_distribution (direct sums, identities, PoreSpy golden)."""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxmicro.descriptors import chord_length_distribution, lineal_path

GOLDEN = pathlib.Path(__file__).parent / "data" / "descriptors_golden.npz"
lp = jax.jit(lineal_path, static_argnames=("axis", "max_length", "periodic"))
cld = jax.jit(
    chord_length_distribution, static_argnames=("axis", "periodic", "trim_edges", "normalization")
)


def direct_lineal_path(p, axis, max_length, periodic):
    """mean over segment starts of prod_{k<=z} p(s + k e_axis), segment by segment."""
    x = np.moveaxis(p, axis % (p.ndim - 1), 0)
    n = x.shape[0]
    out = []
    for z in range(max_length + 1):
        starts = range(n) if periodic else range(n - z)
        prods = [np.prod([x[(s + k) % n] for k in range(z + 1)], axis=0) for s in starts]
        out.append(np.mean(prods, axis=tuple(range(p.ndim - 1))))
    return np.stack(out, axis=-1)


@pytest.mark.parametrize(
    ("shape", "axis"), [((6, 9, 2), 0), ((6, 9, 2), 1), ((4, 5, 6, 1), 2), ((4, 5, 6, 1), -3)]
)
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("soft", [False, True])
def test_lineal_path_matches_direct(shape, axis, periodic, soft):
    rng = np.random.default_rng(abs(axis) + 3 * soft)
    p = rng.uniform(size=shape) if soft else (rng.uniform(size=shape) < 0.6).astype(np.float64)
    n = shape[:-1][axis]
    got = lp(p, axis=axis, max_length=n - 1, periodic=periodic)
    assert got.shape == (shape[-1], n)
    np.testing.assert_allclose(got, direct_lineal_path(p, axis, n - 1, periodic), atol=1e-12)
    np.testing.assert_allclose(got[:, 0], p.mean(axis=tuple(range(len(shape) - 1))), atol=1e-14)


def test_lineal_path_from_porespy_chords():
    g = np.load(GOLDEN)
    for name in ("image2", "image3"):
        image = g[f"chords/{name}"]
        for axis in range(image.ndim):
            counts = g[f"chords/{name}_axis{axis}"]
            got = cld(image[..., None], axis=axis, periodic=False)[0]
            np.testing.assert_array_equal(got, counts)
            n = image.shape[axis]
            lengths = np.arange(n + 1)
            starts = (n - np.arange(n)) * (image.size // n)
            ref = [(counts * np.maximum(lengths - z, 0)).sum() / starts[z] for z in range(n)]
            np.testing.assert_allclose(
                lp(image[..., None], axis=axis, max_length=n - 1, periodic=False)[0], ref
            )


def test_chord_length_periodic_identity_and_options():
    rng = np.random.default_rng(1)
    image = (rng.uniform(size=(7, 10, 1)) < 0.55).astype(np.float64)
    image[:, 0] = 0.0  # no line entirely in the phase along axis 1
    counts = np.asarray(cld(image, axis=1, periodic=True))[0]
    lengths = np.arange(11)
    ref = [(counts * np.maximum(lengths - z, 0)).sum() / 70 for z in range(10)]
    np.testing.assert_allclose(lp(image, axis=1, max_length=9)[0], ref, atol=1e-14)

    line = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1], float)[None, :, None]
    np.testing.assert_array_equal(
        cld(line, axis=1, periodic=False)[0], np.bincount([2, 3, 1], minlength=10)
    )
    np.testing.assert_array_equal(
        cld(line, axis=1, periodic=True)[0], np.bincount([3, 3], minlength=10)
    )
    np.testing.assert_array_equal(
        cld(line, axis=1, periodic=False, trim_edges=True)[0], np.bincount([3], minlength=10)
    )
    np.testing.assert_allclose(
        cld(line, axis=1, periodic=False, normalization="number")[0],
        np.bincount([2, 3, 1], minlength=10) / 3,
    )
    np.testing.assert_allclose(
        cld(line, axis=1, periodic=False, normalization="length")[0],
        np.array([0, 1, 2, 3, 0, 0, 0, 0, 0, 0]) / 6,
    )
    full = np.ones((2, 5, 1))
    np.testing.assert_array_equal(cld(full, axis=1, periodic=True)[0], [0, 0, 0, 0, 0, 2])
    np.testing.assert_array_equal(
        cld(np.zeros((2, 5, 1)), axis=1, normalization="length")[0], np.zeros(6)
    )


def test_lineal_path_gradients_and_batching():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.2, 0.9, size=(4, 6, 2))
    w = rng.normal(size=(2, 4))
    for periodic in (True, False):
        loss = jax.jit(
            lambda x, periodic=periodic: jnp.sum(
                w * lineal_path(x, axis=1, max_length=3, periodic=periodic)
            )
        )
        check_grads(loss, (p,), order=1, modes=("fwd", "rev"))
    batch = rng.uniform(size=(3, 4, 6, 2)).astype(np.float32)
    for fn in (
        functools.partial(lineal_path, axis=0, max_length=3, periodic=False),
        functools.partial(chord_length_distribution, axis=1, normalization="number"),
    ):
        eager = np.stack([np.asarray(fn(x)) for x in batch])
        batched = jax.jit(jax.vmap(fn))(batch)
        assert batched.dtype == jnp.float32
        np.testing.assert_allclose(batched, eager, rtol=1e-6)


@pytest.mark.parametrize(
    ("fn", "kwargs", "match"),
    [
        (lineal_path, dict(axis=2, max_length=1), r"axis: expected a spatial axis in \[-2, 1\]"),
        (lineal_path, dict(axis=0, max_length=6), r"max_length: expected an int in \[0, 5\]"),
        (
            chord_length_distribution,
            dict(axis=0, normalization="pdf"),
            "normalization: unknown value",
        ),
        (chord_length_distribution, dict(axis=0, periodic=True, trim_edges=True), "trim_edges"),
    ],
)
def test_validation(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(np.zeros((6, 7, 1)), **kwargs)
    with pytest.raises(ValueError, match="phase: expected 3 or 4 dimensions"):
        fn(np.zeros((6, 7)), **kwargs)


def test_lineal_path_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"phase: values must lie in \[0.0, 1.0\]"):
        lineal_path(np.full((4, 5, 1), 1.5), axis=0, max_length=2)


def test_chord_length_default_is_periodic():
    # Issue #19: descriptors default to periodic=True. A run that wraps across the boundary is one
    # chord of length 3 (periodic) or two chords of lengths 1 and 2 (cut).
    line = np.array([1, 0, 0, 1, 1], float)
    phase = np.stack([np.tile(line[:, None], (1, 2)), 1 - np.tile(line[:, None], (1, 2))], -1)
    default = chord_length_distribution(phase, axis=0)
    np.testing.assert_array_equal(default, chord_length_distribution(phase, axis=0, periodic=True))
    np.testing.assert_array_equal(default[0], [0, 0, 0, 2, 0, 0])
    cut = chord_length_distribution(phase, axis=0, periodic=False)
    np.testing.assert_array_equal(cut[0], [0, 2, 2, 0, 0, 0])
