"""STL round trips and ray-parity voxelization against analytic solids."""

import numpy as np
import pytest

from jaxmicro.outpaint.cad import STLFormatError, read_stl, voxelize, write_stl


def box_mesh(lo, hi):
    """12 outward-facing triangles of the axis-aligned box [lo, hi]."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    corners = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], float)
    v = lo + corners * (hi - lo)
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    tris = [[v[a], v[b], v[c]] for a, b, c, d in quads] + [
        [v[a], v[c], v[d]] for a, b, c, d in quads
    ]
    return np.array(tris)


def sphere_mesh(centre, radius, n=48):
    """UV sphere with n latitude bands; vertices on the sphere (the mesh lies inside it)."""
    theta = np.linspace(0, np.pi, n + 1)
    phi = np.linspace(0, 2 * np.pi, 2 * n + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    pts = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1) * radius + centre
    tris = []
    for i in range(n):
        for j in range(2 * n):
            a, b, c, d = pts[i, j], pts[i + 1, j], pts[i + 1, j + 1], pts[i, j + 1]
            if i > 0:
                tris.append([a, b, d])
            if i < n - 1:
                tris.append([b, c, d])
    return np.array(tris)


def test_box_voxelization_is_exact():
    tris = box_mesh([2.3, 1.3, 0.6], [7.6, 4.2, 9.1])
    mask, origin = voxelize(tris, 1.0, origin=(0.0, 0.0, 0.0), shape=(12, 6, 10))
    np.testing.assert_array_equal(origin, 0.0)
    z, y, x = np.indices(mask.shape) + 0.5
    expected = (x > 2.3) & (x < 7.6) & (y > 1.3) & (y < 4.2) & (z > 0.6) & (z < 9.1)
    np.testing.assert_array_equal(mask, expected)


def test_sphere_voxelization_matches_the_ball_away_from_the_surface():
    centre, radius, voxel = np.array([10.0, 11.0, 12.0]), 8.0, 0.5
    mask, origin = voxelize(
        sphere_mesh(centre, radius), voxel, origin=(0, 0, 0), shape=(48, 44, 40)
    )
    z, y, x = (np.indices(mask.shape) + 0.5) * voxel
    r = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    # The chordal mesh lies within radius * (1 - cos(pi / 48)) ~ 0.017 of the sphere.
    assert mask[r < radius - 0.05].all()
    assert not mask[r > radius + 0.05].any()
    volume = mask.sum() * voxel**3
    assert abs(volume / (4 / 3 * np.pi * radius**3) - 1) < 0.01


@pytest.mark.parametrize("binary", [True, False])
def test_stl_round_trip(tmp_path, binary):
    tris = sphere_mesh(np.zeros(3), 1.0, n=6)
    path = tmp_path / "part.stl"
    write_stl(path, tris, binary=binary)
    back = read_stl(path)
    np.testing.assert_allclose(back, tris, rtol=0, atol=1e-6 if binary else 1e-8)


def test_default_grid_holds_the_mesh(tmp_path):
    tris = box_mesh([0, 0, 0], [4, 2, 3])
    mask, origin = voxelize(tris, 0.5)
    assert mask.shape == (6, 4, 8) and mask.all()
    np.testing.assert_array_equal(origin, 0.0)
    # Sizes that are whole numbers of voxels only up to rounding (float32 STL vertices).
    box = box_mesh([0, 0, 0], [1.0, 0.5, 1.2]).astype(np.float32)
    mask, _ = voxelize(box, 0.1)
    assert mask.shape == (12, 5, 10) and mask.all()


@pytest.mark.parametrize(
    "content, match",
    [
        (b"hello world", "not an ASCII STL"),
        (b"solid x\n facet normal 0 0 1\n outer loop\n vertex 0 0\n", ":4:"),
        (b"solid x\n vertex 0 0 a\n", ":2:"),
        (b"solid x\n vertex 0 0 0\n vertex 1 0 0\nendsolid\n", "whole number"),
    ],
)
def test_malformed_stl_raises_with_location(tmp_path, content, match):
    path = tmp_path / "bad.stl"
    path.write_bytes(content)
    with pytest.raises(STLFormatError, match=match):
        read_stl(path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="triangles"):
        voxelize(np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match="voxel"):
        voxelize(box_mesh([0, 0, 0], [1, 1, 1]), 0.0)
