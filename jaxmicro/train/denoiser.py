"""The one adapter from a network's output to a noise prediction ``eps_fn(x, t)``.

Every sampler in ``jaxmicro.diffusion`` (DDPM, DDIM, RePaint, the truncated diffusion of
Local-Global Decomposition, outpainting) and every guidance wrapper reads a denoiser
``eps_fn(x, t) -> eps``. A trained network returns something else: ``eps``, ``v`` or ``x0``
(its ``parameterization``), optionally followed by ``C`` channels of learned-variance values, and a
conditional network also reads conditions. ``denoiser`` is the only place that turns one into the
other, so a run trained with ``parameterization='v'`` or a learned variance samples the same way
in ``generate``, ``jaxmicro sample``, ``outpaint``, ``lgd``, the experiments and the benchmarks.

Conditions are a dict of arrays, batch leading or unbatched (then shared by the batch):
``'labels'`` ``(B,)`` int class labels, ``'scalars'`` ``(B, K)`` (normalized) scalar conditions
and, optionally, ``'mask'`` ``(B,)`` bool (False: that sample sees the null token). ``apply_fn(x,
t)`` without conditions must return the unconditional (null-token) output of a conditional model;
``unet_apply`` builds such an ``apply_fn`` from a ``UNet``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from jaxmicro.diffusion.posterior import PARAMETERIZATIONS, eps_from_output, split_output
from jaxmicro.diffusion.schedule import Schedule
from jaxmicro.train.parallel import batch_sharded

__all__ = ["denoiser", "unet_apply", "CONDITION_KEYS"]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]
CONDITION_KEYS = ("labels", "scalars", "mask")


def unet_apply(model) -> Callable:
    """``apply_fn(x, t, conditions=None)`` of a ``jaxmicro.nn.UNet`` (deterministic: no dropout).

    Without ``conditions`` a conditional UNet sees its learned null tokens (the unconditional
    branch of classifier-free guidance).
    """
    cfg = model.config

    def apply_fn(x, t, conditions=None):
        if not cfg.conditional:
            return model(x, t)
        b = x.shape[0]
        if conditions is None:
            conditions = {"mask": jnp.zeros((b,), bool)}
        labels = conditions.get("labels")
        if labels is None and cfg.num_classes:
            labels = jnp.zeros((b,), jnp.int32)
        scalars = conditions.get("scalars")
        if scalars is None and cfg.num_scalar_conditions:
            scalars = jnp.zeros((b, cfg.num_scalar_conditions), x.dtype)
        return model(x, t, labels=labels, scalars=scalars, cond_mask=conditions.get("mask"))

    return apply_fn


def _batched(conditions: Mapping, batch: int) -> dict:
    """Conditions with a leading batch axis of size ``batch`` (unbatched entries broadcast)."""
    out = {}
    for name, value in conditions.items():
        value = jnp.asarray(value)
        per_sample = 1 if name == "scalars" else 0  # trailing axes of one sample's entry
        if value.ndim == per_sample:
            value = jnp.broadcast_to(value, (batch, *value.shape))
        elif value.ndim != per_sample + 1 or value.shape[0] not in (1, batch):
            raise ValueError(
                f"conditions[{name!r}]: expected shape ({batch}{', K' if per_sample else ''}) "
                f"or one sample's entry, got {value.shape}"
            )
        out[name] = jnp.broadcast_to(value, (batch, *value.shape[1:]))
    return out


def denoiser(
    apply_fn: Callable,
    schedule: Schedule,
    *,
    parameterization: str = "eps",
    learned_variance: bool = False,
    conditions: Mapping | None = None,
    guidance_scale: float | None = None,
    mesh: jax.sharding.Mesh | None = None,
    variance_channels: bool = False,
) -> EpsFn:
    """Wraps a network as the denoiser ``eps_fn(x, t) -> eps`` that the samplers read.

    Args:
        apply_fn: ``apply_fn(x, t)`` (or ``apply_fn(x, t, conditions)`` when ``conditions`` are
            given) returning the network output ``(B, *spatial, C)``, ``2C`` channels with a
            learned variance; ``x`` is ``(B, *spatial, C)``, ``t`` ``(B,)`` int steps.
        schedule: the diffusion schedule the network was trained with.
        parameterization: what the network predicts: ``'eps'``, ``'v'`` (Salimans & Ho 2022) or
            ``'x0'``.
        learned_variance: the output carries ``C`` variance channels after the prediction
            (Nichol & Dhariwal 2021, eq. 15); they are split off.
        conditions: condition arrays (see the module docstring); None: unconditional.
        guidance_scale: classifier-free guidance weight ``s`` with conditions:
            ``eps = eps_u + s (eps_c - eps_u)``; None or 1: the conditional output alone; 0: the
            unconditional (null-token) output alone. Both branches run as one batch of ``2B``.
        mesh: constrain ``x`` to be split over the mesh's ``'batch'`` axis (data-parallel
            sampling; the batch must be divisible by the mesh size).
        variance_channels: return ``[eps, v]`` (``2C`` channels) so that
            ``ddpm_sample(..., learned_variance=True)`` reads the learned variance (the variance
            half is the conditional branch's). Needs ``learned_variance``.

    Returns:
        ``eps_fn(x, t)`` returning ``(B, *spatial, C)`` noise predictions in the dtype of ``x``
        (``2C`` channels with ``variance_channels``).

    References:
        Ho & Salimans (2022), eq. 6 (guidance, with ``s = 1 + w``); Salimans & Ho (2022), §4;
        Nichol & Dhariwal (2021), §3.1; PolyCrysDiff §2.3; Lee & Yun §2.2.
    """
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"parameterization: expected one of {PARAMETERIZATIONS}, got {parameterization!r}"
        )
    if variance_channels and not learned_variance:
        raise ValueError("variance_channels: needs a learned-variance network")
    if conditions is not None:
        unknown = set(conditions) - set(CONDITION_KEYS)
        if unknown:
            raise ValueError(
                f"conditions: unknown entries {sorted(unknown)}; expected {CONDITION_KEYS}"
            )
    if guidance_scale is not None and conditions is None:
        raise ValueError("guidance_scale: classifier-free guidance needs conditions")
    scale = None if guidance_scale is None else float(guidance_scale)
    if scale is not None and not math.isfinite(scale):
        raise ValueError(f"guidance_scale: expected a finite number, got {guidance_scale}")

    def outputs(x, t):
        """(prediction, variance values or None) of the (guided) network."""
        b = x.shape[0]
        if conditions is None or scale == 0.0:
            out = apply_fn(x, t)
        elif scale is None or scale == 1.0:
            out = apply_fn(x, t, _batched(conditions, b))
        else:
            cond = _batched(conditions, b)
            mask = cond.get("mask", jnp.ones((b,), bool))
            both = {k: jnp.concatenate([v, v]) for k, v in cond.items()}
            both["mask"] = jnp.concatenate([mask, jnp.zeros((b,), bool)])
            out2 = apply_fn(jnp.concatenate([x, x]), jnp.concatenate([t, t]), both)
            pc, vc = split_output(out2[:b], learned_variance=learned_variance)
            pu, _ = split_output(out2[b:], learned_variance=learned_variance)
            return pu + scale * (pc - pu), vc
        return split_output(out, learned_variance=learned_variance)

    def eps_fn(x, t):
        if mesh is not None:
            x = jax.lax.with_sharding_constraint(x, batch_sharded(mesh))
        pred, v = outputs(x, t)
        pred = pred.astype(x.dtype)
        eps = eps_from_output(schedule, x, t, pred, parameterization=parameterization)
        if variance_channels:
            return jnp.concatenate([eps, v.astype(x.dtype)], axis=-1)
        return eps

    return eps_fn
