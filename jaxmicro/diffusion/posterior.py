"""The reverse-process Gaussian ``p(x_{t-1} | x_t)`` implied by a network output.

A denoiser returns, per step, the noise ``eps``, ``v = sqrt(ab) eps - sqrt(1-ab) x_0`` or the clean
field ``x_0`` itself (``parameterization``), optionally followed by ``C`` channels of variance
interpolation values (``learned_variance``). These functions turn that output into the mean and
log-variance that the losses and samplers use, so both read the network the same way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmicro.diffusion.schedule import Schedule, extract, predict_eps, predict_x0

__all__ = [
    "PARAMETERIZATIONS",
    "VARIANCES",
    "check_variance",
    "split_output",
    "eps_from_output",
    "v_target",
    "q_posterior_mean",
    "model_log_variance",
    "p_mean_variance",
]

PARAMETERIZATIONS = ("eps", "v", "x0")
VARIANCES = ("small", "large")


def check_variance(variance: str) -> None:
    """Raises ``ValueError`` naming ``variance`` unless it is one of ``VARIANCES``."""
    if variance == "learned":
        raise ValueError("variance: a learned variance is spelled learned_variance=True")
    if variance not in VARIANCES:
        raise ValueError(f"variance: expected one of {VARIANCES}, got {variance!r}")


def split_output(out: jax.Array, *, learned_variance: bool) -> tuple[jax.Array, jax.Array | None]:
    """Splits a ``(B, ..., 2C)`` output into prediction and variance values (``None`` if fixed)."""
    if not learned_variance:
        return out, None
    if out.shape[-1] % 2:
        raise ValueError(
            f"out: a learned-variance output needs an even channel count, got shape {out.shape}"
        )
    pred, v = jnp.split(out, 2, axis=-1)
    return pred, v


def eps_from_output(schedule: Schedule, x_t, t, pred, *, parameterization: str = "eps"):
    """Noise prediction from an ``eps``, ``v`` or ``x0`` prediction (shape of ``x_t``).

    ``v``: ``eps = sqrt(ab) v + sqrt(1-ab) x_t``;
    ``x0``: ``eps = (x_t - sqrt(ab) x0) / sqrt(1-ab)``.

    References:
        Salimans & Ho (2022), §4 and appendix D; Ho, Jain, Abbeel (2020), eq. 4 (x0 form).
    """
    if parameterization == "eps":
        return pred
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"parameterization: expected one of {PARAMETERIZATIONS}, got {parameterization!r}"
        )
    ab = extract(schedule.alpha_bars, t, x_t)
    if parameterization == "v":
        return jnp.sqrt(ab) * pred + jnp.sqrt(1.0 - ab) * x_t
    return predict_eps(schedule, x_t, t, pred)


def v_target(schedule: Schedule, x0, t, noise):
    """Velocity target ``sqrt(ab) noise - sqrt(1-ab) x0``.

    References:
        Salimans & Ho (2022), §4.
    """
    ab = extract(schedule.alpha_bars, t, x0)
    return jnp.sqrt(ab) * noise - jnp.sqrt(1.0 - ab) * x0


def q_posterior_mean(schedule: Schedule, x0, x_t, t):
    """Mean of ``q(x_{t-1} | x_t, x_0)``: ``coef1[t] x0 + coef2[t] x_t``.

    References:
        Ho, Jain, Abbeel (2020), eq. 7.
    """
    return (
        extract(schedule.posterior_mean_coef1, t, x_t) * x0
        + extract(schedule.posterior_mean_coef2, t, x_t) * x_t
    )


def model_log_variance(
    schedule: Schedule,
    t,
    x_t,
    v=None,
    *,
    variance: str = "small",
    learned_variance: bool = False,
):
    """Log-variance of ``p(x_{t-1} | x_t)``, broadcastable to ``x_t``.

    Args:
        schedule: the diffusion schedule.
        t: ``(B,)`` steps.
        x_t: ``(B, ...)`` current state (for shape and dtype).
        v: variance interpolation values, shape of ``x_t`` (``learned_variance`` only).
        variance: the fixed variance, ``'small'`` (posterior variance, clipped log) or
            ``'large'`` (``beta_t``, with ``t = 0`` using the posterior variance of step 1).
        learned_variance: interpolate instead,
            ``frac log(beta_t) + (1 - frac) log(beta_tilde_t)``, ``frac = (v + 1) / 2``.

    References:
        Ho, Jain, Abbeel (2020), §3.2; Nichol & Dhariwal (2021), eq. 15.
    """
    check_variance(variance)
    min_log = extract(schedule.posterior_log_variance_clipped, t, x_t)
    if not learned_variance:
        if variance == "small":
            return min_log
        large = jnp.concatenate([schedule.posterior_variance[1:2], schedule.betas[1:]])
        return extract(jnp.log(large), t, x_t)
    if v is None:
        raise ValueError("v: learned_variance needs the variance channels of the output")
    frac = (v + 1.0) / 2.0
    return frac * extract(jnp.log(schedule.betas), t, x_t) + (1.0 - frac) * min_log


def p_mean_variance(
    schedule: Schedule,
    x_t,
    t,
    out,
    *,
    variance: str = "small",
    learned_variance: bool = False,
    parameterization: str = "eps",
    clip_x0: tuple[float, float] | None = None,
):
    """Mean and log-variance of ``p(x_{t-1} | x_t)`` from a network output.

    Args:
        schedule: the diffusion schedule.
        x_t: ``(B, ...)`` state at steps ``t``.
        t: ``(B,)`` steps.
        out: network output, shape of ``x_t`` (``2C`` channels when ``learned_variance``).
        variance, learned_variance: see ``model_log_variance``.
        parameterization: ``'eps'`` or ``'v'``.
        clip_x0: optional ``(low, high)`` bounds applied to the ``x_0`` estimate.

    Returns:
        ``(mean, log_variance, x0, eps)``; ``eps`` is consistent with the (clipped) ``x0``.

    References:
        Ho, Jain, Abbeel (2020), eqs. 7, 11; Nichol & Dhariwal (2021), §3.1.
    """
    pred, v = split_output(out, learned_variance=learned_variance)
    eps = eps_from_output(schedule, x_t, t, pred, parameterization=parameterization)
    x0 = predict_x0(schedule, x_t, t, eps)
    if clip_x0 is not None:
        x0 = jnp.clip(x0, clip_x0[0], clip_x0[1])
        eps = predict_eps(schedule, x_t, t, x0)
    mean = q_posterior_mean(schedule, x0, x_t, t)
    logvar = model_log_variance(
        schedule, t, x_t, v, variance=variance, learned_variance=learned_variance
    )
    return mean, jnp.broadcast_to(logvar, x_t.shape), x0, eps
