"""Tests of grain colouring, palettes, orientations and two-phase generators (jaxmicro.synth)."""

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.distance import pdist

from jaxmicro import synth
from jaxmicro.orientations import quat_angle, quat_conjugate, quat_multiply

voronoi = jax.jit(synth.voronoi, static_argnames=("shape", "n_grains"))


def _adjacency_reference(ids, periodic):
    pairs = set()
    for site in itertools.product(*map(range, ids.shape)):
        for axis in range(ids.ndim):
            other = list(site)
            other[axis] += 1
            if other[axis] == ids.shape[axis]:
                if not periodic:
                    continue
                other[axis] = 0
            a, b = ids[site], ids[tuple(other)]
            if a != b:
                pairs.add((min(a, b), max(a, b)))
    return sorted(pairs)


@pytest.mark.parametrize("periodic", [True, False])
def test_adjacency_matches_direct_scan(periodic):
    ids = np.asarray(voronoi(jax.random.key(0), (10, 12, 8), 12))
    got = synth.grain_adjacency(ids, periodic=periodic)
    assert [tuple(p) for p in got] == _adjacency_reference(ids, periodic)


def test_colouring_300_grains_within_ten_colours():
    for seed in range(2):
        ids = np.asarray(voronoi(jax.random.key(seed), (48, 48, 48), 300))
        colors = synth.color_grains(ids, 10)
        edges = synth.grain_adjacency(ids)  # periodic, as the colouring
        assert colors.shape == (300,) and colors.max() < 10
        assert not np.any(colors[edges[:, 0]] == colors[edges[:, 1]])
        # Not periodic-aware would miss the pairs across faces.
        assert len(edges) > len(synth.grain_adjacency(ids, periodic=False))


def test_tabu_search_repairs_tight_budget():
    ids = np.asarray(voronoi(jax.random.key(0), (48, 48, 48), 300))
    dsatur = synth.color_grains(ids, 300).max() + 1  # DSATUR alone (budget never binding)
    budget = dsatur - 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        colors = synth.color_grains(ids, budget)
    edges = synth.grain_adjacency(ids)
    assert colors.max() < budget
    assert not np.any(colors[edges[:, 0]] == colors[edges[:, 1]])
    np.testing.assert_array_equal(colors, synth.color_grains(ids, budget))  # deterministic


def test_impossible_budget_warns():
    ids = np.array([[0, 1], [1, 0]])
    with pytest.warns(UserWarning, match="no proper 1-colouring"):
        synth.color_grains(ids, 1, max_iter=50)
    with pytest.raises(ValueError, match="ids"):
        synth.color_grains(np.array([[0, 3]]), 2, n_grains=2)


def test_palette_and_rgb_encoding():
    rgb = synth.palette(10)
    assert rgb.shape == (10, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert pdist(rgb).min() >= 0.63
    np.testing.assert_array_equal(rgb, synth.palette(10))
    assert synth.palette(1).shape == (1, 3)
    ids = jnp.array([[0, 1], [2, 1]])
    colors = jnp.array([3, 0, 7])
    image = synth.ids_to_rgb(ids, colors, rgb)
    assert image.shape == (2, 2, 3)
    np.testing.assert_allclose(image[1, 0], rgb[7])
    np.testing.assert_allclose(jax.jit(synth.ids_to_rgb)(ids, colors, rgb), image)
    with pytest.raises(ValueError, match="n_colors"):
        synth.palette(0)


def test_uniform_orientations():
    for dtype in (jnp.float32, jnp.float64):
        q = synth.grain_orientations(jax.random.key(0), 2000, dtype=dtype)
        assert q.shape == (2000, 4) and q.dtype == dtype
        np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-5)
    # Haar measure: the rotation angle has mean pi/2 + 2/pi.
    angle = np.asarray(quat_angle(synth.grain_orientations(jax.random.key(1), 20000)))
    assert abs(angle.mean() - (np.pi / 2 + 2 / np.pi)) < 0.02


