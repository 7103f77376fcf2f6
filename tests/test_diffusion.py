"""Tests of jaxmicro.diffusion: schedules, losses, DDPM/DDIM samplers, guidance."""

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.diffusion import (
    classifier_free_guidance,
    cosine_schedule,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    diffusion_loss,
    eps_from_output,
    linear_schedule,
    loss_terms,
    normal_kl,
    p_mean_variance,
    predict_eps,
    predict_x0,
    q_sample,
    v_target,
)

# Data distribution of the analytic tests: N(MEAN, COV) in 2 dimensions.
MEAN = np.array([0.5, -1.0])
_A = np.array([[1.0, 0.3], [0.0, 0.5]])
COV = _A @ _A.T


def gaussian_eps_fn(schedule):
    """Optimal noise predictor for Gaussian data: E[eps | x_t] in closed form."""

    def eps_fn(x, t):
        ab = schedule.alpha_bars[t][:, None]
        cov_t = ab[:, :, None] * COV + (1.0 - ab)[:, :, None] * jnp.eye(2)
        r = x - jnp.sqrt(ab) * MEAN
        return jnp.sqrt(1.0 - ab) * jnp.linalg.solve(cov_t, r[..., None])[..., 0]

    return eps_fn


@pytest.fixture(scope="module")
def sched():
    # T = 200 with betas scaled by 1000/T keeps alpha_bar[T-1] ~ 4e-5, as DDPM's T = 1000.
    return linear_schedule(200, 5e-4, 0.1)


# ----------------------------------------------------------------------------- schedules


def test_linear_schedule_identities():
    s = linear_schedule(50, 1e-3, 0.2)
    b = np.linspace(1e-3, 0.2, 50)
    ab = np.cumprod(1 - b)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    np.testing.assert_allclose(s.betas, b, rtol=1e-12)
    np.testing.assert_allclose(s.alpha_bars, ab, rtol=1e-12)
    np.testing.assert_allclose(s.alpha_bars_prev, ab_prev, rtol=1e-12)
    var = b * (1 - ab_prev) / (1 - ab)
    np.testing.assert_allclose(s.posterior_variance, var, rtol=1e-12)
    np.testing.assert_allclose(s.posterior_log_variance_clipped[1:], np.log(var[1:]), rtol=1e-12)
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    assert s.num_steps == 50 and s.alpha_bars_prev[0] == 1.0
    # For a noiseless x_t = sqrt(ab_t) x0 the posterior mean is sqrt(ab_{t-1}) x0.
    np.testing.assert_allclose(
        s.posterior_mean_coef1 + s.posterior_mean_coef2 * np.sqrt(ab),
        np.sqrt(ab_prev),
        rtol=1e-10,
    )


def test_cosine_schedule_matches_formula():
    T, s_ = 100, 0.008
    s = cosine_schedule(T, s_)
    f = np.cos((np.arange(T + 1) / T + s_) / (1 + s_) * np.pi / 2) ** 2
    ab = np.cumprod(np.minimum(1 - f[1:] / f[:-1], 0.999) * -1 + 1)
    np.testing.assert_allclose(s.alpha_bars, ab, rtol=1e-10)
    np.testing.assert_allclose(s.alpha_bars[:-1], (f[1:] / f[0])[:-1], rtol=1e-8)


