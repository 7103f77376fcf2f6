"""Tests of the one output -> noise adapter, ``jaxmicro.train.denoiser``.

An analytic Gaussian denoiser is written as an eps-, v- and x0-predictor: wrapped by
``denoiser``, DDPM and DDIM reproduce the data's mean and covariance within Monte-Carlo error for
every parameterization; learned-variance outputs are split (and read by DDPM exactly as the
fixed variance they encode); classifier-free guidance combines the branches as Ho & Salimans
eq. 6.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.diffusion import ddim_sample, ddpm_sample, linear_schedule, path_sample
from jaxmicro.diffusion.schedule import extract
from jaxmicro.lgd import lgd_sample
from jaxmicro.train import denoiser

SCHEDULE = linear_schedule(1000, 1e-4, 0.02, dtype=jnp.float64)
MU = np.array([0.5, -0.3, 0.0, 0.8])[:, None]  # (4, 1): 4 "voxels", one channel
SIGMA = np.array([0.2, 0.5, 0.1, 0.3])[:, None]


def gaussian_predictions(x, t):
    """Exact E[x0 | x_t], eps and v for x0 ~ N(MU, SIGMA^2) per voxel (Tweedie)."""
    ab = extract(SCHEDULE.alpha_bars, t, x)
    var = ab * SIGMA**2 + (1 - ab)
    x0 = MU + jnp.sqrt(ab) * SIGMA**2 / var * (x - jnp.sqrt(ab) * MU)
    eps = (x - jnp.sqrt(ab) * x0) / jnp.sqrt(1 - ab)
    v = jnp.sqrt(ab) * eps - jnp.sqrt(1 - ab) * x0
    return {"eps": eps, "v": v, "x0": x0}


@pytest.mark.parametrize("parameterization", ["eps", "v", "x0"])
def test_gaussian_denoiser_reproduces_moments(parameterization):
    def apply_fn(x, t):
        return gaussian_predictions(x, t)[parameterization]

    eps_fn = denoiser(apply_fn, SCHEDULE, parameterization=parameterization)
    n = 4000
    # All T = 1000 steps: with fewer, both samplers shrink the variance (discretization; e.g.
    # DDIM with 25 steps gives 0.6-0.9 sigma here), which is not what this test is about.
    for x in (
        ddpm_sample(jax.random.key(0), eps_fn, SCHEDULE, (4, 1), num_samples=n),
        ddim_sample(jax.random.key(1), eps_fn, SCHEDULE, (4, 1), num_samples=n, num_steps=1000),
    ):
        x = np.asarray(x)
        se_mean = SIGMA / np.sqrt(n)
        np.testing.assert_array_less(np.abs(x.mean(0) - MU), 4 * se_mean)
        # Sampling error of the std: sigma / sqrt(2 n) = 1.1%; discretization adds up to ~4%.
        np.testing.assert_allclose(x.std(0), SIGMA, rtol=0.07)
        off_diagonal = np.corrcoef(x[..., 0].T)[np.triu_indices(4, 1)]
        assert np.all(np.abs(off_diagonal) < 4 / np.sqrt(n))


def test_parameterizations_give_the_same_noise():
    x = jax.random.normal(jax.random.key(2), (3, 4, 1), jnp.float64)
    t = jnp.array([0, 500, 999])
    outs = [
        denoiser(lambda x, t, p=p: gaussian_predictions(x, t)[p], SCHEDULE, parameterization=p)(
            x, t
        )
        for p in ("eps", "v", "x0")
    ]
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outs[2], outs[0], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="parameterization"):
        denoiser(lambda x, t: x, SCHEDULE, parameterization="score")


def with_variance(v_value):
    def apply_fn(x, t):
        eps = gaussian_predictions(x, t)["eps"]
        return jnp.concatenate([eps, jnp.full_like(eps, v_value)], axis=-1)

    return apply_fn


def test_learned_variance_split_and_read_by_ddpm():
    x = jax.random.normal(jax.random.key(3), (2, 4, 1), jnp.float64)
    t = jnp.array([10, 60])
    eps_fn = denoiser(with_variance(-1.0), SCHEDULE, learned_variance=True)
    np.testing.assert_allclose(eps_fn(x, t), gaussian_predictions(x, t)["eps"])
    both = denoiser(with_variance(-1.0), SCHEDULE, learned_variance=True, variance_channels=True)
    assert both(x, t).shape == (2, 4, 2)
    # v = -1 is the posterior ("small") variance exactly (Nichol & Dhariwal eq. 15).
    plain = denoiser(lambda x, t: gaussian_predictions(x, t)["eps"], SCHEDULE)
    a = ddpm_sample(jax.random.key(4), both, SCHEDULE, (4, 1), num_samples=8, learned_variance=True)
    b = ddpm_sample(jax.random.key(4), plain, SCHEDULE, (4, 1), num_samples=8, variance="small")
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="variance_channels"):
        denoiser(with_variance(0.0), SCHEDULE, variance_channels=True)


def test_learned_variance_model_through_repaint_and_lgd():
    eps_fn = denoiser(with_variance(0.3), SCHEDULE, learned_variance=True)
    known = jnp.broadcast_to(jnp.asarray(MU), (16, 4, 1))
    mask = jnp.array([1.0, 0.0, 1.0, 0.0])[:, None]
    x_T = jax.random.normal(jax.random.key(5), known.shape, jnp.float64)
    levels = np.arange(1000, -1, -50)
    out = path_sample(jax.random.key(6), eps_fn, SCHEDULE, x_T, levels, known=known, mask=mask)
    np.testing.assert_allclose(out[:, [0, 2]], known[:, [0, 2]])
    assert np.all(np.isfinite(out))
    reference = jax.random.normal(jax.random.key(7), (8, 8, 2), jnp.float64)
    lgd_eps = denoiser(
        lambda x, t: jnp.concatenate([jnp.zeros_like(x), jnp.ones_like(x)], -1),
        SCHEDULE,
        learned_variance=True,
    )
    y = lgd_sample(jax.random.key(8), lgd_eps, SCHEDULE, reference, 3, t0=200, num_steps=20)
    assert y.shape == (3, 8, 8, 2) and np.all(np.isfinite(y))
    # The 1-point correction holds each sample's mean at the reference's.
    np.testing.assert_allclose(
        y.mean(axis=(1, 2)), np.broadcast_to(reference.mean((0, 1)), (3, 2)), atol=0.05
    )


def conditional_apply(x, t, conditions=None):
    """A network whose output is 1 for conditioned samples (scalar added), 0 for null ones."""
    base = jnp.zeros_like(x)
    if conditions is None:
        return base
    mask = conditions.get("mask", jnp.ones(x.shape[:1], bool))
    shift = conditions["scalars"][:, :1].reshape((-1,) + (1,) * (x.ndim - 1))
    return base + jnp.where(mask.reshape(shift.shape), 1.0 + shift, 0.0)


def test_classifier_free_guidance():
    x = jnp.zeros((3, 4, 1))
    t = jnp.array([1, 2, 3])
    cond = {"scalars": jnp.array([0.5])}  # one sample's entry: shared by the batch
    for scale, want in ((None, 1.5), (1.0, 1.5), (0.0, 0.0), (2.0, 3.0), (4.0, 6.0)):
        eps_fn = denoiser(conditional_apply, SCHEDULE, conditions=cond, guidance_scale=scale)
        np.testing.assert_allclose(eps_fn(x, t), want)
        jitted = jax.jit(eps_fn)
        np.testing.assert_allclose(jitted(x, t), want)
    per_sample = {"scalars": jnp.array([[0.0], [1.0], [2.0]])}
    out = denoiser(conditional_apply, SCHEDULE, conditions=per_sample, guidance_scale=2.0)(x, t)
    np.testing.assert_allclose(out[:, 0, 0], [2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="needs conditions"):
        denoiser(conditional_apply, SCHEDULE, guidance_scale=2.0)
    with pytest.raises(ValueError, match="unknown"):
        denoiser(conditional_apply, SCHEDULE, conditions={"grain_count": 3})
    with pytest.raises(ValueError, match="conditions"):
        denoiser(conditional_apply, SCHEDULE, conditions={"scalars": jnp.ones((2, 1))})(x, t)


def test_sharded_denoiser_equals_single_device():
    from jaxmicro.train import batch_mesh

    mesh = batch_mesh(4)
    apply_fn = lambda x, t: gaussian_predictions(x, t)["v"]  # noqa: E731
    one = denoiser(apply_fn, SCHEDULE, parameterization="v")
    many = denoiser(apply_fn, SCHEDULE, parameterization="v", mesh=mesh)
    a = ddim_sample(jax.random.key(9), one, SCHEDULE, (4, 1), num_samples=8, num_steps=10)
    b = jax.jit(lambda k: ddim_sample(k, many, SCHEDULE, (4, 1), num_samples=8, num_steps=10))(
        jax.random.key(9)
    )
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