def test_textured_orientations_spread():
    q0 = jnp.array([[np.cos(0.3), np.sin(0.3), 0.0, 0.0], [np.cos(0.6), 0.0, 0.0, np.sin(0.6)]])
    spread = 0.1
    q = synth.grain_orientations(jax.random.key(2), 20000, texture=q0, spread=spread)
    # Misorientation to the nearest component: Maxwell-distributed with mean 2 s sqrt(2 / pi).
    angles = jnp.stack([quat_angle(quat_multiply(q, quat_conjugate(c))) for c in q0])
    nearest = np.asarray(angles.min(axis=0))
    np.testing.assert_allclose(nearest.mean(), 2 * spread * np.sqrt(2 / np.pi), rtol=0.03)
    counts = np.bincount(np.asarray(angles.argmin(axis=0)))
    assert abs(counts[0] / counts.sum() - 0.5) < 0.02
    exact = synth.grain_orientations(jax.random.key(3), 4, texture=q0[0], spread=0.0)
    np.testing.assert_allclose(exact, np.tile(q0[0], (4, 1)), atol=1e-12)
    with pytest.raises(ValueError, match="texture"):
        synth.grain_orientations(jax.random.key(0), 4, texture=jnp.ones(3))


def _min_periodic_distance(centres, box):
    d = np.abs(centres[:, None] - centres[None])
    d = np.minimum(d, box - d)
    r = np.sqrt((d**2).sum(-1))
    return r[np.triu_indices(len(centres), 1)].min()


@pytest.mark.parametrize(
    "shape, radius, fraction", [((96, 96), 4.0, 0.35), ((40, 40, 40), 3.0, 0.25)]
)
def test_rsa_disks(shape, radius, fraction):
    field, centres, count = synth.rsa_disks(jax.random.key(0), shape, radius, fraction)
    count = int(count)
    centres = np.asarray(centres)[:count]
    assert field.shape == shape and field.dtype == jnp.int32
    assert _min_periodic_distance(centres, np.asarray(shape)) >= 2 * radius
    unit = np.pi * radius**2 if len(shape) == 2 else 4 / 3 * np.pi * radius**3
    assert count == round(fraction * np.prod(shape) / unit)
    # Disjoint disks: the voxel fraction is the continuous one up to discretization.
    assert abs(float(field.mean()) - fraction) < 0.02
    # Each centre's voxel is inside the inclusion phase.
    cells = np.floor(centres).astype(int)
    assert np.all(np.asarray(field)[tuple(cells.T)] == 1)


def test_rsa_jams_with_warning():
    with pytest.warns(UserWarning, match="jammed"):
        _, _, count = synth.rsa_disks(jax.random.key(0), (32, 32), 4.0, 0.7, max_rejections=2000)
    assert int(count) < round(0.7 * 32 * 32 / (np.pi * 16))


def test_gaussian_two_phase_statistics():
    shape, ell = (128, 128), 3.0
    fields = [synth.gaussian_two_phase(jax.random.key(i), shape, ell, 0.5) for i in range(4)]
    assert fields[0].dtype == jnp.int32 and set(np.unique(fields[0])) <= {0, 1}
    fraction = np.mean([float(f.mean()) for f in fields])
    assert abs(fraction - 0.5) < 0.03
    # Level-cut Gaussian at fraction 1/2: S2(r) = 1/4 + arcsin(rho(r)) / (2 pi).
    for r in (1, 3, 6):
        s2 = np.mean([float(jnp.mean(f * jnp.roll(f, r, axis=0))) for f in fields])
        rho = np.exp(-(r**2) / (2 * ell**2))
        assert abs(s2 - (0.25 + np.arcsin(rho) / (2 * np.pi))) < 0.015
    exact = synth.gaussian_two_phase(jax.random.key(0), shape, ell, 0.3, exact_fraction=True)
    assert abs(float(exact.mean()) - 0.3) < 1e-3
    with pytest.raises(ValueError, match="volume_fraction"):
        synth.gaussian_two_phase(jax.random.key(0), shape, ell, 1.5)