def test_schedule_validation():
    with pytest.raises(ValueError, match="num_steps"):
        linear_schedule(1)
    with pytest.raises(ValueError, match="beta_start"):
        linear_schedule(10, 0.1, 0.01)
    with pytest.raises(ValueError, match="s:"):
        cosine_schedule(10, -1.0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_q_sample_round_trip_and_dtype(sched, dtype):
    key = jax.random.key(0)
    x0 = jax.random.normal(key, (3, 4, 4, 2), dtype)
    noise = jax.random.normal(jax.random.fold_in(key, 1), x0.shape, dtype)
    t = jnp.array([0, 50, 199])
    xt = q_sample(sched, x0, t, noise)
    assert xt.dtype == dtype and xt.shape == x0.shape
    tol = 1e-5 if dtype == jnp.float32 else 1e-10
    np.testing.assert_allclose(predict_x0(sched, xt, t, noise), x0, atol=tol * 100)
    np.testing.assert_allclose(predict_eps(sched, xt, t, x0), noise, atol=tol)
    ab = np.asarray(sched.alpha_bars)[np.asarray(t)][:, None, None, None]
    np.testing.assert_allclose(xt, np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise, atol=tol)


def test_v_parameterization_identity(sched):
    key = jax.random.key(1)
    x0 = jax.random.normal(key, (4, 3))
    noise = jax.random.normal(jax.random.fold_in(key, 1), (4, 3))
    t = jnp.array([0, 10, 100, 199])
    xt = q_sample(sched, x0, t, noise)
    v = v_target(sched, x0, t, noise)
    np.testing.assert_allclose(
        eps_from_output(sched, xt, t, v, parameterization="v"), noise, atol=1e-12
    )


# ----------------------------------------------------------------------------- samplers


def test_ddim_timesteps():
    for spacing in ("uniform", "quadratic"):
        for T, S in [(1000, 50), (200, 7), (20, 20), (1000, 999)]:
            ts = ddim_timesteps(T, S, spacing)
            assert ts.shape == (S,) and ts[0] == 0 and ts[-1] == T - 1
            assert np.all(np.diff(ts) > 0)
    q = ddim_timesteps(1000, 10, "quadratic")
    assert q[1] - q[0] < q[-1] - q[-2]  # dense near t = 0
    with pytest.raises(ValueError, match="num_steps"):
        ddim_timesteps(10, 11)
    with pytest.raises(ValueError, match="spacing"):
        ddim_timesteps(10, 5, "cubic")


def _assert_gaussian_moments(x, n_sigma=4.0):
    """Sample mean and covariance of x (N, 2) agree with MEAN, COV within n_sigma MC errors."""
    n = x.shape[0]
    x = np.asarray(x)
    se_mean = np.sqrt(np.diag(COV) / n)
    assert np.all(np.abs(x.mean(0) - MEAN) < n_sigma * se_mean), (x.mean(0), MEAN)
    # Standard error of a sample covariance entry: sqrt((C_ii C_jj + C_ij^2) / n).
    se_cov = np.sqrt((np.outer(np.diag(COV), np.diag(COV)) + COV**2) / n)
    assert np.all(np.abs(np.cov(x.T) - COV) < n_sigma * se_cov), (np.cov(x.T), COV)


def test_ddpm_reproduces_gaussian_moments():
    # T = 1000: with fewer steps the fixed 'small' variance visibly shrinks the sample variance
    # (about -7% at T = 200 for this data; -1.6% at T = 1000, inside the MC error here).
    s = linear_schedule(1000)
    x = jax.jit(lambda k: ddpm_sample(k, gaussian_eps_fn(s), s, (2,), num_samples=4000))(
        jax.random.key(0)
    )
    assert x.shape == (4000, 2) and x.dtype == s.betas.dtype
    _assert_gaussian_moments(x)


def test_ddim_moments_and_convergence(sched):
    eps_fn = gaussian_eps_fn(sched)
    key = jax.random.key(3)

    @jax.jit
    def run():
        steps = (5, 10, 25, 50, 200)
        return [ddim_sample(key, eps_fn, sched, (2,), num_samples=4000, num_steps=s) for s in steps]

    x5, x10, x25, x50, ref = run()
    _assert_gaussian_moments(ref)
    # Few DDIM steps shrink the covariance (discretization error of the ODE): it shrinks with S.
    cov_errs = [np.linalg.norm(np.cov(np.asarray(x).T) - COV) for x in (x5, x10, x25, x50)]
    assert all(a > b for a, b in zip(cov_errs, cov_errs[1:], strict=False)), cov_errs
    # Same starting noise: the distance to the full-trajectory solution shrinks with steps.
    errs = [float(jnp.sqrt(jnp.mean((x - ref) ** 2))) for x in (x5, x10, x25, x50)]
    assert all(a > 1.5 * b for a, b in zip(errs, errs[1:], strict=False)), errs
    assert errs[-1] < 0.03, errs


def test_ddim_eta0_deterministic_and_batch_independent(sched):
    eps_fn = gaussian_eps_fn(sched)
    a = ddim_sample(jax.random.key(5), eps_fn, sched, (2,), num_samples=6, num_steps=10)
    b = ddim_sample(jax.random.key(5), eps_fn, sched, (2,), num_samples=6, num_steps=10)
    c = ddim_sample(jax.random.key(5), eps_fn, sched, (2,), num_samples=3, num_steps=10)
    d = ddim_sample(jax.random.key(6), eps_fn, sched, (2,), num_samples=6, num_steps=10)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[:3], c, rtol=1e-12)
    assert not np.allclose(a, d)


