"""Tests of RePaint (jaxmicro.diffusion.repaint) with analytic denoisers.

For Gaussian data ``x_0 ~ N(mu, Sigma)`` the exact noise prediction is
``eps(x_t) = sqrt(1 - ab) (ab Sigma + (1 - ab) I)^{-1} (x_t - sqrt(ab) mu)``; every move of the
sampler is then linear-Gaussian, so its output distribution can also be propagated exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.diffusion import linear_schedule
from jaxmicro.diffusion.repaint import path_sample, repaint_sample, repaint_schedule

N = 16  # voxels of the periodic 1-D test field


def _gaussian_problem(num_levels):
    """Schedule, covariance, mean, exact eps_fn, a known half and its exact conditional."""
    schedule = linear_schedule(num_levels, 0.1 / num_levels, min(20.0 / num_levels, 0.6))
    i = np.arange(N)
    lag = np.minimum(np.abs(i[:, None] - i), N - np.abs(i[:, None] - i))
    k = np.fft.fftfreq(N) * N
    row = np.real(np.fft.ifft(1 / (1 + (2 * np.pi * k / N * 3.0) ** 2)))  # exponential-like
    cov = row[lag] / row[0]
    mu = np.full(N, 0.3)
    lam, vec = np.linalg.eigh(cov)
    ab = np.asarray(schedule.alpha_bars)

    def eps_fn(x, t):
        a = jnp.asarray(ab, x.dtype)[t][:, None]
        w = ((x[..., 0] - jnp.sqrt(a) * mu) @ vec) / (a * lam + 1 - a)
        return (jnp.sqrt(1 - a) * (w @ vec.T))[..., None].astype(x.dtype)

    # Cholesky, not the eigenvectors: their signs (and bases of repeated eigenvalues) vary by LAPACK
    truth = mu + np.linalg.cholesky(cov) @ np.random.default_rng(0).normal(size=N)
    known = np.arange(N) < N // 2
    s12 = cov[np.ix_(~known, known)]
    cond_mean = mu[~known] + s12 @ np.linalg.solve(cov[np.ix_(known, known)], truth[known] - 0.3)
    cond_cov = cov[np.ix_(~known, ~known)] - s12 @ np.linalg.solve(cov[np.ix_(known, known)], s12.T)
    return schedule, cov, mu, eps_fn, truth, known, cond_mean, cond_cov


def _propagate(schedule, cov, mu, truth, known, levels, eta=1.0):
    """Exact mean and covariance of RePaint's output for Gaussian data (numpy, independent)."""
    ab = np.concatenate([[1.0], np.asarray(schedule.alpha_bars)])
    eye, keep = np.eye(N), np.diag(known.astype(float))
    free = eye - keep
    top = levels[0]
    m, P = keep @ (np.sqrt(ab[top]) * truth), free + keep * (1 - ab[top])
    for a, b in zip(levels[:-1], levels[1:], strict=True):
        if b > a:
            r = ab[b] / ab[a]
            m, P = np.sqrt(r) * m, r * P + (1 - r) * eye
            continue
        gain = np.sqrt(1 - ab[a]) * np.linalg.inv(ab[a] * cov + (1 - ab[a]) * eye)
        to_x0 = (eye - np.sqrt(1 - ab[a]) * gain) / np.sqrt(ab[a])
        var = eta**2 * (1 - ab[b]) / (1 - ab[a]) * (1 - ab[a] / ab[b])
        lin = np.sqrt(ab[b]) * to_x0 + np.sqrt(max(1 - ab[b] - var, 0)) * gain
        # eps = gain (x - sqrt(ab_a) mu) is affine in x: its offset folds into one constant.
        offset = (np.sqrt(ab[b] * (1 - ab[a]) / ab[a]) - np.sqrt(max(1 - ab[b] - var, 0))) * (
            gain @ (np.sqrt(ab[a]) * mu)
        )
        m = free @ (lin @ m + offset) + keep @ (np.sqrt(ab[b]) * truth)
        P = free @ (lin @ P @ lin.T + var * eye) @ free + keep * (1 - ab[b])
    return m, P


def _batch(truth, known, batch, dtype=np.float64):
    k = np.broadcast_to(truth[None, :, None], (batch, N, 1)).astype(dtype)
    m = np.broadcast_to(known[None, :, None], (batch, N, 1)).astype(dtype)
    return jnp.asarray(k), jnp.asarray(m)


