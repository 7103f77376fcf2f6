"""Inverse design (issue #20): the two library extension points and the experiment's designs.

- ``jaxmicro.reconstruct.reconstruct(..., extra_loss=...)``: a user term next to the descriptor
  loss (identity at zero, steering, reported losses, one compilation for traced weights, errors).
- ``jaxmicro.diffusion.property_guidance``: DPS-style guidance toward a property of the ``x_0``
  estimate, on the exact denoiser of a periodic Gaussian field (finite differences, it moves the
  property the right way, it is ``two_point_guidance`` for ``two_point``, errors).
- ``experiments/inverse_design``: configs, and a few-step run of each design.
"""

import math
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro import descriptors
from jaxmicro._modules import load_file_module
from jaxmicro.diffusion import ddpm_sample, linear_schedule, property_guidance, two_point_guidance
from jaxmicro.reconstruct import Spec, characterize, descriptor, loss, reconstruct

HERE = Path(__file__).resolve().parents[1] / "experiments" / "inverse_design"
config = load_file_module(HERE / "config.py")
designs = load_file_module(HERE / "designs.py")

T = 40
SCHEDULE = linear_schedule(T, 0.1 / T, 0.5)


# ---- reconstruct(extra_loss=...) ---------------------------------------------------------------


def _phase_problem(n=12):
    ref = designs.anisotropic_family(jax.random.key(0), 1, (n, n), (2.0, 1.0), 0.4)[0]
    spec = Spec((descriptor("two_point", 1.0, max_lag=3),), representation="phases")
    return characterize(ref.astype(float)[..., None], spec), spec


def test_extra_loss_steers_and_is_counted_in_the_losses():
    target, spec = _phase_problem(8)
    contrast, solve = (1.0, 10.0), dict(tol=1e-8, maxiter=100)

    def ratio(field):
        return float(jnp.exp(designs.log_ratio(field[..., 0], contrast, **solve)))

    @jax.jit
    def run(key, w, log_goal):
        def extra(field):
            return w * (designs.log_ratio(field[..., 0], contrast, **solve) - log_goal) ** 2

        # Adam (a scan) compiles in a fraction of L-BFGS-B's while_loop; the L-BFGS-B path runs
        # in the (slow) design tests below.
        return reconstruct(
            key,
            target,
            (8, 8),
            spec,
            max_iter=40,
            optimizer="adam",
            learning_rate=0.05,
            extra_loss=extra,
        )

    key = jax.random.key(1)
    plain = run(key, 0.0, 0.0)
    up, down = run(key, 10.0, math.log(2.5)), run(key, 10.0, math.log(0.6))
    assert run._cache_size() == 1  # weight and goal traced: one compilation
    r_plain, r_up, r_down = ratio(plain.field), ratio(up.field), ratio(down.field)
    # Measured (8x8, 40 Adam steps): plain 1.63, toward 2.5: 2.31, toward 0.6: 0.60.
    assert r_up > r_plain + 0.3 and r_down < r_plain - 0.3, (r_plain, r_up, r_down)
    extra = 10.0 * (math.log(ratio(up.field)) - math.log(2.5)) ** 2
    np.testing.assert_allclose(
        float(up.final_loss), float(loss(up.field, target, spec)) + extra, rtol=1e-6, atol=1e-12
    )


def test_extra_loss_of_zero_is_the_plain_reconstruction():
    target, spec = _phase_problem(8)
    key = jax.random.key(2)
    kw = dict(max_iter=5, optimizer="adam")
    plain = reconstruct(key, target, (8, 8), spec, **kw)
    zero = reconstruct(key, target, (8, 8), spec, extra_loss=lambda f: 0.0 * jnp.sum(f), **kw)
    np.testing.assert_array_equal(zero.field, plain.field)
    np.testing.assert_array_equal(zero.loss_history, plain.loss_history)


def test_extra_loss_errors():
    target, spec = _phase_problem(8)
    with pytest.raises(ValueError, match="extra_loss"):
        reconstruct(jax.random.key(0), target, (8, 8), spec, max_iter=1, extra_loss=3.0)
    with pytest.raises(ValueError, match="extra_loss: expected a scalar"):
        reconstruct(
            jax.random.key(0), target, (8, 8), spec, max_iter=1, extra_loss=lambda f: f[0, 0]
        )


# ---- property_guidance -------------------------------------------------------------------------


def _spectrum(n, length):
    k = np.fft.fftfreq(n)
    p = np.exp(-0.5 * (2 * np.pi * length) ** 2 * (k[:, None] ** 2 + k[None] ** 2))
    return p / p.mean()


