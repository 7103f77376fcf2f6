"""Zero-terminal-SNR schedules (Lin et al. 2024): alpha_bar_T = 0, and samplers stay finite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.diffusion import (
    ddim_sample,
    linear_schedule,
    predict_x0,
    repaint_sample,
    schedule_from_betas,
    zero_terminal_snr,
)
from jaxmicro.train import TrainConfig, make_schedule


def test_rescaled_grainpaint_schedule_ends_in_pure_noise_and_keeps_its_start():
    betas = np.linspace(1e-4, 0.02, 250)
    plain = linear_schedule(250, 1e-4, 0.02, dtype=jnp.float32)
    assert float(plain.alpha_bars[-1]) == pytest.approx(0.0797, abs=1e-4)  # GrainPaint's code
    rescaled = zero_terminal_snr(betas)
    assert rescaled[-1] == 1.0 and np.all((rescaled[:-1] > 0) & (rescaled[:-1] < 1))
    ab = np.cumprod(1 - rescaled)
    assert ab[-1] == 0.0
    assert ab[0] == pytest.approx(1 - betas[0], rel=1e-12)  # first level unchanged
    # sqrt(alpha_bar) is the original one shifted and scaled (Lin et al. Algorithm 1).
    root = np.sqrt(np.cumprod(1 - betas))
    expected = (root - root[-1]) / (root[0] - root[-1]) * root[0]
    np.testing.assert_allclose(np.sqrt(ab), expected, atol=1e-12)
    schedule = schedule_from_betas(rescaled, dtype=jnp.float32)
    assert float(schedule.alpha_bars[-1]) == 0.0
    assert all(bool(jnp.all(jnp.isfinite(f))) for f in schedule)
    with pytest.raises(ValueError, match="betas"):
        schedule_from_betas(np.r_[betas[:-1], 1.0][::-1])  # only the last beta may be 1


def test_train_config_names_the_zero_snr_schedules():
    for kind in ("linear_zero_snr", "cosine_zero_snr"):
        cfg = TrainConfig(schedule=kind, num_diffusion_steps=50, parameterization="v").validate()
        assert float(make_schedule(cfg).alpha_bars[-1]) == 0.0
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="quadratic").validate()


def test_samplers_give_finite_samples_at_zero_terminal_snr():
    schedule = schedule_from_betas(zero_terminal_snr(np.linspace(1e-3, 0.2, 20)))
    # A v-model converted to eps at alpha_bar = 0 returns x itself: x0 is undetermined there.
    x = jnp.ones((2, 4, 4, 1))
    t = jnp.full((2,), 19)
    assert bool(jnp.all(predict_x0(schedule, x, t, x) == 0))

    def eps_fn(x, t):  # the exact denoiser of x0 = 0.3 everywhere
        ab = schedule.alpha_bars[t].reshape(-1, 1, 1, 1)
        return jnp.where(ab < 1, (x - jnp.sqrt(ab) * 0.3) / jnp.sqrt(1 - ab), 0.0)

    key = jax.random.key(0)
    out = ddim_sample(key, eps_fn, schedule, (4, 4, 1), num_samples=2, num_steps=5)
    np.testing.assert_allclose(out, 0.3, atol=1e-5)
    known = jnp.full((2, 4, 4, 1), 0.3)
    mask = jnp.zeros((2, 4, 4, 1)).at[:, :2].set(1)
    for kwargs in ({}, {"num_steps": 5, "eta": 0.5}):
        got = repaint_sample(key, eps_fn, schedule, known, mask, resample=3, plain_tail=2, **kwargs)
        assert bool(jnp.all(jnp.isfinite(got)))
        np.testing.assert_allclose(got, 0.3, atol=1e-4)