def test_ddim_eta1_full_trajectory_equals_ddpm(sched):
    eps_fn = gaussian_eps_fn(sched)
    a = ddim_sample(jax.random.key(7), eps_fn, sched, (2,), num_samples=5, num_steps=200, eta=1.0)
    b = ddpm_sample(jax.random.key(7), eps_fn, sched, (2,), num_samples=5)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_sampler_jit_equals_eager_float32():
    s = linear_schedule(20, 5e-3, 0.5, dtype=jnp.float32)

    def eps_fn(x, t):
        return 0.1 * x * (1 + t[:, None, None, None] / 20)

    f = lambda k: ddim_sample(k, eps_fn, s, (4, 4, 1), num_samples=2, num_steps=5, eta=0.5)  # noqa: E731
    with jax.disable_jit():  # op by op, the scan as a Python loop
        eager = f(jax.random.key(0))
    plain, jitted = f(jax.random.key(0)), jax.jit(f)(jax.random.key(0))
    assert eager.dtype == jnp.float32 and eager.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(plain, eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)
    g = lambda k: ddpm_sample(k, eps_fn, s, (4, 4, 1), num_samples=2, clip_x0=(-1, 1))  # noqa: E731
    with jax.disable_jit():
        eager = g(jax.random.key(1))
    np.testing.assert_allclose(g(jax.random.key(1)), eager, atol=1e-5)
    np.testing.assert_allclose(jax.jit(g)(jax.random.key(1)), eager, atol=1e-5)


def test_plain_sampler_calls_compile_once_per_denoiser():
    """A second plain call with the same ``eps_fn`` reuses the compiled kernel (no trace); a new
    ``eps_fn``, a new setting or a transformation traces again, and gradients reach parameters
    that ``eps_fn`` closes over."""
    s = linear_schedule(20, 5e-3, 0.5, dtype=jnp.float32)
    traces = []

    def eps_fn(x, t):
        traces.append(1)
        return 0.1 * x

    run = lambda k, f=eps_fn, eta=0.0: ddim_sample(  # noqa: E731
        k, f, s, (4, 4, 1), num_samples=2, num_steps=5, eta=eta
    )
    first = run(jax.random.key(0))
    assert len(traces) == 1
    second = run(jax.random.key(1))
    assert len(traces) == 1 and not np.allclose(first, second)
    run(jax.random.key(0), eta=0.5)  # eta > 0 is another setting: one more trace
    run(jax.random.key(0), eta=0.7)  # eta's value is not static
    assert len(traces) == 2
    run(jax.random.key(0), f=lambda x, t: eps_fn(x, t))  # another denoiser object
    assert len(traces) == 3

    def loss(scale):  # eps_fn closes over a tracer of grad: the kernel is traced inline
        return jnp.sum(run(jax.random.key(0), f=lambda x, t: scale * x))

    grad = jax.grad(loss)(0.1)
    step = 1e-3
    fd = (loss(0.1 + step) - loss(0.1 - step)) / (2 * step)
    np.testing.assert_allclose(grad, fd, rtol=2e-2)
    with pytest.raises(ValueError, match="eta"):
        run(jax.random.key(0), eta=float("nan"))


def test_plain_calls_keep_no_denoiser_alive():
    """The compiled-kernel cache holds denoisers weakly: once the caller drops ``eps_fn`` (or the
    instance of a bound-method denoiser, called twice through fresh bound-method objects), it
    and the parameters it closes over are freed."""
    s = linear_schedule(20, 5e-3, 0.5, dtype=jnp.float32)

    class Model:
        def __init__(self):
            self.weight = jnp.full((4, 4, 1), 0.1, jnp.float32)
            self.traces = 0

        def eps(self, x, t):
            self.traces += 1
            return self.weight * x

    def closure_over(weight):
        return lambda x, t: weight * x

    weight = jnp.full((4, 4, 1), 0.2, jnp.float32)
    eps_fn = closure_over(weight)
    model = Model()
    for denoiser in (eps_fn, model.eps, model.eps):
        ddim_sample(jax.random.key(0), denoiser, s, (4, 4, 1), num_samples=2, num_steps=5)
    assert model.traces == 1  # a new bound-method object of the same model reuses the kernel
    refs = [weakref.ref(x) for x in (eps_fn, weight, model, model.weight)]
    del eps_fn, weight, model, denoiser
    gc.collect()
    assert [r() for r in refs] == [None] * 4


