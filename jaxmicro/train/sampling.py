"""Sampling from a trained run, sharded over the devices, and preview images.

``generate`` reads the network through ``denoiser`` (which constrains the sampler's state to be
split over the mesh's ``'batch'`` axis), so the whole sampler (one ``lax.scan``) runs
data-parallel. On several processes the mesh spans all of them: each process's devices draw
their rows of the global batch, and the rows are all-gathered at the end, so every process
returns the same array as one process with the same key and the same number of devices (write
it from process 0 only).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxmicro.diffusion import ddim_sample, ddpm_sample
from jaxmicro.train.config import (
    FAST_COMPILE,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    make_schedule,
)
from jaxmicro.train.parallel import gather

__all__ = ["generate", "field_images", "save_grid"]


def generate(
    key: jax.Array,
    model,
    num_samples: int,
    *,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    conditions: dict | None = None,
    guidance_scale: float | None = None,
    mesh: jax.sharding.Mesh | None = None,
    clip_x0: tuple[float, float] | None = (-1.0, 1.0),
    decode: bool = True,
    batch_size: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """``(num_samples, *shape, C)`` samples of a ``Model`` (see ``load_model``).

    The network is read through ``denoiser`` (parameterization, learned variance, conditions,
    classifier-free guidance, sharding); a latent model's samples are decoded by its autoencoder.

    Args:
        key: PRNG key; sample ``i`` depends only on ``key`` and ``i``.
        model: a ``jaxmicro.train.Model``.
        num_samples: number of samples.
        sampler: ``'ddim'`` (``steps`` steps) or ``'ddpm'`` (all ``T`` steps; a learned variance
            is used).
        steps: DDIM steps.
        eta: DDIM stochasticity, finite and ``>= 0``.
        conditions: network conditions (``Model.conditions(...)``), one sample's entry or
            ``(num_samples, ...)``; None: unconditional.
        guidance_scale: classifier-free guidance weight (see ``denoiser``).
        mesh: device mesh; ``num_samples`` is padded up to a multiple of its size and the
            padding dropped.
        clip_x0: bounds of the ``x_0`` estimates (data lie in [-1, 1]; not applied to latents).
        decode: decode a latent model's samples (False: return the latents).
        batch_size: samples per sampler call (None: all at once); chunk ``c`` starting at
            sample ``i`` uses ``fold_in(key, i)``.
        progress: show a progress bar over the chunks.

    Returns:
        float32 NumPy array, the whole of it on every process of a multi-process run (every
        process must call ``generate`` with the same arguments).

    Raises:
        ValueError: unknown sampler, ``num_samples < 1``, non-finite or negative ``eta``, or
            ``steps`` outside ``[1, T]``.
    """
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler: expected 'ddim' or 'ddpm', got {sampler!r}")
    n = int(num_samples)
    if n < 1:
        raise ValueError(f"num_samples: expected a positive number of samples, got {num_samples}")
    if batch_size is not None and n > int(batch_size):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size: expected a positive count, got {batch_size}")
        from tqdm.auto import tqdm

        options = dict(
            sampler=sampler,
            steps=steps,
            eta=eta,
            guidance_scale=guidance_scale,
            mesh=mesh,
            clip_x0=clip_x0,
            decode=decode,
        )
        chunks = []
        for start in tqdm(range(0, n, int(batch_size)), disable=not progress, desc="sampling"):
            stop = min(n, start + int(batch_size))
            part = None
            if conditions is not None:
                part = {k: _rows(np.asarray(v), k, start, stop, n) for k, v in conditions.items()}
            chunks.append(
                generate(
                    jax.random.fold_in(key, start), model, stop - start, conditions=part, **options
                )
            )
        return np.concatenate(chunks)
    if not np.isfinite(eta) or eta < 0:
        raise ValueError(f"eta: expected a finite value >= 0, got {eta}")
    config = model.config
    if sampler == "ddim" and not 1 <= int(steps) <= config.num_diffusion_steps:
        raise ValueError(f"steps: expected 1..{config.num_diffusion_steps}, got {steps}")
    size = 1 if mesh is None else mesh.size
    padded = -(-n // size) * size
    if conditions is not None:
        conditions = {k: _pad(np.asarray(v), n, padded, k) for k, v in conditions.items()}
    learned = config.model.learned_variance
    use_variance = sampler == "ddpm" and learned
    if model.autoencoder is not None:
        clip_x0 = None  # latents are not bounded
    shape = model.sample_shape

    graphdef, state = nnx.split(model.network)
    run = _compiled_sampler(
        graphdef,
        config_key(config),
        tuple(shape),
        padded,
        sampler,
        int(steps),
        float(eta),
        None if guidance_scale is None else float(guidance_scale),
        mesh,
        None if clip_x0 is None else tuple(clip_x0),
        use_variance,
    )
    x = run(state, key, conditions)
    if decode and model.autoencoder is not None:
        x = model.autoencoder.decode(x)
    x = gather(x).astype(np.float32)[:n]
    if not np.all(np.isfinite(x)):
        raise FloatingPointError("generate: the sampler produced non-finite values")
    return x


# What a sampler reads from a training config: the network, the schedule, how its output is read.
_SAMPLER_FIELDS = (
    "model",
    "schedule",
    "num_diffusion_steps",
    "beta_start",
    "beta_end",
    "parameterization",
    "fast_compile",
)


def config_key(config) -> str:
    """A hashable key of what a sampler reads from a training config, for caches of compiled
    programs: the sorted JSON of a ``TrainConfig`` that keeps ``config``'s network, schedule,
    parameterization and ``fast_compile`` and the defaults elsewhere, so runs that differ only in
    name, data, conditions' names or optimizer share their compiled samplers."""
    kept = TrainConfig(**{name: getattr(config, name) for name in _SAMPLER_FIELDS})
    return json.dumps(config_to_dict(kept), sort_keys=True, default=str)