def _gaussian_eps(spectrum):
    """Exact denoiser of a zero-mean periodic Gaussian field with this spectrum (unit variance)."""
    p = jnp.asarray(spectrum)[None, :, :, None]

    def eps_fn(x, t):
        ab = SCHEDULE.alpha_bars[t].reshape(-1, 1, 1, 1).astype(x.dtype)
        y = jnp.fft.fft2(x, axes=(1, 2))
        return jnp.sqrt(1 - ab) * jnp.real(jnp.fft.ifft2(y / (ab * p + 1 - ab), axes=(1, 2)))

    return eps_fn


def _mean(x0):
    return jnp.mean(x0)


def test_property_guidance_moves_the_property_toward_the_target():
    eps_fn = _gaussian_eps(_spectrum(8, 1.0))

    @jax.jit
    def sample(key, scale):
        fn = property_guidance(eps_fn, SCHEDULE, _mean, 0.8, scale=scale)
        return ddpm_sample(key, fn, SCHEDULE, (8, 8, 1), num_samples=16)

    gaps = [
        float(np.mean(np.abs(np.asarray(sample(jax.random.key(0), s)).mean((1, 2, 3)) - 0.8)))
        for s in (0.0, 3.0, 30.0)
    ]
    # Prior sample means: N(0, ~0.3^2); the pull toward 0.8 closes the gap step by step.
    assert gaps[0] > 0.5 and gaps[1] < gaps[0] and gaps[2] < 0.1, gaps