def test_schedule_counts_and_grainpaint_figure():
    def calls(levels):
        return int(np.sum(np.diff(levels) < 0))

    levels = repaint_schedule(250, resample=10, jump=1, plain_tail=25)
    assert levels[0] == 250 and levels[-1] == 0
    assert calls(levels) == 250 + 9 * 225 == 2275
    # GrainPaint's "10 resamplings" are 11 passes: 2,500 calls, of which its loop skips the
    # 11 at the noisiest step -> 2,489.
    assert calls(repaint_schedule(250, resample=11, jump=1, plain_tail=25)) == 2500
    # The last plain_tail moves are single reverse steps; resampling=1 is plain DDPM.
    np.testing.assert_array_equal(levels[-26:], np.arange(25, -1, -1))
    np.testing.assert_array_equal(repaint_schedule(6, resample=1), np.arange(6, -1, -1))
    # Jumps of j levels, each jump point visited `resample` times.
    np.testing.assert_array_equal(
        repaint_schedule(6, resample=2, jump=2, plain_tail=2),
        [6, 5, 4, 6, 5, 4, 3, 2, 4, 3, 2, 1, 0],
    )
    # DDIM sub-trajectory: steps counted on it.
    fast = repaint_schedule(250, resample=10, jump=1, plain_tail=5, num_steps=50)
    assert calls(fast) == 50 + 9 * 45
    assert set(fast) <= set(np.round(np.linspace(0, 250, 51)).astype(int))


def test_noise_levels_are_exact_for_a_point_mass():
    # Data = constant field c: the reverse step is the exact posterior and every level n must
    # hold N(sqrt(ab_n) c, 1 - ab_n) exactly. A wrong beta in the re-noising or a known part
    # drawn at the previous level shows up as a variance off by ~beta (10-20 % here).
    schedule = linear_schedule(20, 0.005, 0.5)
    ab = np.concatenate([[1.0], np.asarray(schedule.alpha_bars)])
    c = 0.5

    def eps_fn(x, t):
        a = schedule.alpha_bars[t][:, None, None]
        return (x - jnp.sqrt(a) * c) / jnp.sqrt(1 - a)

    batch, shape = 256, (128, 1)
    start = jax.random.normal(jax.random.key(0), (batch, *shape))
    known = jnp.full((batch, *shape), c)
    mask = jnp.broadcast_to((jnp.arange(128) % 2 == 0)[None, :, None], known.shape) * 1.0
    paths = {
        "up": np.array([*range(20, 5, -1), 9, 8, 7, 6, 8]),
        "down": np.array([*range(20, 5, -1), 9, 8, 7]),
    }
    cases = [(name, inpaint) for name in paths for inpaint in (False, True)]

    @jax.jit  # the four paths in one compiled program
    def run(start, known, mask):
        return [
            path_sample(
                jax.random.key(1), eps_fn, schedule, start, paths[name],
                **({"known": known, "mask": mask} if inpaint else {}),
            )
            for name, inpaint in cases
        ]  # fmt: skip

    for (name, _), x in zip(cases, run(start, known, mask), strict=True):
        end = int(paths[name][-1])
        x = np.asarray(x)
        for part in (x[:, ::2], x[:, 1::2]):
            np.testing.assert_allclose(part.mean(), np.sqrt(ab[end]) * c, atol=0.035)
            np.testing.assert_allclose(part.var(), 1 - ab[end], rtol=0.04, err_msg=name)


def test_sampler_matches_exact_propagation():
    schedule, cov, mu, eps_fn, truth, known, _, _ = _gaussian_problem(40)
    levels = repaint_schedule(40, resample=4, jump=2, plain_tail=4)
    exp_mean, exp_cov = _propagate(schedule, cov, mu, truth, known, levels)
    known_b, mask_b = _batch(truth, known, 3000)
    f = jax.jit(
        lambda k: repaint_sample(
            k, eps_fn, schedule, known_b, mask_b, resample=4, jump=2, plain_tail=4
        )
    )
    x = np.asarray(f(jax.random.key(2)))[..., 0]
    u = ~known
    sd = np.sqrt(np.diag(exp_cov)[u])
    assert np.abs(x[:, u].mean(0) - exp_mean[u]).max() < 4.5 * sd.max() / np.sqrt(3000)
    np.testing.assert_allclose(x[:, u].var(0), np.diag(exp_cov)[u], rtol=0.12)
    np.testing.assert_array_equal(x[:, known], np.broadcast_to(truth[known], (3000, 8)))


