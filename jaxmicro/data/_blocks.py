"""Patches of larger volumes: GrainPaint's aligned + boundary block scheme and random crops."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def grainpaint_blocks(
    shape: Sequence[int],
    block: int = 32,
    *,
    n_boundary: int | None = 56,
    seed: int = 0,
) -> np.ndarray:
    """Corners of GrainPaint's training blocks: an aligned grid plus blocks across its boundaries.

    GrainPaint cut each 100^3 SPPARKS volume into the 27 non-overlapping 32^3 blocks that fit
    (3 per axis) plus 56 blocks "centered on the boundaries between the first 27", 83 in all; the
    paper calls the 56 arbitrary and does not list them. Here the aligned blocks sit at
    ``floor(shape / block)`` evenly spaced corners per axis (spanning the volume), and the boundary
    candidates are all blocks whose corner is, along at least one axis, halfway between two aligned
    corners (centred on a face, edge or vertex where aligned blocks meet: 98 candidates for 3 per
    axis in 3D). ``n_boundary`` of them are drawn without replacement (NumPy, ``seed``); ``None``
    keeps all.

    Args:
        shape: volume shape (2 or 3 sizes), each at least ``block``.
        block: block edge length.
        n_boundary: boundary blocks to keep (at most the number of candidates).
        seed: seed of the choice of boundary blocks.

    Returns:
        Block corners, int64 array of shape (n_aligned + n_boundary, d): aligned ones first.

    References: GrainPaint (Hoffman et al. 2025) §2.4 (27 + 56 blocks per volume).
    """
    shape = tuple(int(s) for s in shape)
    if min(shape) < block:
        raise ValueError(f"shape: every size must be at least block={block}, got {shape}")
    aligned, halfway = [], []
    for size in shape:
        count = size // block
        corners = np.round(np.linspace(0, size - block, count)).astype(np.int64)
        aligned.append(corners)
        halfway.append(np.round(0.5 * (corners[1:] + corners[:-1])).astype(np.int64))
    grid = np.array(list(itertools.product(*aligned)), np.int64)
    candidates = [
        corner
        for choice in itertools.product((0, 1), repeat=len(shape))
        if any(choice)
        for corner in itertools.product(
            *[(h if c else a) for a, h, c in zip(aligned, halfway, choice, strict=True)]
        )
    ]
    candidates = np.array(candidates, np.int64).reshape(-1, len(shape))
    if n_boundary is not None:
        if n_boundary > len(candidates):
            raise ValueError(
                f"n_boundary: at most {len(candidates)} boundary blocks fit, got {n_boundary}"
            )
        pick = np.random.default_rng(seed).choice(len(candidates), n_boundary, replace=False)
        candidates = candidates[np.sort(pick)]
    return np.concatenate([grid, candidates])


def extract_blocks(x: jax.Array, corners, size: Sequence[int]) -> jax.Array:
    """Blocks of ``x`` at ``corners`` (jittable, vmapped dynamic slices).

    Args:
        x: array of shape (*spatial, *rest); the blocks cut the leading ``len(size)`` axes.
        corners: int array of shape (n, d) with d = len(size); blocks must lie inside ``x``.
        size: block shape (static).

    Returns:
        Array of shape (num_samples, *size, *rest).
    """
    size = tuple(int(s) for s in size)
    corners = jnp.asarray(corners)
    rest = x.shape[len(size) :]

    def cut(c):
        start = tuple(c) + (0,) * len(rest)
        return jax.lax.dynamic_slice(x, start, size + rest)

    return jax.vmap(cut)(corners)


def random_crops(
    key: jax.Array,
    x: jax.Array,
    size: Sequence[int],
    num_samples: int,
    *,
    periodic: bool = False,
) -> jax.Array:
    """``num_samples`` crops of shape ``size`` at uniform random corners (jittable).

    Args:
        key: a ``jax.random.key``.
        x: array of shape (*spatial, *rest); crops cut the leading ``len(size)`` axes.
        size: crop shape (static), at most ``x``'s spatial shape.
        num_samples: number of crops (static).
        periodic: corners anywhere, crops wrap around (periodic volumes); otherwise crops lie
            inside.

    Returns:
        Array of shape (num_samples, *size, *rest).

    References: GrainPaint §3.3 (40 random 32^3 cubes per 100^3 volume).
    """
    size = tuple(int(s) for s in size)
    spatial = x.shape[: len(size)]
    if any(s > m for s, m in zip(size, spatial, strict=True)):
        raise ValueError(f"size: crops {size} do not fit in spatial shape {spatial}")
    high = jnp.asarray(
        spatial if periodic else [m - s + 1 for m, s in zip(spatial, size, strict=True)]
    )
    corners = jax.random.randint(key, (num_samples, len(size)), 0, high)
    if not periodic:
        return extract_blocks(x, corners, size)

    def crop(c):
        index = tuple(
            ((c[a] + jnp.arange(s)) % m).reshape((1,) * a + (s,) + (1,) * (len(size) - 1 - a))
            for a, (s, m) in enumerate(zip(size, spatial, strict=True))
        )
        return x[index]

    return jax.vmap(crop)(corners)
