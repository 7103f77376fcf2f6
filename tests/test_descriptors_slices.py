"""Tests of slice_descriptors: per-direction slice averages of 2D descriptors of 3D fields."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxmicro.descriptors import one_point, slice_descriptors, two_point

S2 = functools.partial(two_point, max_lag=1, pairs="auto")


def loop_reference(field, fn, direction):
    slices = [np.take(field, i, axis=direction) for i in range(field.shape[direction])]
    return np.mean([np.asarray(jax.jit(fn)(s)) for s in slices], axis=0)


def test_slice_descriptors_match_python_loop():
    field = np.random.default_rng(0).normal(size=(4, 5, 6, 2))
    out = jax.jit(lambda f: slice_descriptors(f, S2))(field)
    assert out.shape == (3, 2, 3, 3)
    for d in range(3):
        np.testing.assert_allclose(out[d], loop_reference(field, S2, d), atol=1e-12)
    # Direction 1 means slices field[:, i, :] with axes (0, 2): an asymmetric pattern shows it.
    ramp = np.zeros((4, 5, 6, 1))
    ramp[1:3, :, 0:2] = 1.0
    lag = jax.jit(lambda f: slice_descriptors(f, S2))(ramp)[1, 0]
    ref = jax.jit(S2)(ramp[:, 0])[0]
    np.testing.assert_allclose(lag, ref, atol=1e-12)


def test_subset_batch_size_and_pytrees():
    field = np.random.default_rng(1).normal(size=(4, 5, 6, 2))
    sd = jax.jit(slice_descriptors, static_argnames=("fn", "directions", "batch_size"))
    both = sd(field, S2, directions=(2, 0))
    full = sd(field, S2)
    np.testing.assert_allclose(both, full[np.array([2, 0])], atol=1e-14)
    chunked = sd(field, S2, batch_size=2)
    np.testing.assert_allclose(chunked, full, atol=1e-12)
    tree = sd(field, lambda s: {"vf": one_point(s), "s2": S2(s)}, directions=(1,))
    assert tree["vf"].shape == (1, 2)
    np.testing.assert_allclose(tree["vf"][0], field.mean((0, 1, 2)), atol=1e-14)
    np.testing.assert_allclose(tree["s2"][0], full[1], atol=1e-14)


def test_gradients_and_float32():
    rng = np.random.default_rng(2)
    field = rng.normal(size=(3, 4, 5, 1))
    w = rng.normal(size=(3, 1, 3, 3))
    check_grads(
        jax.jit(lambda f: jnp.sum(w * slice_descriptors(f, S2))),
        (field,),
        order=1,
        modes=("fwd", "rev"),
    )
    out32 = jax.jit(lambda f: slice_descriptors(f, S2))(field.astype(np.float32))
    assert out32.dtype == jnp.float32


@pytest.mark.parametrize(
    ("field", "kwargs", "match"),
    [
        (np.zeros((4, 5, 2)), {}, "field: expected 4 dimensions"),
        (np.zeros((4, 5, 6, 2)), dict(directions=(0, 0)), "directions: expected distinct axes"),
        (np.zeros((4, 5, 6, 2)), dict(directions=(3,)), "directions"),
        (np.zeros((4, 5, 6, 2)), dict(batch_size=0), "batch_size: expected None or a positive int"),
    ],
)
def test_validation(field, kwargs, match):
    with pytest.raises(ValueError, match=match):
        slice_descriptors(field, S2, **kwargs)


def test_direction_dependent_shapes_are_rejected():
    with pytest.raises(ValueError, match="fn: returns different shapes"):
        slice_descriptors(np.zeros((4, 5, 6, 1)), functools.partial(two_point, pairs="auto"))
