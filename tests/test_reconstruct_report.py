"""reconstruct.report (figures, records, comparison statistics) and traced loss weights."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.orientations import euler_to_quat
from jaxmicro.reconstruct import (
    Spec,
    characterize,
    descriptor,
    loss,
    loss_terms,
    reconstruct,
    report,
)

SPEC = Spec((descriptor("two_point", 2.0, max_lag=3), descriptor("mean_variation", 0.5)))


def stripes(n=16, width=4):
    """Vertical stripes of phase 1, ``width`` columns every ``2 width``."""
    img = np.zeros((n, n, 1))
    img[:, (np.arange(n) // width) % 2 == 1] = 1.0
    return img


def test_loss_terms_and_traced_weights_agree_with_the_spec():
    target = characterize(stripes(), SPEC)
    x = jax.random.uniform(jax.random.key(0), (16, 16, 1))
    terms = loss_terms(x, target, SPEC)
    assert set(terms) == {"two_point", "mean_variation"}
    np.testing.assert_allclose(
        loss(x, target, SPEC), 2.0 * terms["two_point"] + 0.5 * terms["mean_variation"], rtol=1e-12
    )
    np.testing.assert_allclose(
        loss(x, target, SPEC, weights=jnp.array([2.0, 0.5])), loss(x, target, SPEC), rtol=1e-12
    )
    only = Spec((descriptor("two_point", 3.0, max_lag=3), descriptor("mean_variation", 0.0)))
    np.testing.assert_allclose(
        jax.jit(lambda w: loss(x, target, SPEC, weights=w))(jnp.array([3.0, 0.0])),
        loss(x, target, only),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="weights"):
        loss(x, target, SPEC, weights=jnp.ones(3))


def test_vmapped_weights_match_runs_with_those_weights_in_the_spec():
    target = characterize(stripes(), SPEC)
    rows = jnp.array([[2.0, 0.5], [1.0, 1.0]])
    sweep = jax.jit(
        jax.vmap(
            lambda w: reconstruct(jax.random.key(1), target, (16, 16), SPEC, max_iter=8, weights=w)
        )
    )(rows)
    other = Spec((descriptor("two_point", 1.0, max_lag=3), descriptor("mean_variation", 1.0)))
    single = jax.jit(lambda t: reconstruct(jax.random.key(1), t, (16, 16), other, max_iter=8))(
        target
    )
    np.testing.assert_allclose(sweep.final_loss[1], single.final_loss, rtol=1e-5)
    assert float(sweep.final_loss[0]) < float(sweep.initial_loss[0])


def test_comparison_statistics():
    img = stripes()
    g_ref, g_res, rel = report.variogram_comparison(img, img, SPEC, max_lag=3)
    assert g_ref.shape == rel.shape == (1, 7, 7)
    assert np.isnan(rel[0, 3, 3]) and np.nanmax(rel) == 0.0
    assert report.fraction_below(rel) == 1.0
    shifted = np.roll(img, 1, axis=1)
    assert report.fraction_below(report.variogram_comparison(img, shifted, SPEC, max_lag=3)[2]) == 1
    # A 3D result of a 2D reference: the mean over slice directions of the volume.
    volume = np.broadcast_to(img[None], (16, 16, 16, 1))
    _, g_vol, _ = report.variogram_comparison(img, volume, SPEC, max_lag=3)
    assert g_vol.shape == (1, 7, 7)
    s_ref, s_res = report.two_point_comparison(img, img, SPEC, max_lag=2)
    np.testing.assert_allclose(s_ref, s_res)
    np.testing.assert_allclose(s_ref[0, 2, 2], img.mean(), rtol=1e-12)  # S2(0) = volume fraction

    assert report.boundary_fraction(img, SPEC) == pytest.approx(0.125)  # 4 of 16 pairs on one axis
    np.testing.assert_array_equal(report.phase_labels(img)[..., 0], 0)
    np.testing.assert_array_equal(report.phase_labels(np.array([[0.2, 0.7], [0.1, 0.1]])), [2, 0])

    orient = Spec((descriptor("two_point"),), representation="orientations")
    halves = np.zeros((8, 8, 3))
    halves[:, 4:] = (0.0, 0.5, 0.0)  # 28.6 degrees about x
    q = np.asarray(euler_to_quat(halves))
    assert report.boundary_fraction(q, orient) == pytest.approx(0.125)  # 2 of 8 pairs on one axis
    images = report.field_images(np.broadcast_to(q[None], (8, 8, 8, 4)), orient)
    assert len(images) == 3 and images[0][1].shape == (8, 8, 3)


def test_figures_and_records(tmp_path):
    img = stripes()
    report.save_images(tmp_path / "a.png", report.field_images(img, SPEC) * 2)
    report.save_loss_curve(
        tmp_path / "b.png", {"runs": np.ones((2, 10)), "x": np.ones(10)}, iterations_per_level=5
    )
    g_ref, g_res, rel = report.variogram_comparison(img, img, SPEC, max_lag=3)
    report.save_maps(
        tmp_path / "c.png",
        [("ref", g_ref), ("rel", rel)],
        column_titles=["0"],
        error_rows=("rel",),
    )
    for name in "abc":
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    report.write_json(
        tmp_path / "r.json", {"x": jnp.arange(3), "nan": float("nan"), "y": np.float32(2)}
    )
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": [0, 1, 2], "nan": None, "y": 2.0}
    out, compile_s, run_s = report.timed_call(jax.jit(lambda a: a * 2), jnp.ones(3))
    np.testing.assert_array_equal(out, 2.0)
    assert compile_s >= 0 and run_s >= 0 and report.peak_rss_mb() > 10