def test_learned_variance_sampling(sched):
    """v = -1 is the small (posterior) variance, v = +1 the large one (beta_t)."""
    base = gaussian_eps_fn(sched)

    def with_v(value):
        return lambda x, t: jnp.concatenate([base(x, t), jnp.full_like(x, value)], axis=-1)

    key = jax.random.key(9)
    small = ddpm_sample(key, base, sched, (2,), num_samples=4, variance="small")
    large = ddpm_sample(key, base, sched, (2,), num_samples=4, variance="large")
    np.testing.assert_allclose(
        ddpm_sample(key, with_v(-1.0), sched, (2,), num_samples=4, learned_variance=True),
        small,
        atol=1e-10,
    )
    np.testing.assert_allclose(
        ddpm_sample(key, with_v(1.0), sched, (2,), num_samples=4, learned_variance=True),
        large,
        atol=1e-10,
    )
    ddim = ddim_sample(
        key, with_v(0.3), sched, (2,), num_samples=4, num_steps=10, learned_variance=True
    )
    np.testing.assert_allclose(
        ddim, ddim_sample(key, base, sched, (2,), num_samples=4, num_steps=10), atol=1e-12
    )
    with pytest.raises(ValueError, match="variance"):
        ddpm_sample(key, base, sched, (2,), num_samples=4, variance="huge")
    with pytest.raises(ValueError, match="learned_variance=True"):
        ddpm_sample(key, with_v(0.3), sched, (2,), num_samples=4, variance="learned")


def test_clip_x0_bounds_the_estimate(sched):
    x_t = jnp.full((2, 3), 5.0)
    t = jnp.array([150, 150])
    _, _, x0, eps = p_mean_variance(sched, x_t, t, jnp.zeros_like(x_t), clip_x0=(-1.0, 1.0))
    np.testing.assert_allclose(x0, 1.0)
    np.testing.assert_allclose(predict_x0(sched, x_t, t, eps), 1.0, atol=1e-12)


def test_classifier_free_guidance():
    def cond(x, t):
        return x + 1.0

    def uncond(x, t):
        return 2.0 * x

    x, t = jnp.arange(6.0).reshape(3, 2), jnp.zeros(3, int)
    np.testing.assert_allclose(classifier_free_guidance(cond, uncond, 0.0)(x, t), uncond(x, t))
    np.testing.assert_allclose(classifier_free_guidance(cond, uncond, 1.0)(x, t), cond(x, t))
    np.testing.assert_allclose(
        classifier_free_guidance(cond, uncond, 3.0)(x, t), 2 * x + 3 * (1 - x)
    )
    g = classifier_free_guidance(cond, uncond, 3.0, learned_variance=True)(x, t)
    np.testing.assert_allclose(g[:, :1], 2 * x[:, :1] + 3 * (1 - x[:, :1]))
    np.testing.assert_allclose(g[:, 1:], cond(x, t)[:, 1:])


def test_sampler_validation(sched):
    f = gaussian_eps_fn(sched)
    with pytest.raises(ValueError, match="num_samples"):
        ddpm_sample(jax.random.key(0), f, sched, (2,), num_samples=0)
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(jax.random.key(0), f, sched, (2,), num_samples=2, num_steps=5, eta=-1.0)


# ----------------------------------------------------------------------------- losses


def _numpy_hybrid(betas, x0, t, noise, out, lam):
    """Independent float64 NumPy evaluation of L_simple + lam * T * L_t (bits/dim)."""
    T = betas.size
    alphas = 1 - betas
    ab = np.cumprod(alphas)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    var = betas * (1 - ab_prev) / (1 - ab)
    logvar_clip = np.log(np.concatenate([var[1:2], var[1:]]))
    losses = []
    for i in range(x0.shape[0]):
        s = t[i]
        eps_pred, v = np.split(out[i], 2, axis=-1)
        xt = np.sqrt(ab[s]) * x0[i] + np.sqrt(1 - ab[s]) * noise[i]
        simple = np.mean((eps_pred - noise[i]) ** 2)
        x0_pred = (xt - np.sqrt(1 - ab[s]) * eps_pred) / np.sqrt(ab[s])
        c1 = betas[s] * np.sqrt(ab_prev[s]) / (1 - ab[s])
        c2 = (1 - ab_prev[s]) * np.sqrt(alphas[s]) / (1 - ab[s])
        mu_q, mu_p = c1 * x0[i] + c2 * xt, c1 * x0_pred + c2 * xt
        frac = (v + 1) / 2
        lv_p = frac * np.log(betas[s]) + (1 - frac) * logvar_clip[s]
        lv_q = logvar_clip[s]
        if s == 0:
            nats = 0.5 * (np.log(2 * np.pi) + lv_p + (x0[i] - mu_p) ** 2 / np.exp(lv_p))
        else:
            nats = 0.5 * (lv_p - lv_q + np.exp(lv_q - lv_p) + (mu_q - mu_p) ** 2 / np.exp(lv_p) - 1)
        losses.append(simple + lam * T * np.mean(nats) / np.log(2))
    return np.array(losses)


