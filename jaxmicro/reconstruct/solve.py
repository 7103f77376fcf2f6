"""Descriptor-based reconstruction: minimize the loss of ``spec.py`` over a voxel field.

Every optimizer runs inside the jitted function (``lax.while_loop`` or ``lax.scan``), so a whole
reconstruction, multigrid levels included, is one jittable function with no host round trip per
iteration::

    run = jax.jit(reconstruct, static_argnames=("shape", "spec", "optimizer", "max_iter"))
    result = run(key, target, shape=(64, 64), spec=spec)

Optimizers (``max_iter`` iterations per level each):

- ``'lbfgsb'`` (default): jaxmicro's L-BFGS-B, SciPy's algorithm in JAX (``minimize_lbfgsb``
  in ``lbfgsb.py``); bounds [0, 1] for phase indicators, none for orientations; about one
  evaluation per iteration; stops early only where it cannot progress (a zero projected
  gradient, or a failed line search with an empty memory: the history then repeats the last
  loss).
- ``'jaxopt'``: ``jaxopt.LBFGSB`` (two evaluations per iteration, one of them value-only).
- ``'lbfgs'`` (optax L-BFGS with zoom line search), ``'adam'`` and ``'sgd'`` (optax): these
  handle the [0, 1] bounds of phase fields by projection (clipping) after each step.

``jax.vmap`` over keys gives an ensemble (:func:`reconstruct_ensemble`).

References:
    SHSH-MCR paper (mcr-shsh), §2.1 eqs. 2-4, §3.1 (L-BFGS-B), §3.2.1 (multigrid), appendix C
    (optimizer comparison), appendix D (seed ensembles); Seibert et al., Acta Mater. 227 (2022).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmicro import _validate
from jaxmicro.orientations import quat_to_euler, random_quats, to_fundamental_zone
from jaxmicro.reconstruct.lbfgsb import minimize_lbfgsb
from jaxmicro.reconstruct.spec import Spec, Target, check_target, loss

OPTIMIZERS = ("lbfgsb", "jaxopt", "lbfgs", "adam", "sgd")


class Result(NamedTuple):
    """Outcome of a reconstruction (a pytree; batched along a leading axis for ensembles).

    Attributes:
        field: (*shape, C) final variables: phase indicators in [0, 1], or unnormalized
            quaternions (C = 4; see :func:`orientations_of`).
        loss_history: (levels * max_iter,) loss after each iteration, coarsest level first
            (first-order optimizers: loss of the iterate each step starts from).
        initial_loss: loss of the random initial field at the coarsest level.
        final_loss: loss of ``field`` at full resolution.
        n_evaluations: loss-and-gradient evaluations, line searches included.

    Losses include the ``extra_loss`` term of :func:`reconstruct` when one is given.
    """

    field: jax.Array
    loss_history: jax.Array
    initial_loss: jax.Array
    final_loss: jax.Array
    n_evaluations: jax.Array


def initial_field(key: jax.Array, shape: tuple[int, ...], spec: Spec, channels: int, dtype=None):
    """Spatially uncorrelated random start: uniform indicators, or uniform orientations."""
    dtype = dtype or jnp.result_type(float)
    if spec.representation == "orientations":
        return random_quats(key, shape, dtype=dtype)
    return jax.random.uniform(key, (*shape, channels), dtype=dtype)


def _projection(spec: Spec):
    if spec.representation == "phases":
        return lambda x: jnp.clip(x, 0.0, 1.0)
    return lambda x: x


def minimize(fun, x0, spec: Spec, *, optimizer: str, max_iter: int, learning_rate: float):
    """Runs ``max_iter`` iterations of one optimizer from ``x0``.

    Returns:
        ``(x, history (max_iter,), n_evaluations)``.
    """
    project = _projection(spec)
    if optimizer == "lbfgsb":
        phases = spec.representation == "phases"
        bounds = (0.0, 1.0) if phases else (None, None)
        sol = minimize_lbfgsb(fun, x0, *bounds, max_iter=max_iter, gtol=0.0, ftol=0.0)
        return sol.x, sol.history, sol.n_evaluations

    if optimizer == "jaxopt":
        # jaxopt's L-BFGS-B is not invariant to the scale of the loss: its first step is the
        # raw (projected) gradient. Rescaling the loss so that the initial gradient has an RMS
        # of 0.03 per voxel makes that step small and the run scale-free. Measured on 2D S2
        # and 3D slice problems: RMS 0.01-0.3 all converge; the raw loss stalls (2D) or jumps
        # to the all-zero bound, a stationary point of S2 (3D).
        grad0 = jax.grad(fun)(x0)
        scale = 0.03 / (jnp.sqrt(jnp.mean(grad0**2)) + jnp.finfo(x0.dtype).tiny)
        import jaxopt  # unmaintained: imported only when chosen

        solver = jaxopt.LBFGSB(fun=lambda x: scale * fun(x), maxiter=max_iter, tol=0.0)
        big = jnp.full_like(x0, jnp.inf)
        bounds = (
            (jnp.zeros_like(x0), jnp.ones_like(x0))
            if spec.representation == "phases"
            else (-big, big)
        )

        def step(carry, _):
            x, state = carry
            x_new, state_new = solver.update(x, state, bounds=bounds)
            ok = jnp.isfinite(state_new.value)  # keep the last good iterate if a step fails
            x = jnp.where(ok, x_new, x)
            state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), state_new, state)
            return (x, state), state.value / scale

        state = solver.init_state(x0, bounds=bounds)
        (x, state), history = jax.lax.scan(step, (x0, state), length=max_iter)
        return project(x), history, state.num_fun_eval  # project: rounding leaves ~1e-20 outside

    if optimizer == "lbfgs":
        opt = optax.lbfgs()
    elif optimizer == "adam":
        opt = optax.adam(learning_rate)
    else:
        opt = optax.sgd(learning_rate)
    value_and_grad = jax.value_and_grad(fun)

    def step(carry, _):
        x, state, count = carry
        value, grad = value_and_grad(x)
        if optimizer == "lbfgs":
            updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=fun)
            searched = optax.tree_utils.tree_get(state, "num_linesearch_steps")
            x = project(optax.apply_updates(x, updates))
            count = count + 1 + jnp.asarray(searched, count.dtype)
            return (x, state, count), optax.tree_utils.tree_get(state, "value")
        updates, state = opt.update(grad, state, x)
        return (project(optax.apply_updates(x, updates)), state, count + 1), value

    carry = (x0, opt.init(x0), jnp.zeros((), jnp.int32))
    (x, _, count), history = jax.lax.scan(step, carry, length=max_iter)
    return x, history, count


def reconstruct(
    key: jax.Array,
    target: Target,
    shape: tuple[int, ...],
    spec: Spec,
    *,
    channels: int | None = None,
    optimizer: str = "lbfgsb",
    max_iter: int = 200,
    learning_rate: float = 1e-2,
    init: jax.Array | None = None,
    weights: jax.Array | None = None,
    extra_loss: Callable[[jax.Array], jax.Array] | None = None,
) -> Result:
    """Reconstructs a field whose descriptors match ``target``, coarse to fine.

    The minimized loss is ``loss(field, target, spec) + extra_loss(field)``: the descriptor loss
    of :func:`loss` plus an optional user term, e.g. a penalty on an effective property
    (``jaxmicro.properties``) for inverse design with statistically plausible results.

    Args:
        key: PRNG key for the random initial field.
        target: from :func:`characterize` (a 2D target for a 3D ``shape`` uses the slice loss).
        shape: spatial shape of the reconstruction (2 or 3 axes; static).
        spec: the problem (static); ``spec.levels`` multigrid levels, each ``max_iter``
            iterations, the coarsest at ``shape // 2**(levels - 1)``. Each level's solution is
            upsampled (nearest) to start the next.
        channels: number of phase channels (default: that of the reference; 4 for orientations).
        optimizer: one of ``OPTIMIZERS`` (static).
        max_iter: iterations per level (static).
        learning_rate: for ``'adam'`` and ``'sgd'``.
        init: optional starting field at the coarsest level (overrides ``key``).
        weights: optional (len(spec.descriptors),) weights replacing the spec's, traceable:
            one compilation (and one ``vmap``) serves a weight sweep (see :func:`loss`).
        extra_loss: optional differentiable ``extra_loss(field) -> scalar`` added to the
            descriptor loss at every level (so it sees each level's field, ``(*level_shape, C)``
            variables as in ``Result.field``) and in ``initial_loss``/``final_loss``. Static
            under ``jit`` (pass it by closure or in ``static_argnames``; a new function
            recompiles, and arrays it closes over are constants of the compiled function).

    Returns:
        A :class:`Result`.

    Raises:
        ValueError: ``spec`` is not a :class:`Spec`; ``target`` is not a :class:`Target` (a raw
            descriptor array, say) or was characterized for another problem (representation,
            periodicity, SHSH basis or descriptor options: ``check_target``) or with fewer
            levels; ``shape`` has not 2 or 3 sizes or is too small for the levels; ``max_iter``
            is not an integer >= 1; ``learning_rate`` is not finite and > 0; unknown
            ``optimizer``; ``init`` of the wrong spatial shape; ``extra_loss`` is not a function
            or does not return a scalar.

    References:
        SHSH-MCR paper (mcr-shsh), §2.1, §3.2.1.
    """
    check_target(target, spec)
    if not isinstance(max_iter, numbers.Integral) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(
            f"max_iter: expected an integer >= 1 (iterations per level), got {max_iter!r}"
        )
    if isinstance(learning_rate, numbers.Real) and not 0 < learning_rate < float("inf"):
        raise ValueError(f"learning_rate: expected a finite number > 0, got {learning_rate!r}")
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"shape: expected 2 or 3 spatial sizes, got {shape}")
    if min(shape) // 2 ** (spec.levels - 1) < 2:
        raise ValueError(f"shape: {shape} is too small for {spec.levels} multigrid levels")
    _validate.check_choice(optimizer, "optimizer", OPTIMIZERS)
    if len(target.levels) < spec.levels:
        raise ValueError(
            f"target: has {len(target.levels)} levels, spec asks for {spec.levels}; "
            "characterize with the same spec"
        )
    if channels is None:
        channels = 4 if spec.representation == "orientations" else target.channels
    coarsest = tuple(n // 2 ** (spec.levels - 1) for n in shape)
    x = initial_field(key, coarsest, spec, channels) if init is None else jnp.asarray(init)
    if x.shape[:-1] != coarsest:
        raise ValueError(f"init: expected spatial shape {coarsest}, got {x.shape[:-1]}")
    if extra_loss is not None and not callable(extra_loss):
        raise ValueError(f"extra_loss: expected a function of the field, got {extra_loss!r}")

    def objective(field, level):
        value = loss(field, target, spec, level=level, weights=weights)
        if extra_loss is None:
            return value
        extra = jnp.asarray(extra_loss(field))
        if extra.shape != ():
            raise ValueError(f"extra_loss: expected a scalar, got shape {extra.shape}")
        return value + extra.astype(value.dtype)

    initial = objective(x, spec.levels - 1)
    histories, evaluations = [], jnp.zeros((), jnp.int32)
    for level in reversed(range(spec.levels)):
        level_shape = tuple(n // 2**level for n in shape)
        if x.shape[:-1] != level_shape:
            x = jax.image.resize(x, (*level_shape, x.shape[-1]), method="nearest")
        fun = partial(objective, level=level)
        x, history, count = minimize(
            fun, x, spec, optimizer=optimizer, max_iter=max_iter, learning_rate=learning_rate
        )
        histories.append(history)
        evaluations = evaluations + count
    final = objective(x, 0)
    return Result(x, jnp.concatenate(histories), initial, final, evaluations)


def reconstruct_ensemble(
    keys: jax.Array,
    target: Target,
    shape: tuple[int, ...],
    spec: Spec,
    *,
    mesh: jax.sharding.Mesh | None = None,
    **kwargs,
) -> tuple[Result, jax.Array]:
    """Reconstructions for many keys in one ``vmap``, and the index of the best by final loss.

    Args:
        keys: (K,) PRNG keys.
        target, shape, spec, kwargs: as in :func:`reconstruct`.
        mesh: split the starts over this mesh's ``'batch'`` axis (K is padded with copies of the
            last key to a multiple of its size; the copies are dropped). A mesh over the devices
            of several processes (``jax.distributed``) splits them across processes: every
            process passes the same keys and target and gets every start's result, replicated.
            Start ``k`` depends only on ``keys[k]``.

    Returns:
        ``(results, best)``: a :class:`Result` with a leading axis K, and the argmin of
        ``results.final_loss``.

    References:
        SHSH-MCR paper (mcr-shsh), §3.3 and appendix D (seed ensembles, post-selection).
    """
    count = keys.shape[0]
    if mesh is not None:
        from jax.sharding import NamedSharding, PartitionSpec

        pad = -count % mesh.size
        if pad:
            keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, axis=0)])
        keys = jax.lax.with_sharding_constraint(keys, NamedSharding(mesh, PartitionSpec("batch")))
    results = jax.vmap(lambda k: reconstruct(k, target, shape, spec, **kwargs))(keys)
    if mesh is not None:
        everywhere = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        results = jax.lax.with_sharding_constraint(results, everywhere)
        results = jax.tree.map(lambda x: x[:count], results)
    return results, jnp.argmin(results.final_loss)


def orientations_of(field: jax.Array, symmetry: str) -> tuple[jax.Array, jax.Array]:
    """Unit quaternions in the fundamental zone and their Bunge Euler angles (radians).

    Args:
        field: (*shape, 4) unnormalized quaternion variables of an orientation reconstruction.
        symmetry: crystal symmetry of the reconstruction.

    Returns:
        ``(quats (*shape, 4), euler (*shape, 3))``.
    """
    q = field / jnp.linalg.norm(field, axis=-1, keepdims=True)
    q = to_fundamental_zone(q, symmetry)
    return q, quat_to_euler(q)
