"""The training step: a pure function ``train_step(key, state, batch) -> (state, metrics)``.

The model crosses ``jit`` as ``(graphdef, state)``: ``TrainState`` holds the ``nnx.Param`` leaves
(trained), the other variables (e.g. fixed Fourier frequencies), the optax state, the EMA of the
parameters, the step, the data position and the run's base PRNG key (as raw key data, so that it
checkpoints like any array). Nothing in the step reads global state; the loop derives the step key
with ``step_key``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxmicro.diffusion import diffusion_loss
from jaxmicro.diffusion.schedule import Schedule
from jaxmicro.nn import UNet
from jaxmicro.train.config import TrainConfig

__all__ = [
    "TrainState",
    "make_optimizer",
    "ema_update",
    "init_state",
    "make_train_step",
    "step_key",
    "model_from_state",
]


class TrainState(NamedTuple):
    """Everything a run needs to continue exactly; a pytree of arrays.

    Attributes:
        step: int32 scalar, optimizer steps taken.
        position: int32 scalar, global position of the next example in the dataset.
        rng: uint32 key data of the run's base key (``jax.random.key_data``).
        params: ``nnx.State`` of the trainable parameters.
        rest: ``nnx.State`` of the model's other variables.
        opt_state: optax state.
        ema: ``nnx.State``, exponential moving average of ``params``.
    """

    step: jax.Array
    position: jax.Array
    rng: jax.Array
    params: nnx.State
    rest: nnx.State
    opt_state: optax.OptState
    ema: nnx.State


def learning_rate_schedule(config) -> optax.Schedule:
    """Linear warmup then cosine decay to 0, over ``config.num_train_steps``, or over each
    cycle of ``config.lr_cycles`` in turn (warm restarts: cycle ``k`` from 0 warms up again,
    to ``config.learning_rate * config.lr_cycle_decay ** k``). A run of cycles ``(a, b)``
    resumed at step ``a`` follows the same schedule as one started with them, so a finished
    run can be extended by a cycle.

    References:
        Loshchilov & Hutter (2017), SGDR: warm restarts of a cosine schedule.
    """

    def cycle(k: int, length: int) -> optax.Schedule:
        warmup = max(config.warmup_steps, 1)
        peak = config.learning_rate * config.lr_cycle_decay**k
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(length, warmup + 1))

    lengths = tuple(config.lr_cycles) or (config.num_train_steps,)
    if len(lengths) == 1:
        return cycle(0, lengths[0])
    boundaries = list(itertools.accumulate(int(n) for n in lengths[:-1]))
    return optax.join_schedules([cycle(k, n) for k, n in enumerate(lengths)], boundaries)


def make_optimizer(config) -> optax.GradientTransformation:
    """AdamW on ``learning_rate_schedule(config)``, after global-norm gradient clipping.

    ``config`` is a ``TrainConfig`` or a ``VAETrainConfig``.

    References:
        Loshchilov & Hutter (2019); PolyCrysDiff §4.1 (cosine schedule, clipping); Lee & Yun §2.4.
    """
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(learning_rate_schedule(config), weight_decay=config.weight_decay),
    )


def ema_update(ema, params, decay: float, step: jax.Array):
    """``ema <- d ema + (1 - d) params`` with ``d = min(decay, (1 + step) / (10 + step))``.

    The warm-up of ``d`` keeps early averages from being dominated by the random initialization.

    References:
        Ho, Jain, Abbeel (2020), appendix B (EMA 0.9999); Lee & Yun §2.4.
    """
    step = jnp.asarray(step, jnp.float32)
    d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
    return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype), ema, params)


def _model_parts(config: TrainConfig, key):
    model = UNet(config.model, rngs=nnx.Rngs(params=key))
    return nnx.split(model, nnx.Param, ...)


def init_state(config: TrainConfig, optimizer: optax.GradientTransformation):
    """``(graphdef, init_fn)``; ``init_fn()`` returns the initial ``TrainState`` (jittable).

    ``graphdef`` is the static structure of the model; splitting it off with ``eval_shape`` lets
    the caller jit ``init_fn`` with output shardings, so parameters are created in place.
    """
    graphdef = nnx.eval_shape(lambda: _model_parts(config, jax.random.key(0)))[0]

    def init_fn():
        base = jax.random.key(config.seed)
        _, params, rest = _model_parts(config, jax.random.fold_in(base, 0))
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            position=jnp.zeros((), jnp.int32),
            rng=jax.random.key_data(base),
            params=params,
            rest=rest,
            opt_state=optimizer.init(params),
            ema=jax.tree.map(jnp.copy, params),
        )

    return graphdef, init_fn


def step_key(state: TrainState) -> jax.Array:
    """The PRNG key of the step about to be taken: ``fold_in(fold_in(base_key, 1), step)``.

    (``fold_in(base_key, 0)`` initializes the parameters.)
    """
    steps = jax.random.fold_in(jax.random.wrap_key_data(state.rng), 1)
    return jax.random.fold_in(steps, state.step)


def model_from_state(graphdef, state: TrainState, *, ema: bool = True) -> UNet:
    """The UNet with the EMA (or raw) parameters of ``state``."""
    return nnx.merge(graphdef, state.ema if ema else state.params, state.rest)


def make_train_step(
    config: TrainConfig,
    graphdef,
    schedule: Schedule,
    optimizer: optax.GradientTransformation,
) -> Callable:
    """Builds ``train_step(key, state, batch) -> (state, metrics)``.

    ``batch`` is a dict with ``'x'``: ``(B, *spatial, C)`` fields and, for conditional models,
    ``'labels'`` ``(B,)`` and/or ``'scalars'`` ``(B, K)``. With ``compute_dtype='bfloat16'`` the
    network runs in bfloat16 on bfloat16 copies of the parameters; the loss, gradients and
    updates stay float32. The step is pure: jit it (with shardings) in the caller.

    References:
        Ho, Jain, Abbeel (2020), Algorithm 1; Ho & Salimans (2022), Algorithm 1 (condition
        dropout for classifier-free guidance).
    """
    config = config.validate()
    compute = jnp.bfloat16 if config.compute_dtype == "bfloat16" else None

    def loss_fn(params, key, state, batch):
        k_loss, k_drop, k_cond = jax.random.split(key, 3)
        if compute is not None:
            params = jax.tree.map(lambda p: p.astype(compute), params)
        model = nnx.merge(graphdef, params, state.rest)
        cond_mask = None
        if config.model.conditional and config.cond_dropout > 0:
            cond_mask = jax.random.uniform(k_cond, batch["x"].shape[:1]) >= config.cond_dropout

        def model_fn(x_t, t):
            x_in = x_t if compute is None else x_t.astype(compute)
            out = model(
                x_in,
                t,
                labels=batch.get("labels"),
                scalars=batch.get("scalars"),
                cond_mask=cond_mask,
                key=k_drop,
            )
            return out.astype(x_t.dtype)

        return diffusion_loss(
            k_loss,
            model_fn,
            schedule,
            batch["x"],
            loss=config.loss,
            parameterization=config.parameterization,
            lambda_vlb=config.lambda_vlb,
        )

    def train_step(key: jax.Array, state: TrainState, batch: dict):
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, key, state, batch
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = state._replace(
            step=state.step + 1,
            position=state.position + batch["x"].shape[0],
            params=params,
            opt_state=opt_state,
            ema=ema_update(state.ema, params, config.ema_decay, state.step),
        )
        metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
        return new, metrics

    return train_step
