"""Tests of jaxmicro.synth Voronoi generators (seeds, tessellation, regularity, periodicity)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import cKDTree

from jaxmicro import synth
from jaxmicro.data import mean_intercept_lengths

# One compilation per configuration, shared by the tests (eager calls recompile their loops).
voronoi = jax.jit(
    synth.voronoi, static_argnames=("shape", "n_grains", "stretch", "periodic", "capacity")
)
from_seeds = jax.jit(synth.voronoi_from_seeds, static_argnames=("shape", "stretch", "periodic"))
seeds_of = jax.jit(
    synth.voronoi_seeds, static_argnames=("shape", "n_grains", "stretch", "periodic", "dtype")
)


def _kdtree_labels(seeds, shape, stretch=None, periodic=True):
    s = np.ones(len(shape)) if stretch is None else np.asarray(stretch, float)
    grid = np.stack(np.meshgrid(*[np.arange(n) + 0.5 for n in shape], indexing="ij"), -1)
    box = np.asarray(shape, float) / s if periodic else None
    tree = cKDTree(np.asarray(seeds, float) / s, boxsize=box)
    return tree.query(grid.reshape(-1, len(shape)) / s)[1].reshape(shape)


@pytest.mark.parametrize(
    "shape, n, stretch, periodic",
    [
        ((24, 20, 16), 60, None, True),
        ((24, 20, 16), 40, (1.0, 1.0, 2.5), True),
        ((24, 20, 16), 60, None, False),
        ((40, 36), 30, (2.0, 1.0), True),
    ],
)
def test_nearest_seed_matches_kdtree(shape, n, stretch, periodic):
    seeds = seeds_of(
        jax.random.key(3), shape, n, stretch=stretch, periodic=periodic, dtype=jnp.float64
    )
    ids = from_seeds(seeds, shape, stretch=stretch, periodic=periodic)
    assert ids.dtype == jnp.int32 and ids.shape == shape
    np.testing.assert_array_equal(np.asarray(ids), _kdtree_labels(seeds, shape, stretch, periodic))


def test_fallback_for_clustered_seeds_is_exact():
    # All seeds in one corner: the far blocks need every seed, more than the candidate budget K,
    # so the brute-force branch must run and still agree with the KD-tree.
    shape = (24, 20, 16)
    seeds = jax.random.uniform(jax.random.key(0), (400, 3), jnp.float64) * 3.0
    ids = from_seeds(seeds, shape)
    np.testing.assert_array_equal(np.asarray(ids), _kdtree_labels(seeds, shape))


def test_float32_seeds_agree_with_kdtree_up_to_ties():
    shape = (24, 20, 16)
    seeds = seeds_of(jax.random.key(1), shape, 60, dtype=jnp.float32)
    ids = np.asarray(from_seeds(seeds, shape))
    assert np.mean(ids == _kdtree_labels(seeds, shape)) > 0.9999


@pytest.mark.parametrize("shape, n", [((32, 32, 32), 300), ((40, 36), 30)])
def test_every_grain_present(shape, n):
    ids = np.asarray(voronoi(jax.random.key(7), shape, n, regularity=0.5))
    assert ids.min() == 0 and ids.max() == n - 1
    assert np.unique(ids).size == n
    assert int(synth.empty_grains(ids, n)) == 0


def test_periodic_wrap_around():
    seeds = jnp.array([[0.2, 8.0, 8.0], [8.0, 8.0, 8.0]])
    periodic = np.asarray(from_seeds(seeds, (16, 16, 16)))
    closed = np.asarray(from_seeds(seeds, (16, 16, 16), periodic=False))
    # Voxel x = 15 (centre 15.5) is 0.7 from seed 0 through the face, 7.5 from seed 1.
    assert periodic[15, 8, 8] == 0 and closed[15, 8, 8] == 1
    # A generated tessellation: grains owning voxels on face x = 0 also own voxels on x = L - 1.
    ids = np.asarray(voronoi(jax.random.key(2), (32, 32, 32), 300))
    assert np.mean(ids[0] == ids[-1]) > 0.5
    assert set(np.unique(ids[0])) & set(np.unique(ids[-1]))


def test_regularity_raises_nearest_neighbour_distances():
    shape, n = (48, 48, 48), 200
    nn = {}
    for r in (0.0, 0.5, 1.0):
        seeds = np.asarray(seeds_of(jax.random.key(5), shape, n, regularity=r))
        dist, _ = cKDTree(seeds, boxsize=48.0).query(seeds, k=2)
        nn[r] = dist[:, 1]
        core = float(synth.hard_core_distance(shape, n, r))
        assert nn[r].min() >= core * (1 - 1e-6)
    assert np.mean(nn[0.0]) < np.mean(nn[0.5]) < np.mean(nn[1.0])
    # More regular seeds: relatively narrower nearest-neighbour distribution.
    cv = {r: np.std(v) / np.mean(v) for r, v in nn.items()}
    assert cv[1.0] < cv[0.0]


def test_stretch_elongates_grains():
    ids = voronoi(jax.random.key(4), (32, 32, 48), 150, stretch=(1.0, 1.0, 2.0))
    lengths = mean_intercept_lengths(ids)
    ratio = lengths[2] / np.mean(lengths[:2])
    assert 1.6 < ratio < 2.5


def test_jit_equals_eager_and_traced_grain_count():
    key, shape = jax.random.key(9), (24, 20, 16)
    eager = synth.voronoi(key, shape, 60, regularity=0.5)
    np.testing.assert_array_equal(eager, voronoi(key, shape, 60, regularity=0.5))

    @jax.jit
    def traced(key, n):
        return synth.voronoi(key, shape, n, regularity=0.5, capacity=64)

    for n in (10, 60):
        ids = np.asarray(traced(key, n))
        assert np.unique(ids).size == n and ids.max() == n - 1


def test_seeds_dtype_and_range():
    for dtype in (jnp.float32, jnp.float64):
        seeds = seeds_of(jax.random.key(0), (24, 20, 16), 60, dtype=dtype)
        assert seeds.dtype == dtype and seeds.shape == (60, 3)
        assert np.all(np.asarray(seeds) >= 0) and np.all(np.asarray(seeds) < [24, 20, 16])


def test_empty_grains_warning_on_coarse_grid():
    with pytest.warns(UserWarning, match="own no voxel"):
        synth.voronoi(jax.random.key(0), (4, 4), 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synth.voronoi(jax.random.key(0), (40, 36), 30)


def test_validation_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="shape"):
        synth.voronoi(key, (8,), 3)
    with pytest.raises(ValueError, match="regularity"):
        synth.voronoi(key, (8, 8), 3, regularity=1.5)
    with pytest.raises(ValueError, match="n_grains"):
        synth.voronoi(key, (8, 8), 0)
    # labels would say 100 (or 3.5) grains where the volume can hold 16 (or holds 3)
    with pytest.raises(ValueError, match="n_grains: 100 grains cannot each own a voxel"):
        synth.voronoi(key, (4, 4), 100)
    with pytest.raises(ValueError, match="n_grains: expected an integer count"):
        synth.voronoi(key, (8, 8), 3.5)
    with pytest.raises(ValueError, match="stretch"):
        synth.voronoi(key, (8, 8), 3, stretch=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="seeds"):
        synth.voronoi_from_seeds(jnp.zeros((4, 2)), (8, 8, 8))