def network_eps_fn(graphdef, state, config_json: str, **options):
    """``(eps_fn, schedule)`` of the network ``nnx.merge(graphdef, state)`` trained with a
    config whose :func:`config_key` is ``config_json``: ``jaxmicro.train.denoiser`` with its
    parameterization and variance, ``options`` passed on (conditions, guidance, mesh, ...).
    Built inside the jitted programs that take the network state as an argument."""
    from jaxmicro.train.denoiser import denoiser, unet_apply

    config = config_from_dict(TrainConfig, json.loads(config_json))
    schedule = make_schedule(config, dtype=jnp.float32)
    eps_fn = denoiser(
        unet_apply(nnx.merge(graphdef, state)),
        schedule,
        parameterization=config.parameterization,
        learned_variance=config.model.learned_variance,
        **options,
    )
    return eps_fn, schedule


@functools.cache
def _compiled_sampler(
    graphdef,
    config_json,
    shape,
    num_samples,
    sampler,
    steps,
    eta,
    guidance_scale,
    mesh,
    clip_x0,
    use_variance,
):
    """The jitted sampler ``run(network_state, key, conditions)`` of one setting.

    Cached on the network's structure, the config's ``config_key`` and the settings (not on
    parameter values), so repeated ``generate`` calls (chunks, condition values, checkpoints, runs
    of one architecture and schedule) compile once.
    """
    fast = config_from_dict(TrainConfig, json.loads(config_json)).fast_compile

    def run(state, key, conditions):
        eps_fn, schedule = network_eps_fn(
            graphdef,
            state,
            config_json,
            conditions=conditions,
            guidance_scale=guidance_scale,
            mesh=mesh,
            variance_channels=use_variance,
        )
        options = dict(num_samples=num_samples, clip_x0=clip_x0)
        if sampler == "ddpm":
            return ddpm_sample(
                key, eps_fn, schedule, shape, learned_variance=use_variance, **options
            )
        return ddim_sample(key, eps_fn, schedule, shape, num_steps=steps, eta=eta, **options)

    return jax.jit(run, compiler_options=FAST_COMPILE if fast else None)


def _rows(value: np.ndarray, name: str, start: int, stop: int, n: int) -> np.ndarray:
    """Rows ``start:stop`` of a per-sample condition (unbatched entries kept)."""
    per_sample = 1 if name == "scalars" else 0
    if value.ndim == per_sample:
        return value
    if value.shape[0] != n:
        raise ValueError(f"conditions[{name!r}]: expected {n} rows, got shape {value.shape}")
    return value[start:stop]


def _pad(value: np.ndarray, n: int, padded: int, name: str) -> np.ndarray:
    """A per-sample condition of ``n`` rows padded to ``padded`` rows (unbatched entries kept)."""
    per_sample = 1 if name == "scalars" else 0
    if value.ndim == per_sample:
        return value
    if value.shape[0] != n:
        raise ValueError(f"conditions[{name!r}]: expected {n} rows, got shape {value.shape}")
    return np.concatenate([value, np.repeat(value[-1:], padded - n, axis=0)])


def field_images(x: np.ndarray) -> np.ndarray:
    """Displayable images ``(n, H, W)`` or ``(n, H, W, 3)`` in [0, 1] of fields in [-1, 1].

    3D fields show their middle slice along the last spatial axis; 3-channel fields show as RGB,
    others by their first channel.
    """
    x = np.asarray(x)
    if x.ndim == 5:
        x = x[:, :, :, x.shape[3] // 2]
    img = x if x.shape[-1] == 3 else x[..., 0]
    return np.clip((img + 1.0) / 2.0, 0.0, 1.0)


def save_grid(x: np.ndarray, path: str | Path, *, columns: int | None = None) -> None:
    """Writes the fields ``(n, *spatial, C)`` as one PNG grid (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = field_images(x)
    n = img.shape[0]
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.5 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(img[i], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=100)
    plt.close(fig)
