"""Ancestral (DDPM) and implicit (DDIM) samplers over a denoiser ``eps_fn(x, t)``.

``eps_fn`` maps ``x: (B, *shape)`` and integer steps ``t: (B,)`` to the predicted noise (shape of
``x``; ``2C`` channels for learned-variance models). Conditions and guidance enter by wrapping it
(e.g. ``classifier_free_guidance``). Both samplers run in one ``lax.scan`` and can be jitted end to
end (``shape``, ``num_samples``, ``num_steps`` and the string options are static). A plain call
compiles once per ``eps_fn`` object and setting and then runs at the speed of ``jax.jit``
(``jaxmicro.diffusion._compiled``); ``eps_fn`` must therefore be pure.

Randomness: sample ``i`` uses ``k_i = split(key, num_samples)[i]``; its starting noise is drawn from
``fold_in(k_i, T)`` and the noise added when leaving step ``t`` from ``fold_in(k_i, t)``. So a
sample does not depend on the number of samples, and DDIM with ``eta = 1`` over all ``T`` steps
reproduces DDPM with ``variance='small'`` draw for draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro.diffusion import _compiled
from jaxmicro.diffusion.posterior import check_variance, p_mean_variance
from jaxmicro.diffusion.schedule import Schedule

__all__ = [
    "ddpm_sample",
    "ddim_sample",
    "ddim_timesteps",
    "classifier_free_guidance",
]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


def _sample_keys(key, num_samples: int):
    return jax.random.split(key, num_samples)


def _normal(keys, step, shape, dtype):
    return jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, step), shape, dtype))(keys)


def _static_bounds(clip_x0) -> tuple[float, float] | None:
    """``clip_x0`` as a hashable pair of floats (a static option of the compiled kernel)."""
    if clip_x0 is None:
        return None
    low, high = (float(v) for v in clip_x0)
    return low, high


def _check(shape, num_samples, schedule):
    if num_samples < 1:
        raise ValueError(f"num_samples: expected a positive sample count, got {num_samples}")
    if len(tuple(shape)) == 0:
        raise ValueError("shape: expected the per-sample shape (*spatial, C), got ()")
    if schedule.betas.ndim != 1:
        raise ValueError(
            f"schedule: expected (T,) arrays, got betas of shape {schedule.betas.shape}"
        )


def ddpm_sample(
    key: jax.Array,
    eps_fn: EpsFn,
    schedule: Schedule,
    shape: Sequence[int],
    *,
    num_samples: int,
    variance: str = "small",
    learned_variance: bool = False,
    clip_x0: tuple[float, float] | None = None,
) -> jax.Array:
    """Ancestral sampling through all ``T`` steps of ``p(x_{t-1} | x_t)``.

    Args:
        key: PRNG key.
        eps_fn: denoiser; returns ``2C`` channels when ``learned_variance``.
        schedule: the diffusion schedule (its dtype is the sample dtype).
        shape: per-sample shape ``(*spatial, C)``.
        num_samples: number of samples.
        variance: the fixed variance, ``'small'`` (posterior variance) or ``'large'``
            (``beta_t``); unused when ``learned_variance``.
        learned_variance: ``eps_fn`` returns ``2C`` channels and the second half sets the
            variance (Nichol & Dhariwal eq. 15).
        clip_x0: optional ``(low, high)`` bounds on the ``x_0`` estimate at every step.

    Returns:
        ``(num_samples, *shape)`` samples ``x_0``.

    References:
        Ho, Jain, Abbeel (2020), Algorithm 2; Nichol & Dhariwal (2021), §3.1; Lee & Yun eq. 6;
        Buzzy et al. eq. 8.
    """
    _check(shape, num_samples, schedule)
    check_variance(variance)
    options = dict(
        shape=tuple(int(n) for n in shape),
        num_samples=int(num_samples),
        variance=variance,
        learned_variance=bool(learned_variance),
        clip_x0=_static_bounds(clip_x0),
    )
    return _compiled.call(_ddpm, eps_fn, options, key, schedule)


def _ddpm(eps_fn, key, schedule, *, shape, num_samples, variance, learned_variance, clip_x0):
    T, dtype = schedule.num_steps, schedule.betas.dtype
    keys = _sample_keys(key, num_samples)

    def step(x, t):
        tb = jnp.full((num_samples,), t)
        out = eps_fn(x, tb).astype(dtype)
        mean, logvar, _, _ = p_mean_variance(
            schedule,
            x,
            tb,
            out,
            variance=variance,
            learned_variance=learned_variance,
            clip_x0=clip_x0,
        )
        noise = _normal(keys, t, shape, dtype)
        return mean + jnp.where(t > 0, jnp.exp(0.5 * logvar), 0.0) * noise, None

    x, _ = jax.lax.scan(step, _normal(keys, T, shape, dtype), jnp.arange(T - 1, -1, -1))
    return x


def ddim_timesteps(num_train_steps: int, num_steps: int, spacing: str = "uniform") -> np.ndarray:
    """Increasing sub-trajectory ``0 = tau_1 < ... < tau_S = T - 1`` of the training steps.

    Args:
        num_train_steps: ``T``.
        num_steps: ``S``, with ``2 <= S <= T``.
        spacing: ``'uniform'`` (``tau_i`` linear in ``i``) or ``'quadratic'`` (``tau_i`` quadratic
            in ``i``: dense near ``t = 0``, where the detail forms).

    Returns:
        ``(S,)`` int32 NumPy array.

    References:
        Song, Meng, Ermon (2021), §4.2 and appendix D.2; Lee & Yun §2.1.2 (sub-trajectories).
    """
    T, S = int(num_train_steps), int(num_steps)
    if not 2 <= S <= T:
        raise ValueError(f"num_steps: expected 2 <= num_steps <= {T}, got {S}")
    if spacing == "uniform":
        raw = np.linspace(0.0, T - 1, S)
    elif spacing == "quadratic":
        raw = np.linspace(0.0, np.sqrt(T - 1), S) ** 2
    else:
        raise ValueError(f"spacing: expected 'uniform' or 'quadratic', got {spacing!r}")
    ts = np.round(raw).astype(np.int64)
    # Rounding can merge neighbours near 0: push them apart, then pull back from T - 1.
    ts = np.maximum(ts, np.arange(S))
    ts = np.minimum(ts, T - S + np.arange(S))
    for i in range(1, S):
        ts[i] = max(ts[i], ts[i - 1] + 1)
    return ts.astype(np.int32)


def ddim_sample(
    key: jax.Array,
    eps_fn: EpsFn,
    schedule: Schedule,
    shape: Sequence[int],
    *,
    num_samples: int,
    num_steps: int,
    eta: float = 0.0,
    spacing: str = "uniform",
    learned_variance: bool = False,
    clip_x0: tuple[float, float] | None = None,
) -> jax.Array:
    """DDIM sampling along a sub-trajectory of ``num_steps`` steps.

    Each step from ``t`` to the previous sub-trajectory step ``s`` (``alpha_bar = 1`` after the
    last) sets ``x_s = sqrt(ab_s) x0 + sqrt(1 - ab_s - sigma^2) eps + sigma z`` with
    ``sigma = eta sqrt((1 - ab_s) / (1 - ab_t)) sqrt(1 - ab_t / ab_s)``; ``eta = 0`` is
    deterministic given the starting noise, ``eta = 1`` is DDPM-like.

    Args:
        key: PRNG key.
        eps_fn: denoiser.
        schedule: the diffusion schedule.
        shape: per-sample shape ``(*spatial, C)``.
        num_samples: number of samples.
        num_steps: length of the sub-trajectory.
        eta: stochasticity, ``>= 0``.
        spacing: ``'uniform'`` or ``'quadratic'`` (see ``ddim_timesteps``).
        learned_variance: ``eps_fn`` returns ``2C`` channels; the variance half is ignored.
        clip_x0: optional ``(low, high)`` bounds on the ``x_0`` estimate.

    Returns:
        ``(num_samples, *shape)`` samples ``x_0``.

    References:
        Song, Meng, Ermon (2021), eq. 12 and eq. 16; Lee & Yun eq. 17.
    """
    _check(shape, num_samples, schedule)
    if not isinstance(eta, jax.core.Tracer) and not eta >= 0:
        raise ValueError(f"eta: expected a non-negative value, got {eta}")
    T = schedule.num_steps
    ts = ddim_timesteps(T, num_steps, spacing)
    prev = np.concatenate([[-1], ts[:-1]]).astype(np.int32)
    options = dict(
        shape=tuple(int(n) for n in shape),
        num_samples=int(num_samples),
        stochastic=isinstance(eta, jax.core.Tracer) or bool(eta > 0),
        learned_variance=bool(learned_variance),
        clip_x0=_static_bounds(clip_x0),
        pairs=tuple(zip(ts[::-1].tolist(), prev[::-1].tolist(), strict=True)),
    )
    return _compiled.call(_ddim, eps_fn, options, key, schedule, eta)


def _ddim(
    eps_fn, key, schedule, eta, *, shape, num_samples, stochastic, learned_variance, clip_x0, pairs
):
    T, dtype = schedule.num_steps, schedule.betas.dtype
    keys = _sample_keys(key, num_samples)
    ab_all = schedule.alpha_bars.astype(dtype)

    def step(x, ts_pair):
        t, s = ts_pair[0], ts_pair[1]
        tb = jnp.full((num_samples,), t)
        out = eps_fn(x, tb).astype(dtype)
        out = out[..., : shape[-1]] if learned_variance else out
        _, _, x0, eps = p_mean_variance(schedule, x, tb, out, clip_x0=clip_x0)
        ab_t = ab_all[t]
        ab_s = jnp.where(s >= 0, ab_all[jnp.maximum(s, 0)], jnp.ones((), dtype))
        sigma = eta * jnp.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
        direction = jnp.sqrt(jnp.maximum(1.0 - ab_s - sigma**2, 0.0)) * eps
        x_s = jnp.sqrt(ab_s) * x0 + direction
        if stochastic:
            x_s = x_s + sigma * _normal(keys, t, shape, dtype)
        return x_s, None

    x, _ = jax.lax.scan(step, _normal(keys, T, shape, dtype), jnp.asarray(pairs, jnp.int32))
    return x


def classifier_free_guidance(
    eps_cond_fn: EpsFn, eps_uncond_fn: EpsFn, scale: float, *, learned_variance: bool = False
) -> EpsFn:
    """Denoiser ``eps_u + scale (eps_c - eps_u)`` of classifier-free guidance.

    ``scale = 1`` is the conditional model, ``scale = 0`` the unconditional one, ``scale > 1``
    sharpens the condition.

    Args:
        eps_cond_fn: conditional denoiser ``(x, t) -> eps``.
        eps_uncond_fn: unconditional denoiser (e.g. the same network with null tokens).
        scale: guidance weight.
        learned_variance: outputs carry ``2C`` channels; only the noise half is guided and the
            variance half is the conditional one.

    Returns:
        The guided denoiser ``(x, t) -> eps``.

    References:
        Ho & Salimans (2022), eq. 6 (with ``scale = 1 + w``).
    """

    def eps_fn(x, t):
        ec, eu = eps_cond_fn(x, t), eps_uncond_fn(x, t)
        if not learned_variance:
            return eu + scale * (ec - eu)
        c = ec.shape[-1] // 2
        guided = eu[..., :c] + scale * (ec[..., :c] - eu[..., :c])
        return jnp.concatenate([guided, ec[..., c:]], axis=-1)

    return eps_fn
