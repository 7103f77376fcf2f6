"""DDIM on two-phase data with the exact denoiser: the sampler alone makes no grey pixels.

The data are images of independent pixels in {-1, +1}, ``P(+1) = p``, for which
``E[x_0 | x_t] = tanh(sqrt(ab) x_t / (1 - ab) + atanh(2p - 1))`` in closed form, so the exact
noise prediction is known. Each pixel then follows its own 1-D probability-flow ODE, which is
monotone: pixel ``i`` ends at ``+1`` exactly when its starting noise exceeds the ``1 - p``
quantile of ``N(0, 1)``. These tests pin the DDIM step (Song et al. eq. 12; Lee & Yun eq. 17),
its sub-trajectory, its last step and the ``x_0`` clipping on the schedule, dtype and clipping
of the Lee & Yun runs (linear, ``T = 1000``, float32, ``clip_x0 = (-1, 1)``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from jaxmicro.diffusion import ddim_sample, ddim_timesteps, ddpm_sample, linear_schedule

P = 0.35  # volume fraction of the +1 phase (the fiber data's)
SHAPE = (16, 16, 1)
BATCH = 64


def binary_eps_fn(schedule, p=P):
    """Exact ``E[eps | x_t]`` for i.i.d. pixels in {-1, +1} with ``P(+1) = p``."""
    bias = np.arctanh(2 * p - 1)

    def eps_fn(x, t):
        ab = schedule.alpha_bars[t].astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        x0 = jnp.tanh(jnp.sqrt(ab) * x / (1.0 - ab) + bias)
        return (x - jnp.sqrt(ab) * x0) / jnp.sqrt(1.0 - ab)

    return eps_fn


@pytest.fixture(scope="module")
def sched32():
    return linear_schedule(1000, dtype=jnp.float32)


def _start_noise(key, batch, shape, T, dtype=jnp.float32):
    """The sampler's starting noise (module docstring of ``samplers``)."""
    keys = jax.random.split(key, batch)
    return jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, T), shape, dtype))(keys)


@pytest.mark.parametrize("steps", [10, 25, 50, 100])
def test_ddim_eta0_exact_binary_denoiser_recovers_the_phases(sched32, steps):
    key = jax.random.key(0)
    eps_fn = binary_eps_fn(sched32)
    run = jax.jit(
        lambda k: ddim_sample(
            k, eps_fn, sched32, SHAPE, num_samples=BATCH, num_steps=steps, clip_x0=(-1.0, 1.0)
        )
    )
    x = np.asarray(run(key))
    assert x.dtype == np.float32 and np.all(np.isfinite(x))
    # No grey: every pixel ends on a phase (the last step returns the clipped x_0 estimate).
    assert np.mean(np.abs(x) < 0.99) < 1e-3, np.mean(np.abs(x) < 0.99)
    # Known values: the monotone per-pixel flow sends noise above the (1 - p) quantile to +1.
    z = np.asarray(_start_noise(key, BATCH, SHAPE, sched32.num_steps))
    expected = z > norm.ppf(1 - P)
    wrong = np.mean((x > 0) != expected)
    # Only pixels whose noise lies next to the threshold flip (discretization error: 1.2% at 10
    # steps, 0.13% at 50, 0.05% at 100).
    assert wrong < 0.2 / steps + 0.001, (steps, wrong)
    # Volume fraction: 16384 Bernoulli(p) pixels, standard error 0.0037.
    assert abs(np.mean(x > 0) - P) < 0.015


@pytest.mark.parametrize("steps, eta", [(50, 1.0), (100, 0.5)])
def test_ddim_stochastic_exact_binary_denoiser_volume_fraction(sched32, steps, eta):
    eps_fn = binary_eps_fn(sched32)
    x = np.asarray(
        jax.jit(
            lambda k: ddim_sample(
                k,
                eps_fn,
                sched32,
                SHAPE,
                num_samples=BATCH,
                num_steps=steps,
                eta=eta,
                clip_x0=(-1.0, 1.0),
            )
        )(jax.random.key(1))
    )
    assert np.mean(np.abs(x) < 0.99) < 1e-3
    assert abs(np.mean(x > 0) - P) < 0.015


def test_ddim_eta1_all_steps_equals_ddpm_small_with_clipping(sched32):
    """``eta = 1`` over all ``T`` steps is DDPM's posterior step draw for draw, also with the
    ``x_0`` clipping and in float32 (the generate() settings)."""
    s = linear_schedule(100, 1e-3, 0.2, dtype=jnp.float32)
    eps_fn = binary_eps_fn(s)
    key = jax.random.key(3)
    a = ddim_sample(key, eps_fn, s, SHAPE, num_samples=4, num_steps=100, eta=1.0, clip_x0=(-1, 1))
    b = ddpm_sample(key, eps_fn, s, SHAPE, num_samples=4, clip_x0=(-1, 1))
    np.testing.assert_allclose(a, b, atol=2e-4)


@pytest.mark.parametrize("steps, spacing", [(10, "uniform"), (37, "quadratic"), (1000, "uniform")])
def test_ddim_eta0_point_mass_trajectory_is_the_forward_process(steps, spacing):
    """For data ``x_0 = c`` the exact denoiser is ``eps = (x_t - sqrt(ab_t) c) / sqrt(1 - ab_t)``
    and every DDIM step keeps the noise ``e`` of the first step (``x_{T-1} = z``, so
    ``e = (z - sqrt(ab_{T-1}) c) / sqrt(1 - ab_{T-1})``): the network must see
    ``x_t = sqrt(ab_t) c + sqrt(1 - ab_t) e`` at each step ``t`` of the sub-trajectory, in order.
    Any misindexed ``alpha_bar`` (of ``t`` or of the next step) or step passed to the network
    breaks this identity."""
    s = linear_schedule(1000, dtype=jnp.float64)
    ab = np.asarray(s.alpha_bars)
    c = np.linspace(-1.0, 1.0, 12).reshape(3, 4, 1)
    calls = []

    def eps_fn(x, t):
        jax.debug.callback(lambda x, t: calls.append((np.asarray(t), np.asarray(x))), x, t)
        a = jnp.take(s.alpha_bars, t)[:, None, None, None]
        return (x - jnp.sqrt(a) * c) / jnp.sqrt(1.0 - a)

    key = jax.random.key(4)
    out = ddim_sample(key, eps_fn, s, c.shape, num_samples=2, num_steps=steps, spacing=spacing)
    jax.effects_barrier()
    z = np.asarray(_start_noise(key, 2, c.shape, 1000, jnp.float64))
    ts = [int(t[0]) for t, _ in calls]
    assert ts == list(ddim_timesteps(1000, steps, spacing)[::-1])
    np.testing.assert_array_equal(calls[0][1], z)
    e = (z - np.sqrt(ab[-1]) * c) / np.sqrt(1 - ab[-1])
    for t, x in calls:
        a = ab[t[0]]
        np.testing.assert_allclose(x, np.sqrt(a) * c + np.sqrt(1 - a) * e, atol=1e-9, rtol=0)
    np.testing.assert_allclose(out, np.broadcast_to(c, out.shape), atol=1e-9)
