"""Conditioning of a denoiser: 1-point correction, 2-point and property gradient guidance.

Each function wraps a denoiser ``eps_fn(x, t)`` and returns another one, so conditions compose
with each other and with any sampler (DDPM, DDIM, RePaint, the truncated diffusion of Local-Global
Decomposition). ``property_guidance`` is the general form of ``two_point_guidance``: any
differentiable function of the ``x_0`` estimate (an effective property of
``jaxmicro.properties``, a descriptor) pulled toward a target. A score correction
``s_cond = s - g`` becomes ``eps_cond = eps + sqrt(1 - ab_t) g`` through
``eps = -sqrt(1 - ab_t) s`` (``ab_t = schedule.alpha_bars[t]``).

References:
    Buzzy, Robertson & Kalidindi, Acta Mater. 2024 (rogsh-local-global) §3.3 eq. 6; Chung et al.,
    Diffusion Posterior Sampling, ICLR 2023 (DPS), Algorithm 1; Dhariwal & Nichol 2021 §4
    (guidance as an added score).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxmicro import _validate, descriptors
from jaxmicro.diffusion.schedule import Schedule, extract, predict_x0

__all__ = ["one_point_correction", "property_guidance", "two_point_guidance"]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


def one_point_correction(
    eps_fn: EpsFn, schedule: Schedule, omega, *, strength: float = 1.0
) -> EpsFn:
    """Wraps ``eps_fn`` so that samples have spatial mean ``omega`` in every channel.

    Buzzy eq. 6, per channel: ``s_cond = s - c_t (mean_s(x_t) - sqrt(ab_t) omega)`` with
    ``c_t = strength / (1 - ab_t)``, i.e.

        ``eps_cond = eps + strength (mean_s(x_t) - sqrt(ab_t) omega) / sqrt(1 - ab_t)``.

    Choices, and why: eq. 6 compares ``mean(x_t)`` with ``omega`` because the local-global
    reference code runs a variance-exploding diffusion, whose ``x_t`` keeps the mean of ``x_0``;
    here ``x_t = sqrt(ab_t) x_0 + ...``, so the target mean at step ``t`` is ``sqrt(ab_t) omega``.
    The reference code's ``c_t = 1 / (N sigma(t)^2)`` with ``sigma`` decreasing geometrically over
    the steps becomes ``1 / (1 - ab_t)``, the variance of ``x_t`` given ``x_0`` (also decreasing
    over the reverse steps); we fold ``1 / N`` and any other constant into ``strength``. With
    ``strength = 1`` the correction shifts the spatial mean of the ``x_0`` estimate
    ``(x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)`` by ``omega - mean(x_t) / sqrt(ab_t)``: for a
    denoiser that keeps the noisy mean (a flat prior on the mean) the estimate's mean becomes
    exactly ``omega``. Only the spatially constant mode of each channel is changed.

    The default ``strength = 1`` is therefore a hard mean constraint, not the reference code's
    weight: that code uses ``1 / (N sigma(t)^2)``, a soft pull ``N`` times weaker (``N`` voxels);
    pass ``strength = 1 / N`` to follow it (docs/guided_sampling.md).

    Args:
        eps_fn: denoiser ``eps_fn(x, t)``, ``x`` ``(B, *spatial, C)``, ``t`` ``(B,)``.
        schedule: the diffusion schedule of ``eps_fn``.
        omega: ``(C,)`` target 1-point statistics (e.g. mean ROGSH coefficients or volume
            fractions), in the units of the data ``x_0``.
        strength: multiplies ``c_t``; 0 disables the correction; may be a traced scalar. The
            default 1 is a hard mean constraint (``1 / N`` is the reference code's weight).

    Returns:
        The corrected denoiser, same signature.

    References:
        Buzzy et al., rogsh-local-global §3.3 eq. 6; papers README (reference-code form of c_t).
    """
    omega = jnp.asarray(omega)
    _validate.check_ndim(omega, "omega", 1, "(C,)")
    _validate.check_finite(omega, "omega")

    def corrected(x: jax.Array, t: jax.Array) -> jax.Array:
        _validate.check_trailing(x, "x", omega.shape[0])
        eps = eps_fn(x, t)
        ab = extract(schedule.alpha_bars, t, x)
        spatial = tuple(range(1, x.ndim - 1))
        excess = jnp.mean(x, axis=spatial, keepdims=True) - jnp.sqrt(ab) * omega.astype(x.dtype)
        return eps + strength * excess / jnp.sqrt(1.0 - ab)

    return corrected


def _check_scale(scale) -> None:
    if _validate.is_concrete(scale) and not float(scale) >= 0:
        raise ValueError(f"scale: expected a non-negative guidance weight, got {scale}")


def _residual_guidance(eps_fn, schedule, statistic, target, scale, described: str) -> EpsFn:
    """``eps + scale sqrt(1 - ab_t) grad_{x_t} sum_b ||statistic(x0_hat_b) - target||``."""

    def norms(x, t):
        eps = eps_fn(x, t)
        x0 = predict_x0(schedule, x, t, eps)
        stats = jax.vmap(statistic)(x0)
        if stats.shape[1:] != target.shape:
            raise ValueError(
                f"target: expected shape {stats.shape[1:]} ({described}), got {target.shape}"
            )
        sq = jnp.sum((stats - target.astype(stats.dtype)) ** 2, axis=tuple(range(1, stats.ndim)))
        # Summing per-sample norms keeps the samples' gradients separate; the floor keeps the
        # gradient of the norm finite at r = 0.
        return jnp.sum(jnp.sqrt(sq + jnp.finfo(sq.dtype).tiny)), eps

    def guided(x: jax.Array, t: jax.Array) -> jax.Array:
        grad, eps = jax.grad(norms, has_aux=True)(x, t)
        ab = extract(schedule.alpha_bars, t, x)
        return eps + scale * jnp.sqrt(1.0 - ab) * grad.astype(eps.dtype)

    return guided


def two_point_guidance(
    eps_fn: EpsFn,
    schedule: Schedule,
    target,
    *,
    scale: float,
    descriptor_kwargs: Mapping[str, Any] | None = None,
) -> EpsFn:
    """Wraps ``eps_fn`` with gradient guidance toward target 2-point statistics (DPS-style).

    For each sample, ``x0_hat = (x_t - sqrt(1 - ab_t) eps_fn(x_t, t)) / sqrt(ab_t)``, the residual
    ``r = two_point(x0_hat) - target`` and the guidance treats ``exp(-scale ||r||)`` as the
    likelihood of the target given ``x_t``:

        ``eps_cond = eps + scale sqrt(1 - ab_t) grad_{x_t} ||r||``,

    the gradient taken through ``eps_fn`` as in DPS. Scale schedule: the guidance weight on the
    score is constant in ``t`` (``scale``); in eps units it is weighted by ``sqrt(1 - ab_t)``, and
    a DDPM step moves ``x`` by about ``beta_t scale grad ||r||``, so the pull follows the noise
    schedule and fades at the last, least noisy steps. Using the norm ``||r||`` rather than
    ``||r||^2`` is DPS's step size ``zeta / ||r||``: the gradient's magnitude does not grow with the
    distance to the target, which keeps large scales stable. Costs one forward and one backward
    pass of ``eps_fn`` per call. It is :func:`property_guidance` with ``two_point`` as the
    property.

    Args:
        eps_fn: denoiser ``eps_fn(x, t)``, ``x`` ``(B, *spatial, C)`` with 2 or 3 spatial axes.
        schedule: the diffusion schedule of ``eps_fn``.
        target: 2-point statistics, the shape returned by
            ``jaxmicro.descriptors.two_point(x0, **descriptor_kwargs)`` for one sample.
        scale: guidance weight (>= 0; 0 returns ``eps_fn``'s prediction unchanged); may be a
            traced scalar, so one compilation serves a sweep of scales.
        descriptor_kwargs: keyword arguments of ``two_point`` (``periodic``, ``max_lag``,
            ``pairs``, ``mask``), static.

    Returns:
        The guided denoiser, same signature; jittable and differentiable where ``eps_fn`` is.

    References:
        Chung et al., DPS, ICLR 2023, Algorithm 1; rogsh-local-global §3.1 eqs. 1-2 (statistics).
    """
    _check_scale(scale)
    kwargs = dict(descriptor_kwargs or {})
    target = jnp.asarray(target)
    _validate.check_finite(target, "target")
    return _residual_guidance(
        eps_fn,
        schedule,
        lambda m: descriptors.two_point(m, **kwargs),
        target,
        scale,
        f"two_point with {kwargs}",
    )


def property_guidance(
    eps_fn: EpsFn,
    schedule: Schedule,
    property_fn: Callable[[jax.Array], jax.Array],
    target,
    *,
    scale: float,
) -> EpsFn:
    """Wraps ``eps_fn`` with gradient guidance toward a target property of the sample (DPS-style).

    As :func:`two_point_guidance` with any differentiable statistic: per sample,
    ``r = property_fn(x0_hat) - target`` with ``x0_hat`` the denoiser's ``x_0`` estimate, and

        ``eps_cond = eps + scale sqrt(1 - ab_t) grad_{x_t} ||r||``,

    the gradient taken through ``eps_fn`` and ``property_fn``. For an effective property, make
    ``property_fn`` map the data units to local moduli (e.g. ``{-1, +1}`` phases to
    ``jaxmicro.properties.mix_phases`` fractions, clipped to [0, 1] so that the solver sees
    positive moduli where the estimate overshoots) and return a scale-free quantity (a log
    ratio, a relative value): ``||r||`` then reads the same for every target, and so does
    ``scale``. Under ``jit`` the effective-property solvers run a fixed CG budget and do not
    raise (docs/properties.md); the ``x_0`` estimates of the noisiest steps are smooth, so
    their solves are well conditioned.

    Args:
        eps_fn: denoiser ``eps_fn(x, t)``, ``x`` ``(B, *spatial, C)``.
        schedule: the diffusion schedule of ``eps_fn``.
        property_fn: one sample's ``x_0`` ``(*spatial, C)``, in the units of the data, to an
            array of ``target``'s shape (a scalar for one property); differentiable; vmapped
            over the batch.
        target: the property value aimed at, shared by the batch.
        scale: guidance weight (>= 0; 0 returns ``eps_fn``'s prediction unchanged); may be a
            traced scalar, so one compilation serves a sweep of scales.

    Returns:
        The guided denoiser, same signature; jittable and differentiable where ``eps_fn`` and
        ``property_fn`` are. Costs one forward and one backward pass of ``eps_fn`` and of
        ``property_fn`` per call.

    Raises:
        ValueError: ``property_fn`` is not callable; ``scale`` is negative; ``target`` is not
            finite; (when called) ``property_fn`` returns another shape than ``target``'s.

    References:
        Chung et al., DPS, ICLR 2023, Algorithm 1; Dhariwal & Nichol 2021 §4.
    """
    if not callable(property_fn):
        raise ValueError(f"property_fn: expected a function of one sample, got {property_fn!r}")
    _check_scale(scale)
    target = jnp.asarray(target)
    _validate.check_finite(target, "target")
    return _residual_guidance(eps_fn, schedule, property_fn, target, scale, "property_fn output")
