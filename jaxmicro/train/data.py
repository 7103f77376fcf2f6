"""Training data: an in-memory dataset read by global position, and its synthetic source.

A run reads examples in a fixed order that depends only on the dataset seed: position ``p`` is
example ``perm_e[p mod N]`` of epoch ``e = p // N``. The position is saved with each checkpoint,
so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro.train.config import FAST_COMPILE, DataConfig

__all__ = ["ArrayDataset", "boundary_field", "voronoi_boundaries", "make_dataset"]


class ArrayDataset:
    """Fields ``(N, *spatial, C)`` read in seeded, per-epoch shuffled order."""

    def __init__(self, data: np.ndarray, *, seed: int = 0):
        data = np.asarray(data)
        if data.ndim < 3:
            raise ValueError(f"data: expected (N, *spatial, C), got shape {data.shape}")
        self.data, self.seed = data, int(seed)

    def __len__(self) -> int:
        return self.data.shape[0]

    @functools.lru_cache(maxsize=4)  # noqa: B019 (a cache of a pure function of the epoch)
    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self))

    def batch(self, position: int, size: int) -> np.ndarray:
        """The ``size`` examples at global positions ``position .. position + size - 1``."""
        pos = position + np.arange(size)
        n = len(self)
        idx = np.array([self._permutation(int(p // n))[p % n] for p in pos])
        return self.data[idx]


def boundary_field(ids: jax.Array, *, periodic: bool = True) -> jax.Array:
    """Grain-boundary indicator of a label map: +1 where a face neighbour differs, -1 elsewhere.

    Args:
        ids: integer grain IDs, shape ``spatial`` (2D or 3D).
        periodic: neighbours wrap around (else the outer faces are not boundaries).

    Returns:
        ``(*spatial, 1)`` float field in {-1, +1}; boundaries are two voxels wide (both sides).
    """
    edge = jnp.zeros(ids.shape, bool)
    for axis in range(ids.ndim):
        for shift in (1, -1):
            other = jnp.roll(ids, shift, axis=axis)
            differs = other != ids
            if not periodic:
                index = jnp.arange(ids.shape[axis])
                inside = index != (0 if shift == 1 else ids.shape[axis] - 1)
                differs = differs & inside.reshape((-1,) + (1,) * (ids.ndim - axis - 1))
            edge = edge | differs
    return jnp.where(edge, 1.0, -1.0)[..., None]


def voronoi_boundaries(config: DataConfig) -> np.ndarray:
    """Synthetic dataset of periodic Voronoi grain-boundary maps.

    Example ``i`` uses ``fold_in(key(seed), i)`` and ``n_grains[i mod len(n_grains)]`` grains.

    Returns:
        ``(num_examples, *shape, 1)`` float32 array in {-1, +1}.

    References:
        PolyCrysDiff §4.1 (Voronoi tessellations with seed regularity 0.5).
    """
    from jaxmicro.synth import voronoi

    key = jax.random.key(config.seed)
    out = np.empty((config.num_examples, *config.shape, 1), np.float32)
    for j, n in enumerate(config.n_grains):
        idx = np.arange(j, config.num_examples, len(config.n_grains))
        if idx.size == 0:
            continue

        def one(i, n=n):
            ids = voronoi(jax.random.fold_in(key, i), config.shape, n, regularity=config.regularity)
            return boundary_field(ids)

        generate = jax.jit(jax.vmap(one), compiler_options=FAST_COMPILE)  # runs once
        out[idx] = np.asarray(generate(jnp.asarray(idx)), np.float32)
    return out


def make_dataset(config: DataConfig) -> ArrayDataset:
    """The dataset described by ``config``."""
    if config.kind == "voronoi_boundaries":
        data = voronoi_boundaries(config)
    elif config.kind == "npy":
        data = np.load(config.path, mmap_mode="r")
    else:
        raise ValueError(f"data.kind: expected 'voronoi_boundaries' or 'npy', got {config.kind!r}")
    if data.shape[1:-1] != tuple(config.shape):
        raise ValueError(
            f"data: fields have spatial shape {data.shape[1:-1]}, config says {config.shape}"
        )
    return ArrayDataset(data, seed=config.seed)
