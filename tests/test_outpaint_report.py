"""Grain statistics of outpainted volumes against a reference (GrainPaint Table 1 quantities)."""

import numpy as np

from jaxmicro.metrics import kl_divergence
from jaxmicro.outpaint import compare_statistics, grain_statistics, statistics_markdown


def _cubes(n_per_axis, size):
    ids = np.arange(n_per_axis**3).reshape((n_per_axis,) * 3) + 1
    return ids.repeat(size, 0).repeat(size, 1).repeat(size, 2)


def test_statistics_of_a_cube_packing():
    stats = grain_statistics(_cubes(3, 4))
    np.testing.assert_array_equal(stats["volume"], 64.0)
    np.testing.assert_allclose(stats["aspect_ratio"], 1.0)
    np.testing.assert_allclose(stats["nearest_neighbor_distance"], 4.0)


def test_comparison_of_identical_volumes_is_zero_and_uses_kl_divergence():
    a = grain_statistics(_cubes(3, 4))
    b = grain_statistics(_cubes(2, 6))
    same = compare_statistics(a, a)
    assert all(row["kl"] == 0.0 and row["ks"] == 0.0 for row in same.values())
    other = compare_statistics(b, a)
    assert other["volume"]["kl"] == float(kl_divergence(a["volume"], b["volume"], bins=30))
    assert other["volume"]["mean_generated"] == 216.0
    assert "KL(ref || gen)" in statistics_markdown(b, other)


def test_a_single_grain_gives_nan_not_an_error():
    one = grain_statistics(np.ones((6, 6, 6), int))
    table = compare_statistics(one, grain_statistics(_cubes(2, 3)))
    assert np.isnan(table["nearest_neighbor_distance"]["kl"])
    assert "nan" in statistics_markdown(one, None)
