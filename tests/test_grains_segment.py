"""Segmentation: palette, orientation and continuous modes recover known Voronoi grains."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from jaxmicro import grains, orientations

PALETTE = np.array(
    [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
        [1, 0, 1],
        [0, 1, 1],
        [1, 1, 1],
        [0, 0, 0],
        [0.5, 0.5, 0.5],
        [1, 0.5, 0],
        [0, 0.5, 1],
        [0.5, 0, 1],
    ]
)


def face_connected(ids):
    """Labels 1..n of the face-connected pieces of each id (non-periodic), by scipy."""
    out = np.zeros(ids.shape, np.int64)
    n = 0
    for g in np.unique(ids):
        pieces, k = ndi.label(ids == g)
        out[pieces > 0] = pieces[pieces > 0] + n
        n += k
    return out


def greedy_colors(labels, periodic):
    """Colour index per label such that face-adjacent labels differ."""
    adjacent = {g: set() for g in np.unique(labels)}
    for a in range(labels.ndim):
        nb = np.roll(labels, -1, axis=a)
        differs = labels != nb
        if not periodic:
            differs[(slice(None),) * a + (-1,)] = False
        for x, y in set(zip(labels[differs].tolist(), nb[differs].tolist(), strict=True)):
            adjacent[x].add(y)
            adjacent[y].add(x)
    colors = {}
    for g in sorted(adjacent):
        used = {colors.get(h) for h in adjacent[g]}
        colors[g] = min(c for c in range(len(PALETTE)) if c not in used)
    lut = np.zeros(labels.max() + 1, np.int64)
    lut[list(colors)] = list(colors.values())
    return lut


def assert_same_partition(truth, labels):
    """Every true grain is exactly one segmented grain and vice versa."""
    pairs = np.unique(np.stack([truth.ravel(), labels.ravel()]), axis=1)
    assert pairs.shape[1] == np.unique(truth).size == np.unique(labels).size


def voronoi(seed, shape, n, periodic):
    """Voronoi grain IDs from a KD-tree (jaxmicro.synth.voronoi compiles for ~30 s here)."""
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, 1, (n, len(shape))) * shape
    centres = np.indices(shape).reshape(len(shape), -1).T + 0.5
    box = np.asarray(shape, float) if periodic else None
    return cKDTree(seeds, boxsize=box).query(centres)[1].reshape(shape)


@pytest.fixture(scope="module")
def open_volume():
    return face_connected(voronoi(0, (28, 28, 28), 40, periodic=False))


@pytest.fixture(scope="module")
def periodic_volume():
    return voronoi(1, (24, 24, 24), 30, periodic=True)


def test_palette_recovers_voronoi(open_volume):
    rng = np.random.default_rng(0)
    rgb = PALETTE[greedy_colors(open_volume, False)[open_volume]]
    rgb = rgb + rng.normal(0, 0.05, rgb.shape)
    labels = grains.segment_palette(rgb, PALETTE)
    assert labels.dtype == np.int32 and labels.min() == 1
    assert labels.max() == np.unique(open_volume).size
    assert_same_partition(open_volume, labels)


def test_palette_periodic(periodic_volume):
    rgb = PALETTE[greedy_colors(periodic_volume, True)[periodic_volume]]
    assert_same_partition(periodic_volume, grains.segment_palette(rgb, PALETTE, periodic=True))
    # without wrap-around, grains crossing the faces fall apart
    assert grains.segment_palette(rgb, PALETTE).max() > np.unique(periodic_volume).size


def test_palette_min_size_absorbs_specks(open_volume):
    clean = PALETTE[greedy_colors(open_volume, False)[open_volume]]
    rgb = clean.copy()
    interior = ndi.binary_erosion(open_volume == open_volume[14, 14, 14], iterations=2)
    rgb[tuple(np.argwhere(interior)[0])] = PALETTE[11]  # a colour no grain uses
    assert grains.segment_palette(rgb, PALETTE).max() == np.unique(open_volume).size + 1
    # the speck goes back to its grain; 1-voxel Voronoi fragments go to a neighbour either way
    assert_same_partition(
        grains.segment_palette(clean, PALETTE, min_size=2),
        grains.segment_palette(rgb, PALETTE, min_size=2),
    )
    sizes = np.bincount(grains.segment_palette(rgb, PALETTE, min_size=30).ravel())[1:]
    assert sizes.min() >= 30 and sizes.sum() == open_volume.size


def test_watershed_splits_touching_balls_of_one_colour():
    z, y, x = np.indices((24, 40, 24))
    balls = ((x - 12) ** 2 + (y - 11) ** 2 + (z - 12) ** 2 <= 81) | (
        (x - 12) ** 2 + (y - 28) ** 2 + (z - 12) ** 2 <= 81
    )
    rgb = PALETTE[balls.astype(int)]
    assert grains.segment_palette(rgb, PALETTE).max() == 2  # background + one merged grain
    # the (non-convex) background may be cut too; the balls must come out as two grains
    split = grains.segment_palette(rgb, PALETTE, split_h=2.0)
    left, right = split[12, 8, 12], split[12, 31, 12]
    assert np.unique(split[balls]).size == 2 and left != right
    assert np.all(split[balls & (y <= 16)] == left)
    assert np.all(split[balls & (y >= 23)] == right)
    assert not np.isin(split[~balls], [left, right]).any()
    # one ball alone stays whole
    one = balls & (y < 20)
    assert (
        np.unique(grains.segment_palette(PALETTE[one.astype(int)], PALETTE, split_h=2.0)[one]).size
        == 1
    )


def test_quantize_palette_matches_numpy():
    rng = np.random.default_rng(1)
    rgb = rng.uniform(size=(5, 6, 7, 3)).astype(np.float32)
    want = np.argmin(((rgb[..., None, :] - PALETTE) ** 2).sum(-1), axis=-1)
    got = grains.quantize_palette(jnp.asarray(rgb), jnp.asarray(PALETTE))
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(got), want)


def quat_product(a, b):
    """P = -1 quaternion product in NumPy (Rowenhorst et al. 2015, eq. 23)."""
    w = a[..., :1] * b[..., :1] - np.sum(a[..., 1:] * b[..., 1:], -1, keepdims=True)
    v = a[..., :1] * b[..., 1:] + b[..., :1] * a[..., 1:] - np.cross(a[..., 1:], b[..., 1:])
    return np.concatenate([w, v], -1)


def grain_orientations(labels, seed, spread_deg):
    """One random orientation per grain, perturbed per voxel by up to spread_deg and replaced by a
    random cubic-symmetry equivalent per voxel."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(labels.max() + 1, 4))
    q = (q / np.linalg.norm(q, axis=-1, keepdims=True))[labels]
    axes = rng.normal(size=labels.shape + (3,))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    half = np.deg2rad(spread_deg) * rng.uniform(size=labels.shape + (1,)) / 2
    q = quat_product(np.concatenate([np.cos(half), np.sin(half) * axes], -1), q)
    sym = np.asarray(orientations.symmetry_quats("cubic"))
    return quat_product(sym[rng.integers(0, len(sym), labels.shape)], q)