def test_property_guidance_gradient_matches_finite_differences():
    n, t, scale, goal = 3, 7, 2.5, 0.3
    eps_fn = _gaussian_eps(_spectrum(n, 0.7))

    def prop(x0):
        return jnp.mean(jnp.tanh(x0) ** 3)

    # Jitted: eager dispatch of the guidance gradient costs seconds, its compilation a fraction.
    guided = jax.jit(property_guidance(eps_fn, SCHEDULE, prop, goal, scale=scale))
    x = jax.random.normal(jax.random.key(3), (1, n, n, 1))
    tt = jnp.array([t])
    delta = np.asarray(guided(x, tt) - eps_fn(x, tt)).ravel()
    ab = float(SCHEDULE.alpha_bars[t])

    @jax.jit  # one compilation for the 2 * 9 evaluations
    def residual_fn(xx):
        x0 = (xx - math.sqrt(1 - ab) * eps_fn(xx, tt)) / math.sqrt(ab)
        return jnp.abs(prop(x0[0]) - goal)

    def residual(flat):
        return float(residual_fn(jnp.asarray(flat).reshape(x.shape)))

    flat, h = np.asarray(x).ravel(), 1e-6
    fd = np.array(
        [(residual(flat + h * e) - residual(flat - h * e)) / (2 * h) for e in np.eye(flat.size)]
    )
    np.testing.assert_allclose(delta, scale * math.sqrt(1 - ab) * fd, rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(
        property_guidance(eps_fn, SCHEDULE, prop, goal, scale=0.0)(x, tt), eps_fn(x, tt)
    )


def test_two_point_guidance_is_property_guidance_of_two_point():
    eps_fn = _gaussian_eps(_spectrum(6, 1.0))
    target = np.asarray(descriptors.two_point(np.random.default_rng(0).normal(size=(6, 6, 1))))
    x = jax.random.normal(jax.random.key(4), (2, 6, 6, 1))
    t = jnp.array([3, 30])
    a = jax.jit(two_point_guidance(eps_fn, SCHEDULE, target, scale=4.0))(x, t)
    b = jax.jit(property_guidance(eps_fn, SCHEDULE, descriptors.two_point, target, scale=4.0))(x, t)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_property_guidance_errors():
    eps_fn = _gaussian_eps(_spectrum(4, 1.0))
    with pytest.raises(ValueError, match="scale"):
        property_guidance(eps_fn, SCHEDULE, _mean, 0.0, scale=-1.0)
    with pytest.raises(ValueError, match="property_fn"):
        property_guidance(eps_fn, SCHEDULE, "mean", 0.0, scale=1.0)
    with pytest.raises(ValueError, match="target"):
        property_guidance(eps_fn, SCHEDULE, _mean, np.nan, scale=1.0)
    with pytest.raises(ValueError, match="target: expected shape"):
        property_guidance(eps_fn, SCHEDULE, _mean, np.zeros(2), scale=1.0)(
            jnp.zeros((1, 4, 4, 1)), jnp.array([0])
        )


# ---- the experiment ----------------------------------------------------------------------------


def test_variants():
    smoke, paper, tiny = (config.get_config(v) for v in ("smoke", "paper", "tiny"))
    assert smoke.contrast == (1.0, 10.0) and 2.0 in smoke.tp_targets
    assert smoke.gd_model == "lee-yun-fiber" and smoke.gd_samples == 32
    assert len(paper.tp_shape) == 3 and paper.pc_grains > smoke.pc_grains
    assert tiny.gd_model == "" and tiny.gd_train is not None
    with pytest.raises(ValueError, match="variant"):
        config.get_config("huge")


def test_cubic_young_and_the_solver_agree_on_a_single_crystal():
    cfg = config.get_config("tiny")
    crystal = designs.properties.cubic_stiffness(*cfg.pc_constants)
    np.testing.assert_allclose(
        float(designs.young_modulus_z(crystal)), designs.cubic_young(cfg.pc_constants, (0, 0, 1))
    )
    # copper: E<100> 66.7, E<111> 191.1 GPa
    assert abs(designs.cubic_young(cfg.pc_constants, (0, 0, 1)) - 66.7) < 0.1
    assert abs(designs.cubic_young(cfg.pc_constants, (1, 1, 1)) - 191.1) < 0.1


def test_texture_objective_gradient_matches_finite_differences():
    """The design's E_z of per-grain quaternions, differentiated through the stiffness solve."""
    cfg = config.get_config("tiny")
    ids = jnp.asarray(np.arange(64).reshape(4, 4, 4) % 3)  # 3 grains, layered
    crystal = designs.properties.cubic_stiffness(*cfg.pc_constants)
    params = jax.random.normal(jax.random.key(6), (3, 4))

    def young(p):
        c, _ = designs.grain_stiffness(p, ids, crystal, tol=1e-12, maxiter=200)
        return designs.young_modulus_z(c)

    # One compiled program (value and gradient) serves the gradient and the 24 evaluations of
    # the finite differences, whose values it computes by the forward solve alone.
    value_and_grad = jax.jit(jax.value_and_grad(young))
    grad = np.asarray(value_and_grad(params)[1]).ravel()
    flat, h = np.asarray(params).ravel(), 1e-6

    def value(v):
        return value_and_grad(jnp.asarray(v).reshape(3, 4))[0]

    fd = np.array([(value(flat + h * e) - value(flat - h * e)) / (2 * h) for e in np.eye(12)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())


@pytest.mark.slow
def test_texture_design_tiny_reaches_its_target():
    r = designs.texture_design(config.get_config("tiny"))
    (row,) = r["rows"]
    assert row["reached"] and row["converged"], row
    assert r["start_reuss"] <= row["start"] <= r["start_voigt"]


def test_guided_sampler_on_an_analytic_denoiser_moves_the_ratio():
    n = 12
    eps_fn = _gaussian_eps(_spectrum(n, 1.5))
    model = types.SimpleNamespace(
        eps_fn=lambda: eps_fn, schedule=SCHEDULE, sample_shape=(n, n, 1), path=None
    )
    cfg = config.dataclasses.replace(
        config.get_config("tiny"), gd_target=2.0, gd_steps=10, gd_batch=8, gd_eta=1.0
    )
    sample = designs.guided_sampler(model, cfg)  # one compilation for both scales
    x = np.concatenate([np.asarray(sample(jax.random.key(5), scale)) for scale in (0.0, 30.0)])
    assert x.shape == (16, n, n, 1) and np.all(np.isfinite(x))
    binary = (x[..., 0] > 0).astype(float)
    # Both sets described at once (describe_samples compiles its solver on every call).
    ratio = designs.describe_samples(binary, designs.mean_two_point(binary[:8]), cfg)["ratio"]
    ratios = [ratio[:8].mean(), ratio[8:].mean()]  # measured: 0.92, 2.13
    assert ratios[1] > ratios[0] + 0.1, ratios


@pytest.mark.slow
def test_two_phase_design_tiny():
    r = designs.two_phase_design(config.get_config("tiny"))
    assert [row["run"] for row in r["rows"]] == ["plain", "target 2", "target 3"]
    assert all(row["binary"]["converged"] for row in r["rows"])
    assert r["fields"]["plain"].shape == (16, 16)


@pytest.mark.slow
def test_run_tiny_end_to_end(tmp_path):
    run = load_file_module(HERE / "run.py")
    results = run.main(["--variant", "tiny", "--out", str(tmp_path)])
    assert set(results) >= {"two_phase", "polycrystal", "guided", "config"}
    for name in ("report.md", "results.json", "two_phase_fields.png", "polycrystal_texture.png"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "guided_ratio_hist.png").is_file()
    assert "Property-guided" in (tmp_path / "report.md").read_text()