def test_resampling_approaches_the_conditional():
    # Exact propagation (no Monte-Carlo noise) of RePaint's output against the analytic
    # conditional: errors fall ~2x from U = 1 to U = 10; the remaining bias is RePaint's.
    schedule, cov, mu, _, truth, known, cond_mean, cond_cov = _gaussian_problem(100)
    u = ~known
    errors = {}
    for resample in (1, 10):
        levels = repaint_schedule(100, resample=resample, jump=1, plain_tail=10)
        m, P = _propagate(schedule, cov, mu, truth, known, levels)
        errors[resample] = (
            np.abs(m[u] - cond_mean).max(),
            np.abs(np.diag(P)[u] - np.diag(cond_cov)).max(),
        )
    (mean1, var1), (mean10, var10) = errors[1], errors[10]
    assert mean10 < 0.55 * mean1 and var10 < 0.55 * var1
    # Measured (max over the 8 unknown voxels; conditional shifts 0.17-1.10, sd 0.62-0.94):
    # U=1 mean 0.493 var 0.106; U=10 mean 0.189 var 0.053. Part of the variance error is the
    # 100-step DDPM's own discretization (0.072 on the unconditional covariance).
    np.testing.assert_allclose(
        [mean1, var1, mean10, var10], [0.493, 0.106, 0.189, 0.053], atol=0.002
    )


# float32 keeps its dtype under x64 (the default run); float64 adds the 1e-12 tolerance (slow).
@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.slow)])
def test_known_voxels_exact_jit_and_batch_independence(dtype):
    schedule, _, _, eps_fn, truth, _, _, _ = _gaussian_problem(20)
    rng = np.random.default_rng(3)
    masks = (rng.random((4, N, 1)) < 0.4).astype(dtype)  # a different mask per sample
    known = np.broadcast_to(truth[None, :, None], (4, N, 1)).astype(dtype)
    kw = {"resample": 3, "jump": 2, "plain_tail": 3}
    key = jax.random.key(4)
    eager = np.asarray(repaint_sample(key, eps_fn, schedule, known, masks, **kw))
    assert eager.dtype == dtype and np.all(np.isfinite(eager))
    np.testing.assert_array_equal(eager[masks == 1], known[masks == 1])
    jitted = jax.jit(lambda k, a, b: repaint_sample(k, eps_fn, schedule, a, b, **kw))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    # One compilation checks both: jitted on half the batch equals the eager full batch's half.
    np.testing.assert_allclose(jitted(key, known[:2], masks[:2]), eager[:2], atol=tol)
    holes = np.where(masks == 1, known, np.nan).astype(dtype)  # unknown voxels are never read
    fast = repaint_sample(key, eps_fn, schedule, holes, masks, num_steps=5, eta=0.0, **kw)
    assert np.all(np.isfinite(fast))
    np.testing.assert_array_equal(np.asarray(fast)[masks == 1], known[masks == 1])


def test_validation_errors():
    schedule, _, _, eps_fn, truth, known, _, _ = _gaussian_problem(10)
    known_b, mask_b = _batch(truth, known, 2)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="resample"):
        repaint_schedule(10, resample=0)
    with pytest.raises(ValueError, match="plain_tail"):
        repaint_schedule(10, plain_tail=-1)
    with pytest.raises(ValueError, match="num_steps"):
        repaint_schedule(10, num_steps=11)
    with pytest.raises(ValueError, match="mask"):
        repaint_sample(key, eps_fn, schedule, known_b, jnp.ones((3, N, 1)), plain_tail=2)
    with pytest.raises(ValueError, match="known"):
        repaint_sample(key, eps_fn, schedule, known_b.at[0, 0].set(jnp.nan), mask_b, plain_tail=2)
    with pytest.raises(ValueError, match="levels"):
        path_sample(key, eps_fn, schedule, known_b, np.array([10, 10, 0]))
    with pytest.raises(ValueError, match="known, mask"):
        path_sample(key, eps_fn, schedule, known_b, np.array([10, 0]), known=known_b)
