"""Sampling from a trained run, sharded over the devices, and preview images.

``generate`` wraps the network as ``eps_fn`` and constrains its input to be split over the mesh's
``'batch'`` axis, so the whole sampler (one ``lax.scan``) runs data-parallel.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro.diffusion import ddim_sample, ddpm_sample
from jaxmicro.train.config import FAST_COMPILE, TrainConfig, make_schedule
from jaxmicro.train.parallel import batch_sharded

__all__ = ["generate", "field_images", "save_grid"]


def generate(
    key: jax.Array,
    model,
    config: TrainConfig,
    n: int,
    *,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    mesh: jax.sharding.Mesh | None = None,
    clip_x0: tuple[float, float] | None = (-1.0, 1.0),
) -> np.ndarray:
    """Draws ``n`` samples ``(n, *shape, C)`` from ``model`` (an unconditional ``UNet``).

    Args:
        key: PRNG key; sample ``i`` depends only on ``key`` and ``i``.
        model: the UNet (usually with EMA parameters).
        config: the run's configuration (schedule, data shape, variance).
        n: number of samples.
        sampler: ``'ddim'`` (``steps`` steps) or ``'ddpm'`` (all ``T`` steps).
        steps: DDIM steps.
        eta: DDIM stochasticity.
        mesh: device mesh; ``n`` is padded up to a multiple of its size and the padding dropped.
        clip_x0: bounds of the ``x_0`` estimates (data lie in [-1, 1]).

    Returns:
        float32 NumPy array.
    """
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler: expected 'ddim' or 'ddpm', got {sampler!r}")
    schedule = make_schedule(config, dtype=jnp.float32)
    shape = (*config.data.shape, config.model.in_channels)
    size = 1 if mesh is None else mesh.size
    batch = -(-n // size) * size
    learned = config.model.learned_variance

    def eps_fn(x, t):
        if mesh is not None:
            x = jax.lax.with_sharding_constraint(x, batch_sharded(mesh))
        return model(x, t)

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE if config.fast_compile else None)
    def run(key):
        if sampler == "ddpm":
            return ddpm_sample(
                key,
                eps_fn,
                schedule,
                shape,
                batch=batch,
                variance="learned" if learned else "small",
                clip_x0=clip_x0,
            )
        return ddim_sample(
            key,
            eps_fn,
            schedule,
            shape,
            batch=batch,
            num_steps=steps,
            eta=eta,
            learned_variance=learned,
            clip_x0=clip_x0,
        )

    return np.asarray(run(key), np.float32)[:n]


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
