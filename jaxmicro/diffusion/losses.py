"""Training losses of diffusion models: noise regression and the improved-DDPM hybrid loss.

``diffusion_loss(key, model_fn, schedule, x0, ...)`` draws a step ``t`` and noise per sample,
noises ``x0`` with ``q_sample`` and scores ``model_fn(x_t, t)``. Three objectives:

- ``'l2'``: ``L_simple``, the mean squared error of the predicted noise (or ``v``).
- ``'l1'``: its mean absolute error (GrainPaint's choice).
- ``'hybrid'``: ``L_simple + lambda L_vlb`` with a learned variance (Nichol & Dhariwal 2021, §3.1;
  Lee & Yun eq. 12, ``lambda = 0.001``). ``L_vlb = sum_t L_t`` is estimated by ``T L_t`` at the
  sampled ``t``, so the weight of the sampled term is ``lambda T`` (1 for ``T = 1000``, as in the
  reference implementation). ``L_t`` is measured in bits per dimension against a stop-gradient
  mean, so it trains only the variance. The ``t = 0`` term is a continuous Gaussian negative
  log-likelihood of ``x_0`` under ``p(x_0 | x_1)`` (a density, so it can be negative): the
  reference discretizes it into 256 bins for 8-bit images, which fits no continuous field.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxmicro.diffusion.posterior import (
    PARAMETERIZATIONS,
    eps_from_output,
    model_log_variance,
    q_posterior_mean,
    split_output,
    v_target,
)
from jaxmicro.diffusion.schedule import Schedule, extract, predict_x0, q_sample

__all__ = ["LOSSES", "normal_kl", "gaussian_nll", "vlb_terms", "loss_terms", "diffusion_loss"]

LOSSES = ("l2", "l1", "hybrid")


def normal_kl(mean1, logvar1, mean2, logvar2):
    """Elementwise ``KL(N(mean1, e^logvar1) || N(mean2, e^logvar2))`` in nats.

    References:
        Nichol & Dhariwal (2021), appendix (standard closed form of the Gaussian KL).
    """
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + jnp.exp(logvar1 - logvar2)
        + jnp.square(mean1 - mean2) * jnp.exp(-logvar2)
    )


def gaussian_nll(x, mean, logvar):
    """Elementwise negative log-density of ``x`` under ``N(mean, e^logvar)``, in nats."""
    return 0.5 * (math.log(2 * math.pi) + logvar + jnp.square(x - mean) * jnp.exp(-logvar))


def _mean_flat(x):
    return jnp.mean(x.reshape(x.shape[0], -1), axis=-1)


def vlb_terms(schedule: Schedule, x0, x_t, t, eps, v):
    """Per-sample variational-bound term ``L_t`` in bits per dimension.

    Args:
        schedule: the diffusion schedule.
        x0: ``(B, ...)`` clean data.
        x_t: ``(B, ...)`` noised data at steps ``t``.
        t: ``(B,)`` steps.
        eps: predicted noise (treat it as fixed with ``stop_gradient`` to train only the variance).
        v: variance interpolation values, shape of ``x0``.

    Returns:
        ``(B,)``: ``KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))`` for ``t > 0``, and the Gaussian
        negative log-likelihood of ``x_0`` under ``p(x_0|x_1)`` for ``t = 0``, both divided by
        ``log 2`` and averaged over the dimensions.

    References:
        Ho, Jain, Abbeel (2020), eq. 5; Nichol & Dhariwal (2021), §3.1; Lee & Yun eqs. 7-9.
    """
    true_mean = q_posterior_mean(schedule, x0, x_t, t)
    true_logvar = extract(schedule.posterior_log_variance_clipped, t, x_t)
    mean = q_posterior_mean(schedule, predict_x0(schedule, x_t, t, eps), x_t, t)
    logvar = model_log_variance(schedule, t, x_t, v, learned_variance=True)
    kl = _mean_flat(normal_kl(true_mean, true_logvar, mean, logvar)) / math.log(2.0)
    nll = _mean_flat(gaussian_nll(x0, mean, logvar)) / math.log(2.0)
    return jnp.where(t == 0, nll, kl)


def loss_terms(
    schedule: Schedule,
    x0: jax.Array,
    t: jax.Array,
    noise: jax.Array,
    out: jax.Array,
    *,
    loss: str = "l2",
    parameterization: str = "eps",
    lambda_vlb: float = 0.001,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Per-sample losses of a network output on ``x_t = q_sample(schedule, x0, t, noise)``.

    Args:
        schedule: the diffusion schedule.
        x0: ``(B, ...)`` clean data.
        t: ``(B,)`` steps.
        noise: the noise that made ``x_t``, shape of ``x0``.
        out: network output at ``(x_t, t)``: shape of ``x0``, or ``2C`` channels for
            ``loss='hybrid'`` (prediction, then variance interpolation values).
        loss: ``'l2'``, ``'l1'`` or ``'hybrid'``.
        parameterization: the network predicts ``'eps'``, ``'v'`` or ``'x0'``.
        lambda_vlb: weight of ``L_vlb`` in the hybrid loss.

    Returns:
        ``(loss, terms)``: ``(B,)`` losses and a dict of ``(B,)`` terms, ``'simple'`` and, for the
        hybrid loss, ``'vb'`` (``L_t`` in bits/dim).

    References:
        Ho, Jain, Abbeel (2020), eq. 14; Nichol & Dhariwal (2021), eq. 16; Lee & Yun eqs. 11-12.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"parameterization: expected one of {PARAMETERIZATIONS}, got {parameterization!r}"
        )
    out = out.astype(x0.dtype)
    pred, v = split_output(out, learned_variance=loss == "hybrid")
    if pred.shape != x0.shape:
        raise ValueError(f"out: prediction of shape {pred.shape} does not match x0 {x0.shape}")
    targets = {"eps": noise, "x0": x0}
    target = targets.get(parameterization)
    if target is None:
        target = v_target(schedule, x0, t, noise)
    err = jnp.abs(pred - target) if loss == "l1" else jnp.square(pred - target)
    simple = _mean_flat(err)
    if loss != "hybrid":
        return simple, {"simple": simple}
    x_t = q_sample(schedule, x0, t, noise)
    eps = eps_from_output(
        schedule, x_t, t, jax.lax.stop_gradient(pred), parameterization=parameterization
    )
    vb = vlb_terms(schedule, x0, x_t, t, eps, v)
    return simple + lambda_vlb * schedule.num_steps * vb, {"simple": simple, "vb": vb}


def diffusion_loss(
    key: jax.Array,
    model_fn: Callable[[jax.Array, jax.Array], jax.Array],
    schedule: Schedule,
    x0: jax.Array,
    *,
    loss: str = "l2",
    parameterization: str = "eps",
    lambda_vlb: float = 0.001,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Monte-Carlo estimate of the training loss on one batch.

    Draws ``t ~ U{0..T-1}`` and ``noise ~ N(0, I)`` per sample, calls ``model_fn`` on
    ``q_sample(schedule, x0, t, noise)`` and averages ``loss_terms`` over the batch.

    Args:
        key: PRNG key; sample ``i`` draws its step and noise from ``split(key, B)[i]``, so a
            sample's loss does not depend on the batch size or on sharding.
        model_fn: ``(x_t (B, ...), t (B,)) -> (B, ..., C)`` prediction, or ``2C`` channels for
            ``loss='hybrid'``.
        schedule: the diffusion schedule.
        x0: ``(B, ...)`` clean data (channels last).
        loss, parameterization, lambda_vlb: see ``loss_terms``.

    Returns:
        ``(loss, metrics)``: the batch-mean loss and the batch means of the terms.

    References:
        Ho, Jain, Abbeel (2020), Algorithm 1; Nichol & Dhariwal (2021), §3.1.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")

    def draw(k):
        kt, kn = jax.random.split(k)
        t = jax.random.randint(kt, (), 0, schedule.num_steps)
        return t, jax.random.normal(kn, x0.shape[1:], x0.dtype)

    t, noise = jax.vmap(draw)(jax.random.split(key, x0.shape[0]))
    out = model_fn(q_sample(schedule, x0, t, noise), t)
    per_sample, terms = loss_terms(
        schedule,
        x0,
        t,
        noise,
        out,
        loss=loss,
        parameterization=parameterization,
        lambda_vlb=lambda_vlb,
    )
    return jnp.mean(per_sample), {k: jnp.mean(v) for k, v in terms.items()}
