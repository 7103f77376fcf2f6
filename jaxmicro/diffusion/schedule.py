"""Noise schedules of discrete-time diffusion and the forward (noising) process.

A ``Schedule`` holds every per-step constant of a diffusion with ``T`` steps as arrays of shape
``(T,)``, indexed by ``t = 0 .. T-1`` with ``t = 0`` the least noisy step. It is a NamedTuple, hence
a pytree: it can be passed through ``jit``/``vmap`` as an ordinary argument, and ``num_steps`` stays
static because it is read from an array shape.

With ``alpha_bar[t] = prod_{s<=t} (1 - beta_s)``, the forward process is
``q(x_t | x_0) = N(sqrt(alpha_bar[t]) x_0, (1 - alpha_bar[t]) I)`` and the posterior
``q(x_{t-1} | x_t, x_0) = N(coef1[t] x_0 + coef2[t] x_t, posterior_variance[t] I)``.

The constants are computed in float64 NumPy and stored in the default float dtype (or
``dtype``); the functions below cast the gathered constants to the dtype of ``x``, so float32 data
stays float32.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Schedule",
    "schedule_from_betas",
    "linear_schedule",
    "cosine_schedule",
    "zero_terminal_snr",
    "q_sample",
    "predict_x0",
    "predict_eps",
    "extract",
]


class Schedule(NamedTuple):
    """Per-step constants of a discrete diffusion; every field has shape ``(T,)``.

    Attributes:
        betas: variances ``beta_t`` of the forward steps.
        alphas: ``1 - beta_t``.
        alpha_bars: cumulative products ``prod_{s<=t} alpha_s``.
        alpha_bars_prev: ``alpha_bars`` shifted right by one, with ``alpha_bars_prev[0] = 1``.
        posterior_variance: ``beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)`` (0 at t = 0).
        posterior_log_variance_clipped: its log, with the t = 0 entry replaced by the t = 1 entry
            (the variance is 0 there).
        posterior_mean_coef1: coefficient of ``x_0`` in the posterior mean.
        posterior_mean_coef2: coefficient of ``x_t`` in the posterior mean.

    References:
        Ho, Jain, Abbeel (2020), eqs. 4, 6, 7; Lee & Yun, ddpm-ddim-mcr §2.1 eqs. 1-6.
    """

    betas: jax.Array
    alphas: jax.Array
    alpha_bars: jax.Array
    alpha_bars_prev: jax.Array
    posterior_variance: jax.Array
    posterior_log_variance_clipped: jax.Array
    posterior_mean_coef1: jax.Array
    posterior_mean_coef2: jax.Array

    @property
    def num_steps(self) -> int:
        """Number of diffusion steps ``T`` (static: read from the array shape)."""
        return int(self.betas.shape[0])


def schedule_from_betas(betas, *, dtype=None) -> Schedule:
    """Builds a ``Schedule`` from the forward variances.

    Args:
        betas: ``(T,)`` values in (0, 1); the last one may be 1 (zero terminal SNR,
            ``alpha_bar[T-1] = 0``; see ``zero_terminal_snr``).
        dtype: float dtype of the stored arrays (default: JAX's default float dtype).

    Returns:
        The ``Schedule``.

    References:
        Ho, Jain, Abbeel (2020), eqs. 6-7; Nichol & Dhariwal (2021), §2 (clipped log variance).
    """
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or b.size < 2:
        raise ValueError(f"betas: expected a 1-D array of at least 2 steps, got shape {b.shape}")
    if not (np.all((b > 0) & (b < 1)) or (np.all((b[:-1] > 0) & (b[:-1] < 1)) and b[-1] == 1)):
        raise ValueError(
            "betas: values must lie in the open interval (0, 1) (the last one may be 1)"
        )
    alphas = 1.0 - b
    ab = np.cumprod(alphas)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    post_var = b * (1.0 - ab_prev) / (1.0 - ab)
    post_logvar = np.log(np.concatenate([post_var[1:2], post_var[1:]]))
    coef1 = b * np.sqrt(ab_prev) / (1.0 - ab)
    coef2 = (1.0 - ab_prev) * np.sqrt(alphas) / (1.0 - ab)
    dtype = jnp.result_type(float) if dtype is None else dtype
    fields = (b, alphas, ab, ab_prev, post_var, post_logvar, coef1, coef2)
    return Schedule(*(jnp.asarray(f, dtype=dtype) for f in fields))


def linear_schedule(
    num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02, *, dtype=None
) -> Schedule:
    """Linearly spaced ``beta_t`` from ``beta_start`` to ``beta_end`` (inclusive).

    The defaults are DDPM's for ``T = 1000``; for other ``T`` pass scaled bounds
    (e.g. ``1000 / T`` times) to keep ``alpha_bar[T-1]`` near zero.

    References:
        Ho, Jain, Abbeel (2020), §4; Lee & Yun, ddpm-ddim-mcr §2.1.
    """
    if int(num_steps) < 2:
        raise ValueError(f"num_steps: expected an integer >= 2, got {num_steps}")
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(
            f"beta_start, beta_end: expected 0 < beta_start <= beta_end < 1, "
            f"got {beta_start}, {beta_end}"
        )
    return schedule_from_betas(np.linspace(beta_start, beta_end, int(num_steps)), dtype=dtype)


def cosine_schedule(num_steps: int, s: float = 0.008, *, dtype=None) -> Schedule:
    """Cosine schedule: ``alpha_bar(t) = f(t)/f(0)``, ``f(t) = cos^2((t/T + s)/(1 + s) pi/2)``.

    ``beta_t = 1 - alpha_bar(t+1)/alpha_bar(t)``, clipped at 0.999 to avoid the singularity at the
    last step.

    References:
        Nichol & Dhariwal (2021), eq. 17; Lee & Yun, ddpm-ddim-mcr §2.1.
    """
    if int(num_steps) < 2:
        raise ValueError(f"num_steps: expected an integer >= 2, got {num_steps}")
    if s < 0:
        raise ValueError(f"s: expected a non-negative offset, got {s}")
    T = int(num_steps)
    f = np.cos((np.arange(T + 1, dtype=np.float64) / T + s) / (1 + s) * np.pi / 2) ** 2
    betas = np.clip(1.0 - f[1:] / f[:-1], 1e-12, 0.999)
    return schedule_from_betas(betas, dtype=dtype)


def zero_terminal_snr(betas) -> np.ndarray:
    """Rescales ``betas`` so that the last step is pure noise (``alpha_bar[T-1] = 0``).

    ``sqrt(alpha_bar)`` is shifted to end at 0 and scaled to keep its first value; the betas are
    recovered from the ratios of consecutive ``alpha_bar``, so the last one is exactly 1. For
    GrainPaint's schedule (``T = 250``, linear ``1e-4 -> 0.02``) the unscaled ``alpha_bar[T-1]``
    is 0.080: the start of sampling, ``N(0, I)``, is not the level the network was trained at.

    At ``alpha_bar = 0`` a noise prediction says nothing about ``x_0`` (``x_T`` is the noise
    itself), so train such schedules with ``parameterization='v'`` (Lin et al. §3.2); the
    samplers then take ``x_0 = 0`` at that one step (``predict_x0``).

    Args:
        betas: ``(T,)`` values in (0, 1).

    Returns:
        ``(T,)`` float64 betas, the last equal to 1.

    References:
        Lin, Liu, Li, Yang, "Common diffusion noise schedules and sample steps are flawed",
        WACV 2024, Algorithm 1.
    """
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or b.size < 2 or not np.all((b > 0) & (b < 1)):
        raise ValueError(f"betas: expected a 1-D array of >= 2 values in (0, 1), got {b!r}")
    root = np.sqrt(np.cumprod(1.0 - b))
    root = (root - root[-1]) * root[0] / (root[0] - root[-1])
    ab = root**2
    out = 1.0 - ab / np.concatenate([[1.0], ab[:-1]])
    out[-1] = 1.0
    return out


def extract(values: jax.Array, t: jax.Array, x: jax.Array) -> jax.Array:
    """Gathers ``values[t]`` and shapes it to broadcast against ``x``.

    Args:
        values: ``(T,)`` per-step constants.
        t: ``(B,)`` integer steps.
        x: ``(B, ...)`` array whose trailing axes the result broadcasts over.

    Returns:
        ``(B, 1, ..., 1)`` array in ``x``'s dtype.
    """
    v = jnp.take(values, t).astype(x.dtype)
    return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """Samples ``x_t ~ q(x_t | x_0)`` with the given noise.

    Args:
        schedule: the diffusion schedule.
        x0: ``(B, ...)`` clean data.
        t: ``(B,)`` integer steps in ``[0, T)``.
        noise: standard normal noise, shape of ``x0``.

    Returns:
        ``sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) noise``, shape and dtype of ``x0``.

    References:
        Ho, Jain, Abbeel (2020), eq. 4; Lee & Yun, ddpm-ddim-mcr eq. 3.
    """
    ab = extract(schedule.alpha_bars, t, x0)
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * noise


def predict_x0(schedule: Schedule, x_t: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """Inverts ``q_sample`` for ``x_0`` given the noise: ``(x_t - sqrt(1-ab) eps) / sqrt(ab)``.

    Args:
        schedule: the diffusion schedule.
        x_t: ``(B, ...)`` noisy data at steps ``t``.
        t: ``(B,)`` integer steps.
        eps: noise (or its prediction), shape of ``x_t``.

    Returns:
        ``x_0`` estimate, shape and dtype of ``x_t``; 0 where ``alpha_bar[t] = 0`` (a
        zero-terminal-SNR schedule's last step, where ``eps`` carries no information about
        ``x_0``: 0 is the mean of the centred fields the package trains on).

    References:
        Ho, Jain, Abbeel (2020), eq. 15; Lin et al. (2024), §3 (zero terminal SNR).
    """
    ab = extract(schedule.alpha_bars, t, x_t)
    return x0_from_eps(x_t, eps, ab)


def x0_from_eps(x_t: jax.Array, eps: jax.Array, alpha_bar: jax.Array) -> jax.Array:
    """``(x_t - sqrt(1 - ab) eps) / sqrt(ab)``, and 0 where ``ab = 0`` (no NaN, no infinity)."""
    positive = alpha_bar > 0
    safe = jnp.where(positive, alpha_bar, 1.0)
    return jnp.where(positive, (x_t - jnp.sqrt(1.0 - alpha_bar) * eps) / jnp.sqrt(safe), 0.0)


def predict_eps(schedule: Schedule, x_t: jax.Array, t: jax.Array, x0: jax.Array) -> jax.Array:
    """Noise implied by ``x_t`` and ``x_0``: ``(x_t - sqrt(ab) x0) / sqrt(1-ab)``.

    Args:
        schedule: the diffusion schedule.
        x_t: ``(B, ...)`` noisy data at steps ``t``.
        t: ``(B,)`` integer steps.
        x0: clean data (or its estimate), shape of ``x_t``.

    Returns:
        Noise, shape and dtype of ``x_t``.
    """
    ab = extract(schedule.alpha_bars, t, x_t)
    return (x_t - jnp.sqrt(ab) * x0) / jnp.sqrt(1.0 - ab)
