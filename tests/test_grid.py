"""_grid: face neighbours, face pairs and boundary masks against brute-force voxel loops; the JAX
path (eager and jitted) against the NumPy one."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro._grid import boundary_mask, face_neighbours, face_pairs
from jaxmicro.data import boundary_field

SHAPES = [(5, 6), (1, 4), (2, 3), (4, 3, 5), (2, 1, 3)]


def _successor(index, axis, shape, periodic):
    """Index of the face neighbour after ``index`` along ``axis``; None past a non-periodic edge."""
    j = list(index)
    j[axis] += 1
    if j[axis] == shape[axis]:
        if not periodic:
            return None
        j[axis] = 0
    return tuple(j)


def _brute_pairs(ids, axis, periodic):
    """Values ``(a, b)`` of every pair along ``axis``, pair starts in C order."""
    pairs = []
    for i in itertools.product(*map(range, ids.shape)):
        j = _successor(i, axis, ids.shape, periodic)
        if j is not None:
            pairs.append((ids[i], ids[j]))
    return pairs


def _brute_boundary(labels, periodic):
    out = np.zeros(labels.shape, bool)
    for i in itertools.product(*map(range, labels.shape)):
        for axis in range(labels.ndim):
            for step in (1, -1):
                j = list(i)
                j[axis] += step
                if not 0 <= j[axis] < labels.shape[axis]:
                    if not periodic:
                        continue
                    j[axis] %= labels.shape[axis]
                out[i] |= labels[i] != labels[tuple(j)]
    return out


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_face_neighbours_and_pairs_match_loops(shape, periodic):
    ids = np.arange(int(np.prod(shape))).reshape(shape) * 10
    all_pairs = []
    for axis in range(len(shape)):
        a, b = face_neighbours(ids, axis, periodic)
        expected = list(shape)
        expected[axis] -= 0 if periodic else 1
        assert a.shape == b.shape == tuple(expected)
        pairs = _brute_pairs(ids, axis, periodic)
        assert list(zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)) == pairs
        all_pairs += pairs
    a, b = face_pairs(ids, periodic)
    assert a.ndim == b.ndim == 1
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == all_pairs


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_boundary_mask_matches_loop(shape, periodic):
    rng = np.random.default_rng(sum(shape) + periodic)
    for n_labels in (1, 2, 4):
        labels = rng.integers(0, n_labels, shape)
        got = boundary_mask(labels, periodic)
        assert got.dtype == bool and got.shape == shape
        np.testing.assert_array_equal(got, _brute_boundary(labels, periodic))


@pytest.mark.parametrize("periodic", [False, True])
def test_boundary_mask_marks_both_sides_and_the_wrap_only_if_periodic(periodic):
    labels = np.zeros((4, 6), int)
    labels[:, 2:4] = 1  # a vertical band: columns 1..4 are boundary voxels
    expected = np.zeros((4, 6), bool)
    expected[:, 1:5] = True
    np.testing.assert_array_equal(boundary_mask(labels, periodic), expected)
    labels[:, 5] = 2  # the last column now differs from the first across the wrap
    expected[:, 5] = True
    expected[:, 0] = periodic
    np.testing.assert_array_equal(boundary_mask(labels, periodic), expected)


@pytest.mark.parametrize("periodic", [False, True])
def test_jax_arrays_take_the_same_pairs_and_masks_eagerly_and_under_jit(periodic):
    labels = np.random.default_rng(3).integers(0, 3, (4, 3, 5))
    x = jnp.asarray(labels)
    jitted = jax.jit(lambda v: (face_pairs(v, periodic), boundary_mask(v, periodic)))
    for (a, b), mask in [(face_pairs(x, periodic), boundary_mask(x, periodic)), jitted(x)]:
        assert isinstance(mask, jax.Array)
        want_a, want_b = face_pairs(labels, periodic)
        np.testing.assert_array_equal(a, want_a)
        np.testing.assert_array_equal(b, want_b)
        np.testing.assert_array_equal(mask, _brute_boundary(labels, periodic))
    # The dataset layer's boundary field is the same mask as +-1 (channels last), also vmapped.
    field = jax.vmap(lambda v: boundary_field(v, periodic=periodic))(x[None])
    np.testing.assert_array_equal(
        field[0, ..., 0], np.where(boundary_mask(labels, periodic), 1, -1)
    )