def test_orientations_recover_voronoi(open_volume, periodic_volume):
    q = grain_orientations(open_volume, 0, spread_deg=1.0)
    labels = grains.segment_orientations(q, "cubic", threshold_deg=5.0)
    assert labels.max() == np.unique(open_volume).size
    assert_same_partition(open_volume, labels)
    qp = grain_orientations(periodic_volume, 1, spread_deg=1.0)
    periodic = grains.segment_orientations(qp, "cubic", threshold_deg=5.0, periodic=True)
    assert_same_partition(periodic_volume, periodic)


def test_neighbour_disorientation_matches_pairwise():
    q = jnp.asarray(grain_orientations(np.arange(60).reshape(4, 5, 3), 3, 0.0))
    got = grains.neighbour_disorientation(q, "hexagonal")
    for axis in range(3):
        want = orientations.misorientation_angle(q, jnp.roll(q, -1, axis=axis), "hexagonal")
        np.testing.assert_allclose(got[axis], want, atol=1e-12)


def test_orientations_validation():
    q = grain_orientations(np.zeros((4, 4, 4), int), 0, 1.0)
    with pytest.raises(ValueError, match="threshold_deg"):
        grains.segment_orientations(q, "cubic", threshold_deg=0.0)
    with pytest.raises(ValueError, match="q: expected a trailing axis of size 4"):
        grains.segment_orientations(q[..., :3], "cubic")
    with pytest.raises(ValueError, match="symmetry"):
        grains.segment_orientations(q, "icosahedral")


