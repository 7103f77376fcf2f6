"""Inpainting with an unconditional denoiser: RePaint and its step lists.

A sampler here walks a *path of noise levels*: level ``n`` in ``0 .. T`` holds ``x`` distributed as
``q(x_n | x_0) = N(sqrt(ab_n) x_0, (1 - ab_n) I)`` with ``ab_0 = 1`` (clean data) and
``ab_n = schedule.alpha_bars[n - 1]``, so level ``n`` is the schedule's step ``t = n - 1`` and level
``T`` is the start of sampling. A move to a lower level is a reverse step (one denoiser call at
``t = n - 1``; DDIM's update, which for ``eta = 1`` and one level is the DDPM posterior of Ho et al.
eq. 7); a move to a higher level re-noises with the forward kernel
``q(x_m | x_n) = N(sqrt(ab_m / ab_n) x_n, (1 - ab_m / ab_n) I)``, which for one level is
``N(sqrt(alpha_n) x_n, beta_n I)`` with ``beta_n = schedule.betas[n]`` (GrainPaint eq. 16).

RePaint conditions on known voxels by overwriting them after every reverse step with a fresh
sample of ``q`` at the level just reached, and harmonizes the unknown voxels by going back up
``jump`` levels and down again (``resample - 1`` times per jump point). The path is built in NumPy
(``repaint_schedule``) and run in one ``lax.scan``.

References:
    Lugmayr et al., RePaint, CVPR 2022, Algorithm 1 and §4.2 (jump length j, resamplings r);
    Hoffman et al., GrainPaint 2025 (grainpaint.txt) §2.3 eqs. 12-16, §2.4; Song, Meng & Ermon,
    DDIM, ICLR 2021, eq. 12.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.diffusion import _compiled
from jaxmicro.diffusion.schedule import Schedule, x0_from_eps

__all__ = ["path_sample", "repaint_sample", "repaint_schedule"]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


def repaint_schedule(
    num_levels: int,
    *,
    resample: int = 10,
    jump: int = 1,
    plain_tail: int = 25,
    num_steps: int | None = None,
) -> np.ndarray:
    """Noise levels visited by RePaint, from ``num_levels`` down to 0.

    The trajectory is the full one (levels ``num_levels, ..., 0``) or, with ``num_steps``, the
    uniform DDIM sub-trajectory of ``num_steps`` steps (levels ``round(i num_levels / num_steps)``).
    Counting in steps of that trajectory, the jump points are positions
    ``p = max(plain_tail, 1) + k jump`` with ``p + jump <= num_steps``; on arriving at a jump point
    the first ``resample - 1`` times, the path goes back up ``jump`` positions in one forward move
    and descends again. The last ``plain_tail`` reverse steps are therefore never repeated.
    Denoiser calls: ``num_steps + (resample - 1) * jump * (number of jump points)``.

    With ``num_levels = 250, resample = 10, jump = 1, plain_tail = 25`` that is
    ``250 + 9 * 225 = 2275`` calls. GrainPaint's code makes 2,489 for what its paper calls 10
    resamplings: its loop re-runs each step 10 times after the first pass (``resample = 11`` here,
    2,500 calls) and never calls the model at the noisiest step ``t = T - 1`` (11 calls fewer).

    Args:
        num_levels: number of diffusion steps ``T`` of the path (the start level).
        resample: passes through each resampled step (``r`` of Lugmayr et al.; 1 = no resampling).
        jump: positions to go back up at each jump point (``j``).
        plain_tail: final trajectory steps without resampling (all of them if it exceeds the
            trajectory).
        num_steps: trajectory length (default ``num_levels``: every level).

    Returns:
        ``(P + 1,)`` int array of levels, first ``num_levels``, last 0; consecutive entries are one
        move. Reverse steps (denoiser calls) are the entries where the level decreases.

    References:
        Lugmayr et al., RePaint, CVPR 2022, Algorithm 1 and its jump-length schedule;
        GrainPaint §2.4 (T = 250, 10 resamplings, jump 1, last 25 steps plain).
    """
    levels = _trajectory(num_levels, num_steps)
    steps = len(levels) - 1
    for value, name in ((resample, "resample"), (jump, "jump")):
        if int(value) < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value}")
    if int(plain_tail) < 0:
        raise ValueError(f"plain_tail: expected an integer >= 0, got {plain_tail}")
    first = max(int(plain_tail), 1)
    left = dict.fromkeys(range(first, steps - jump + 1, jump), int(resample) - 1)
    pos, path = steps, [steps]
    while pos > 0:
        pos -= 1
        path.append(pos)
        if left.get(pos, 0) > 0:
            left[pos] -= 1
            pos += jump
            path.append(pos)
    return levels[np.asarray(path)]


def path_sample(
    key: jax.Array,
    eps_fn: EpsFn,
    schedule: Schedule,
    x: jax.Array,
    levels,
    *,
    known: jax.Array | None = None,
    mask: jax.Array | None = None,
    eta: float = 1.0,
) -> jax.Array:
    """Moves ``x`` along a path of noise levels with reverse (denoiser) and forward (noise) steps.

    Args:
        key: PRNG key; sample ``i`` of the batch draws its noise from
            ``fold_in(split(key, B)[i], move)``, so it does not depend on the batch size.
        eps_fn: denoiser ``eps_fn(x, t)`` with ``x`` ``(B, *shape)`` and ``t`` ``(B,)`` int steps.
        schedule: the diffusion schedule (``T`` steps).
        x: ``(B, *shape)`` samples at level ``levels[0]``.
        levels: ``(P + 1,)`` concrete int levels in ``[0, T]`` (e.g. from ``repaint_schedule``).
        known: ``(B, *shape)`` clean values of the known voxels (needed with ``mask``).
        mask: 1 where ``known`` holds, 0 elsewhere (values > 0.5 count as known); shape of
            ``known`` or broadcastable to it. After each reverse step to level ``m`` the known
            voxels are replaced by ``q_sample(known)`` at level ``m`` (at level 0: ``known``
            itself, exactly).
        eta: DDIM stochasticity of reverse steps; 1 gives ancestral (DDPM) sampling, with the
            posterior variance of Ho et al. on a one-level step.

    Returns:
        ``(B, *shape)`` samples at level ``levels[-1]``, dtype of ``x``.

    References:
        Lugmayr et al., RePaint, CVPR 2022, Algorithm 1; GrainPaint eqs. 12-16; DDIM eq. 12.
    """
    path = np.asarray(levels)
    if path.ndim != 1 or path.size < 2 or not np.issubdtype(path.dtype, np.integer):
        raise ValueError(f"levels: expected a 1-D int array of >= 2 levels, got {path!r}")
    if path.min() < 0 or path.max() > schedule.num_steps or np.any(np.diff(path) == 0):
        raise ValueError(
            f"levels: expected levels in [0, {schedule.num_steps}] with no repeated neighbours"
        )
    if (known is None) != (mask is None):
        raise ValueError("known, mask: pass both (inpainting) or neither")
    mask = None if mask is None else jnp.asarray(mask)
    options = dict(levels=tuple(path.tolist()))
    return _compiled.call(_path, eps_fn, options, key, schedule, x, known, mask, eta)


def _path(eps_fn, key, schedule, x, known, mask, eta, *, levels):
    dtype = x.dtype
    alpha_bar = jnp.concatenate([jnp.ones(1, dtype), schedule.alpha_bars.astype(dtype)])
    sample_keys = jax.random.split(key, x.shape[0])
    draws = 1
    if mask is not None:
        keep = jnp.broadcast_to(jnp.asarray(mask) > 0.5, known.shape)
        known = jnp.where(keep, known, 0).astype(dtype)
        draws = 2

    def noise(move):
        def draw(k):
            return jax.random.normal(jax.random.fold_in(k, move), (draws, *x.shape[1:]), dtype)

        z = jax.vmap(draw)(sample_keys)
        return z[:, 0], z[:, -1]

    def reverse(x, n, m, z, z_known):
        ab_n, ab_m = alpha_bar[n], alpha_bar[m]
        eps = eps_fn(x, jnp.full((x.shape[0],), n - 1)).astype(x.dtype)
        x0 = x0_from_eps(x, eps, ab_n)  # 0 at a zero-terminal-SNR start (ab_n = 0)
        var = eta**2 * (1 - ab_m) / (1 - ab_n) * (1 - ab_n / ab_m)
        x = jnp.sqrt(ab_m) * x0 + jnp.sqrt(jnp.maximum(1 - ab_m - var, 0)) * eps
        x = x + jnp.sqrt(var) * z
        if mask is None:
            return x
        return jnp.where(keep, jnp.sqrt(ab_m) * known + jnp.sqrt(1 - ab_m) * z_known, x)

    def forward(x, n, m, z, z_known):
        ratio = alpha_bar[m] / alpha_bar[n]
        return jnp.sqrt(ratio) * x + jnp.sqrt(1 - ratio) * z

    def move(x, step):
        i, n, m = step
        z, z_known = noise(i)
        return jax.lax.cond(m < n, reverse, forward, x, n, m, z, z_known), None

    path = np.asarray(levels, np.int32)
    x, _ = jax.lax.scan(move, x, (np.arange(path.size - 1), path[:-1], path[1:]))
    return x


def repaint_sample(
    key: jax.Array,
    eps_fn: EpsFn,
    schedule: Schedule,
    known: jax.Array,
    mask: jax.Array,
    *,
    resample: int = 10,
    jump: int = 1,
    plain_tail: int = 25,
    num_steps: int | None = None,
    eta: float = 1.0,
) -> jax.Array:
    """Inpaints the unknown voxels of ``known`` with RePaint.

    Starts at level ``T`` from ``mask q_sample(known, T) + (1 - mask) N(0, I)`` and follows
    ``repaint_schedule(T, resample=..., jump=..., plain_tail=..., num_steps=...)``. Jittable with
    ``eps_fn`` and the keyword arguments static.

    Args:
        key: PRNG key (per-sample streams, see ``path_sample``).
        eps_fn: denoiser ``eps_fn(x, t)``, ``x`` ``(B, *shape)``, ``t`` ``(B,)`` int steps.
        schedule: the diffusion schedule the denoiser was trained with (``T`` steps).
        known: ``(B, *shape)`` values; only voxels with ``mask = 1`` are read (others may hold
            anything, NaN included).
        mask: 1 where voxels are known (values > 0.5 count as known); shape of ``known`` or
            broadcastable to it (a different mask per sample allowed).
        resample: passes through each resampled step (Lugmayr's ``r``; 1 = none).
        jump: jump length ``j`` in trajectory steps.
        plain_tail: final trajectory steps without resampling.
        num_steps: run on a uniform DDIM sub-trajectory of this many steps (the fast variant);
            ``jump`` and ``plain_tail`` then count sub-trajectory steps.
        eta: DDIM stochasticity of the reverse steps (1 = DDPM ancestral steps).

    Returns:
        ``(B, *shape)`` samples, dtype of ``known``; equal to ``known`` where ``mask = 1``.

    Raises:
        ValueError: bad shapes, non-finite known voxels or schedule arguments out of range.

    References:
        Lugmayr et al., RePaint, CVPR 2022; GrainPaint §2.3 eqs. 12-16 and §2.4.
    """
    known = _validate.as_float_array(known, "known")
    if known.ndim < 2:
        raise ValueError(f"known: expected (B, *shape) with a batch axis, got shape {known.shape}")
    try:
        jnp.broadcast_shapes(np.shape(mask), known.shape)
    except ValueError as err:
        raise ValueError(
            f"mask: expected a shape broadcastable to known's {known.shape}, got {np.shape(mask)}"
        ) from err
    keep = jnp.broadcast_to(jnp.asarray(mask) > 0.5, known.shape)
    known = jnp.where(keep, known, 0)
    _validate.check_finite(known, "known")
    levels = repaint_schedule(
        schedule.num_steps,
        resample=resample,
        jump=jump,
        plain_tail=plain_tail,
        num_steps=num_steps,
    )
    start_key, key = jax.random.split(key)

    def draw(k):
        return jax.random.normal(k, (2, *known.shape[1:]), known.dtype)

    z = jnp.moveaxis(jax.vmap(draw)(jax.random.split(start_key, known.shape[0])), 1, 0)
    ab = schedule.alpha_bars[-1].astype(known.dtype)
    x = jnp.where(keep, jnp.sqrt(ab) * known + jnp.sqrt(1 - ab) * z[0], z[1])
    return path_sample(key, eps_fn, schedule, x, levels, known=known, mask=keep, eta=eta)


def _trajectory(num_levels: int, num_steps: int | None) -> np.ndarray:
    """Levels ``0 = tau_0 < ... < tau_K = num_levels`` of the (sub-)trajectory."""
    if int(num_levels) < 1:
        raise ValueError(f"num_levels: expected an integer >= 1, got {num_levels}")
    k = int(num_levels) if num_steps is None else int(num_steps)
    if not 1 <= k <= int(num_levels):
        raise ValueError(f"num_steps: expected an integer in [1, {num_levels}], got {num_steps}")
    return np.round(np.linspace(0, int(num_levels), k + 1)).astype(np.int64)