def test_hybrid_loss_matches_numpy():
    betas = np.linspace(1e-3, 0.2, 40)
    s = linear_schedule(40, 1e-3, 0.2)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (5, 3, 3, 2))
    noise = rng.normal(size=x0.shape)
    out = np.concatenate([rng.normal(size=x0.shape), rng.uniform(-1, 1, x0.shape)], -1)
    t = np.array([0, 1, 7, 20, 39])
    got, terms = loss_terms(
        s,
        jnp.asarray(x0),
        jnp.asarray(t),
        jnp.asarray(noise),
        jnp.asarray(out),
        loss="hybrid",
        lambda_vlb=0.001,
    )
    np.testing.assert_allclose(got, _numpy_hybrid(betas, x0, t, noise, out, 0.001), rtol=1e-10)
    assert terms["vb"].shape == (5,)


def test_hybrid_vb_trains_only_the_variance():
    s = linear_schedule(40, 1e-3, 0.2)
    rng = np.random.default_rng(1)
    x0, noise = rng.normal(size=(4, 6, 1)), rng.normal(size=(4, 6, 1))
    t = jnp.array([0, 3, 10, 30])
    out = jnp.asarray(rng.normal(size=(4, 6, 2)))

    def total(o):
        return jnp.sum(loss_terms(s, x0, t, noise, o, loss="hybrid")[0])

    def simple(o):
        return jnp.sum(loss_terms(s, x0, t, noise, o[..., :1], loss="l2")[0])

    g, g_simple = jax.grad(total)(out), jax.grad(simple)(out)
    np.testing.assert_allclose(g[..., :1], g_simple[..., :1], atol=1e-12)
    assert np.all(np.abs(g[..., 1:]) > 0)


def test_l1_l2_and_v_losses():
    s = linear_schedule(30, 1e-3, 0.3)
    rng = np.random.default_rng(2)
    x0, noise, out = (rng.normal(size=(3, 4, 1)) for _ in range(3))
    t = jnp.array([0, 5, 29])
    l1, _ = loss_terms(s, x0, t, noise, out, loss="l1")
    l2, _ = loss_terms(s, x0, t, noise, out, loss="l2")
    np.testing.assert_allclose(l1, np.abs(out - noise).mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(l2, ((out - noise) ** 2).mean(axis=(1, 2)), rtol=1e-12)
    lv, _ = loss_terms(s, x0, t, noise, v_target(s, x0, t, noise), parameterization="v")
    np.testing.assert_allclose(lv, 0.0, atol=1e-24)
    with pytest.raises(ValueError, match="loss"):
        loss_terms(s, x0, t, noise, out, loss="huber")
    with pytest.raises(ValueError, match="out"):
        loss_terms(s, x0, t, noise, out, loss="hybrid")


def test_diffusion_loss_optimal_denoiser_and_batch_prefix(sched):
    x0 = jnp.asarray(np.random.default_rng(3).multivariate_normal(MEAN, COV, 400))
    f = gaussian_eps_fn(sched)
    loss, m = diffusion_loss(jax.random.key(0), f, sched, x0)
    zero, _ = diffusion_loss(jax.random.key(0), lambda x, t: jnp.zeros_like(x), sched, x0)
    assert set(m) == {"simple"}
    # Predicting zero costs E|eps|^2 / d = 1; the exact posterior mean of eps costs much less.
    assert abs(float(zero) - 1.0) < 0.15 and float(loss) < 0.5 * float(zero)
    # Sample i draws from split(key, B)[i], which does not depend on B: prefixes agree.
    seen = []

    def spy(x, t):
        seen.append(t)
        return jnp.zeros_like(x)

    diffusion_loss(jax.random.key(4), spy, sched, x0[:3])
    diffusion_loss(jax.random.key(4), spy, sched, x0[:8])
    np.testing.assert_array_equal(seen[0], seen[1][:3])


def test_normal_kl_gradients_and_zero():
    from jax.test_util import check_grads

    a = (
        jnp.array([0.3, -1.0]),
        jnp.array([0.1, -0.5]),
        jnp.array([0.0, 2.0]),
        jnp.array([0.4, 0.2]),
    )
    np.testing.assert_allclose(normal_kl(a[0], a[1], a[0], a[1]), 0.0, atol=1e-15)
    check_grads(normal_kl, a, order=2, modes=("fwd", "rev"))
