"""Tests of the Local-Global Decomposition pipeline (jaxmicro.lgd) and the ``lgd`` command."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro import descriptors, harmonics
from jaxmicro.diffusion import linear_schedule
from jaxmicro.lgd import lgd_orientations, lgd_sample

T = 200
SCHEDULE = linear_schedule(T, 0.1 / T, 0.1)
N = 16
MEAN = 0.2


def _model():
    """A one-channel reference and the exact eps of the Gaussian law the GRF samples from it.

    The law is N(mean, circulant(periodogram)) with a free mean mode (variance 0.05 at k = 0),
    so the refinement denoises the field with its own statistics.
    """
    rng = np.random.default_rng(0)
    k = np.fft.fftfreq(N)
    p = np.exp(-0.5 * (2 * np.pi * 1.5) ** 2 * (k[:, None] ** 2 + k[None] ** 2))
    field = np.real(
        np.fft.ifft2(np.sqrt(0.05 * p / p.mean()) * np.fft.fft2(rng.normal(size=(N, N))))
    )
    reference = (field - field.mean() + MEAN)[..., None]
    periodogram = np.abs(np.fft.fft2(reference[..., 0] - MEAN)) ** 2 / N**2
    periodogram[0, 0] = 0.05
    prior = jnp.asarray(periodogram)[None, :, :, None]

    def eps_fn(x, t):
        ab = SCHEDULE.alpha_bars[t].reshape(-1, 1, 1, 1).astype(x.dtype)
        y = jnp.fft.fft2(x - jnp.sqrt(ab) * MEAN, axes=(1, 2))
        return jnp.sqrt(1 - ab) * jnp.real(jnp.fft.ifft2(y / (ab * prior + 1 - ab), axes=(1, 2)))

    return eps_fn, reference


def _two_point_error(x, reference):
    stats = np.asarray(jax.vmap(descriptors.two_point)(x)).mean(0)
    target = np.asarray(descriptors.two_point(reference))
    return np.abs(stats - target).max() / np.abs(target).max()


def test_lgd_keeps_the_reference_statistics():
    eps_fn, reference = _model()
    run = jax.jit(
        lambda key, strength: lgd_sample(
            key, eps_fn, SCHEDULE, reference, 128, t0=50, strength=strength
        )
    )
    x = np.asarray(run(jax.random.key(0), 1.0))
    assert x.shape == (128, N, N, 1) and np.all(np.isfinite(x))
    # 1-point: corrected to the reference mean in every sample.
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), MEAN, atol=2e-3)
    # 2-point: the denoiser's prior is the GRF's own law, so refinement keeps the map.
    # Measured max relative error 0.04, as for the GRF samples themselves (Monte-Carlo noise of
    # 128 samples); coarse schedules add DDPM's own discretization error (0.12 at T = 40).
    assert _two_point_error(x, reference) < 0.08
    # Without the correction the sample means scatter (the prior's mean mode is free).
    free = np.asarray(run(jax.random.key(0), 0.0)).mean(axis=(1, 2, 3))
    assert np.abs(free - MEAN).max() > 0.01


def test_seeding_options_and_substeps():
    eps_fn, reference = _model()
    key = jax.random.key(1)
    as_is = lgd_sample(key, eps_fn, SCHEDULE, reference, 2, t0=5, renoise=False)
    full = lgd_sample(
        key,
        eps_fn,
        SCHEDULE,
        reference.astype(np.float32),
        2,
        t0=T,
        num_steps=8,
        guidance_scale=1.0,
        eta=0.0,
    )
    assert as_is.shape == full.shape == (2, N, N, 1)
    assert full.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(full)))
    # From the field as is, few steps barely move it: it stays close to the GRF seed.
    seed = np.asarray(
        lgd_sample(key, eps_fn, SCHEDULE, reference, 2, t0=1, renoise=False, strength=0.0)
    )
    assert np.abs(seed - np.asarray(as_is)).max() < np.abs(seed - MEAN).max()
    with pytest.raises(ValueError, match="t0"):
        lgd_sample(key, eps_fn, SCHEDULE, reference, 2, t0=T + 1)
    with pytest.raises(ValueError, match="reference"):
        lgd_sample(key, eps_fn, SCHEDULE, reference[..., 0, 0], 2, t0=5)


def test_orientations_round_trip_through_rogsh():
    euler = np.random.default_rng(2).uniform([0, 0, 0], [2 * np.pi, np.pi, 2 * np.pi], (4, 4, 3))
    coeffs = harmonics.rogsh(jnp.asarray(euler), "hexagonal")
    back = lgd_orientations(coeffs, "hexagonal")
    assert back.shape == (4, 4, 3)
    np.testing.assert_allclose(harmonics.rogsh(back, "hexagonal"), coeffs, atol=1e-8)
    with pytest.raises(ValueError, match="basis"):
        lgd_orientations(coeffs, "hexagonal", basis="gsh")


def test_lgd_command_rejects_a_folder_without_a_run(tmp_path, capsys):
    from jaxmicro.cli import main

    np.save(tmp_path / "ref.npy", np.zeros((8, 8), np.float32))
    code = main(
        [
            "lgd",
            "--checkpoint",
            str(tmp_path),
            "--reference",
            str(tmp_path / "ref.npy"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2 and "checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_lgd_command_smoke(tmp_path):
    from jaxmicro.cli import main
    from jaxmicro.nn.unet import UNetConfig
    from jaxmicro.train import DataConfig, TrainConfig, fit

    model = UNetConfig(
        channels=(8, 8),
        num_res_blocks=1,
        attention_levels=(),
        num_groups=4,
        dropout=0.0,
        max_time=20.0,
    )
    config = TrainConfig(
        model=model,
        data=DataConfig(shape=(8, 8), num_examples=8),
        num_diffusion_steps=20,
        beta_start=0.005,
        beta_end=0.5,
        batch_size=4,
        num_train_steps=1,
        warmup_steps=1,
        sample_every=0,
    )
    fit(dataclasses.replace(config, name="tiny"), tmp_path / "run", progress=False)
    reference = np.random.default_rng(3).uniform(-1, 1, (8, 8)).astype(np.float32)
    np.save(tmp_path / "ref.npy", reference)
    code = main(
        [
            "lgd",
            "--checkpoint",
            str(tmp_path / "run"),
            "--reference",
            str(tmp_path / "ref.npy"),
            "-n",
            "3",
            "--batch-size",
            "2",
            "--t0",
            "4",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    x = np.load(tmp_path / "out" / "samples.npy")
    assert x.shape == (3, 8, 8, 1) and np.all(np.isfinite(x))
    assert (tmp_path / "out" / "samples.png").exists()