def continuous_field(labels, seed, sigma):
    rng = np.random.default_rng(seed)
    values = rng.uniform(-1, 1, labels.max() + 1)
    return values[labels] + rng.normal(0, sigma, labels.shape)


def test_continuous_noiseless_is_exact(open_volume, periodic_volume):
    field = continuous_field(open_volume, 0, 0.0)
    assert_same_partition(open_volume, grains.segment_continuous(field))
    field = continuous_field(periodic_volume, 1, 0.0)
    assert_same_partition(periodic_volume, grains.segment_continuous(field, periodic=True))


def merged_grains(truth, labels):
    """True grains that are not the majority of their best-matching segmented grain."""
    pairs, counts = np.unique(np.stack([truth.ravel(), labels.ravel()]), axis=1, return_counts=True)
    best_label, best_truth = {}, {}
    for (t, s), c in zip(pairs.T.tolist(), counts.tolist(), strict=True):
        if c > best_label.get(t, (0, 0))[1]:
            best_label[t] = (s, c)
        if c > best_truth.get(s, (0, 0))[1]:
            best_truth[s] = (t, c)
    return sum(best_truth[s][0] != t for t, (s, _) in best_label.items())


def test_continuous_regions_beat_dbscan_on_noise(open_volume):
    # noise sigma = 1% of the value range. Measured on this volume (seeds 2-4): regions merge
    # 4-6 of the 40 grains, DBSCAN (GrainPaint's eps and min_samples, value_scale 40) 8-9
    field = continuous_field(open_volume, 2, 0.01)
    regions = grains.segment_continuous(field, min_size=10)
    dbscan = grains.segment_continuous(field, method="dbscan", value_scale=40.0, min_size=10)
    n_regions, n_dbscan = merged_grains(open_volume, regions), merged_grains(open_volume, dbscan)
    assert n_regions <= 7 and n_regions < n_dbscan
    # and the regions do not over-split: every segmented grain is the majority of a true grain
    assert regions.max() == np.unique(open_volume).size - n_regions


def test_dbscan_tiles_agree_with_one_tile(open_volume):
    field = continuous_field(open_volume, 3, 0.0)
    whole = grains.segment_continuous(field, method="dbscan", value_scale=100.0, tile=28)
    tiled = grains.segment_continuous(field, method="dbscan", value_scale=100.0, tile=12, overlap=4)
    # DBSCAN is not exactly tile-invariant (voxels near a tile face have fewer neighbours):
    # the same grains, with at most a few voxels assigned differently
    assert whole.max() == tiled.max()
    pairs, counts = np.unique(np.stack([whole.ravel(), tiled.ravel()]), axis=1, return_counts=True)
    assert counts[counts >= 10].sum() >= 0.999 * whole.size
    assert pairs.shape[1] <= whole.max() + 3


def test_noise_scale_estimates_sigma(open_volume):
    field = continuous_field(open_volume, 4, 0.02)
    # face differences inside grains are N(0, 2 sigma^2); 22k of them: relative error ~2%
    assert grains.noise_scale(field) == pytest.approx(0.02, rel=0.1)


def test_continuous_validation():
    with pytest.raises(ValueError, match="method"):
        grains.segment_continuous(np.zeros((4, 4)), method="kmeans")
    with pytest.raises(ValueError, match="field: contains"):
        grains.segment_continuous(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="overlap"):
        grains.segment_continuous(np.zeros((4, 4)), method="dbscan", tile=8, overlap=8)
    with pytest.raises(ValueError, match="min_size"):
        grains.segment_palette(np.zeros((4, 4, 3)), PALETTE, min_size=0)
    with pytest.raises(ValueError, match="rgb: expected a trailing axis of size 3"):
        grains.segment_palette(np.zeros((4, 4, 4)), PALETTE)


def test_two_dimensional_fields():
    ids = face_connected(voronoi(5, (40, 40), 12, periodic=False))
    rgb = PALETTE[greedy_colors(ids, False)[ids]]
    assert_same_partition(ids, grains.segment_palette(rgb, PALETTE))
    assert_same_partition(ids, grains.segment_continuous(continuous_field(ids, 5, 0.0)))
