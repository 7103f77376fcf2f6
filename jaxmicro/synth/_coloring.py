"""Grain adjacency graphs, proper colourings of them, and the RGB encoding of coloured grains.

PolyCrysDiff encodes each grain by one of ten fixed RGB colours chosen so that touching grains
differ. Here the adjacency graph comes from face neighbours of the voxel grid (periodic-aware), it
is coloured by DSATUR, and when DSATUR needs more colours than allowed a tabu search (TabuCol)
repairs the colouring within the budget. The graph work is plain NumPy: it is a sequential graph
algorithm, not an array kernel.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro._grid import face_pairs


def grain_adjacency(ids, *, periodic: bool = True) -> np.ndarray:
    """Pairs of grains that share a voxel face.

    Args:
        ids: integer grain IDs, shape (*spatial), 2D or 3D.
        periodic: also pair the grains across opposite faces of the box.

    Returns:
        Unique pairs ``(a, b)`` with ``a < b``, int64 array of shape (E, 2), sorted.
    """
    ids = np.asarray(ids)
    _validate.check_ndim(ids, "ids", (2, 3), "a 2D or 3D grain-ID field")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids: expected integer grain IDs, got dtype {ids.dtype}")
    pairs = np.stack(face_pairs(ids, periodic), axis=1).astype(np.int64)
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    base = int(ids.max()) + 1 if ids.size else 1
    codes = np.unique(pairs[:, 0] * base + pairs[:, 1])
    return np.stack([codes // base, codes % base], axis=1)


def _neighbour_lists(n: int, edges: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(np.concatenate([edges[:, 0], edges[:, 1]]), kind="stable")
    other = np.concatenate([edges[:, 1], edges[:, 0]])[order]
    counts = np.bincount(np.concatenate([edges[:, 0], edges[:, 1]]), minlength=n)
    return np.split(other, np.cumsum(counts)[:-1])


def _dsatur(n: int, nbrs: list[np.ndarray]) -> np.ndarray:
    """DSATUR: colour the vertex with most distinct neighbour colours next (ties: degree)."""
    colors = np.full(n, -1, np.int64)
    seen = [set() for _ in range(n)]
    degree = np.array([len(x) for x in nbrs])
    for _ in range(n):
        uncoloured = np.flatnonzero(colors < 0)
        sat = np.array([len(seen[v]) for v in uncoloured])
        v = uncoloured[np.lexsort((-degree[uncoloured], -sat))[0]]
        c = 0
        while c in seen[v]:
            c += 1
        colors[v] = c
        for u in nbrs[v]:
            seen[u].add(c)
    return colors


def _tabucol(
    colors: np.ndarray,
    edges: np.ndarray,
    nbrs: list[np.ndarray],
    k: int,
    rng: np.random.Generator,
    max_iter: int,
) -> np.ndarray:
    """Tabu search for a proper k-colouring, started from ``colors`` folded into k colours.

    References: Hertz & de Werra, Computing 39, 345 (1987) (TabuCol).
    """
    n = colors.shape[0]
    colors = np.where(colors < k, colors, rng.integers(0, k, n))
    gamma = np.zeros((n, k), np.int64)  # gamma[v, c]: neighbours of v coloured c
    np.add.at(gamma, (edges[:, 0], colors[edges[:, 1]]), 1)
    np.add.at(gamma, (edges[:, 1], colors[edges[:, 0]]), 1)
    tabu = np.zeros((n, k), np.int64)
    never = np.iinfo(np.int64).max // 2
    conflicts = int(np.sum(gamma[np.arange(n), colors])) // 2
    best, best_conflicts = colors.copy(), conflicts
    for it in range(max_iter):
        if conflicts == 0:
            return colors
        bad = np.flatnonzero(gamma[np.arange(n), colors] > 0)
        delta = gamma[bad] - gamma[bad, colors[bad]][:, None]
        delta[np.arange(bad.size), colors[bad]] = never
        allowed = (tabu[bad] <= it) | (conflicts + delta < best_conflicts)
        delta = np.where(allowed, delta, never)
        if delta.min() == never:  # every move tabu (or no other colour): wait for tenures to end
            continue
        choices = np.argwhere(delta == delta.min())
        i, c = choices[rng.integers(len(choices))]
        v, old = bad[i], colors[bad[i]]
        conflicts += int(delta[i, c])
        colors[v] = c
        gamma[nbrs[v], old] -= 1
        gamma[nbrs[v], c] += 1
        tabu[v, old] = it + int(0.6 * conflicts) + int(rng.integers(10)) + 1
        if conflicts < best_conflicts:
            best, best_conflicts = colors.copy(), conflicts
    return best


def color_grains(
    ids,
    n_colors: int = 10,
    *,
    periodic: bool = True,
    n_grains: int | None = None,
    seed: int = 0,
    max_iter: int = 20000,
) -> np.ndarray:
    """Colour index per grain such that face-adjacent grains differ, within ``n_colors`` colours.

    DSATUR first; if it needs more than ``n_colors`` colours, a tabu search (deterministic for a
    given ``seed``) repairs it. If no proper colouring is found in ``max_iter`` moves, the one with
    the fewest equal-coloured neighbours is returned with a ``UserWarning``.

    Args:
        ids: integer grain IDs in ``0..n_grains-1``, shape (*spatial), 2D or 3D.
        n_colors: colour budget (PolyCrysDiff: 10).
        periodic: grains touching across opposite faces count as neighbours.
        n_grains: number of grains (default ``ids.max() + 1``); absent IDs get colour 0.
        seed: seed of the tabu search's tie-breaking.
        max_iter: tabu search moves.

    Returns:
        Colour index per grain, int32 array of shape (n_grains,), values in ``0..n_colors-1``.

    References: PolyCrysDiff §4.1 (ten colours, neighbours distinct); Brelaz, Commun. ACM 22, 251
    (1979) (DSATUR); Hertz & de Werra 1987 (TabuCol).
    """
    ids = np.asarray(ids)
    if int(n_colors) < 1:
        raise ValueError(f"n_colors: expected a positive count, got {n_colors}")
    edges = grain_adjacency(ids, periodic=periodic)
    n = int(ids.max()) + 1 if n_grains is None else int(n_grains)
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise ValueError(f"ids: grain IDs must lie in 0..{n - 1}, got [{ids.min()}, {ids.max()}]")
    nbrs = _neighbour_lists(n, edges)
    colors = _dsatur(n, nbrs)
    if colors.max(initial=0) >= n_colors:
        rng = np.random.default_rng(seed)
        colors = _tabucol(colors, edges, nbrs, int(n_colors), rng, max_iter)
        clashes = int(np.sum(colors[edges[:, 0]] == colors[edges[:, 1]]))
        if clashes:
            warnings.warn(
                f"color_grains: no proper {n_colors}-colouring found; {clashes} neighbouring "
                "pairs share a colour",
                stacklevel=2,
            )
    return colors.astype(np.int32)


def palette(n_colors: int = 10) -> np.ndarray:
    """``n_colors`` well separated RGB colours in [0, 1] (deterministic).

    Greedy farthest-point selection on a 6 x 6 x 6 grid of the RGB cube, started at black, then
    refined by moving each colour in turn to the grid point farthest from all the others (20
    rounds). For 10 colours every pair is at least 0.63 apart (the cube's diagonal is 1.73).

    Returns:
        RGB values, float array of shape (n_colors, 3).
    """
    if not 1 <= int(n_colors) <= 216:
        raise ValueError(f"n_colors: expected 1..216 colours, got {n_colors}")
    levels = np.linspace(0.0, 1.0, 6)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    gaps = np.linalg.norm(grid[:, None] - grid[None], axis=-1)
    chosen = [0]
    for _ in range(int(n_colors) - 1):
        chosen.append(int(np.argmax(gaps[:, chosen].min(axis=1))))
    for _ in range(20 if n_colors > 1 else 0):
        for j in range(len(chosen)):
            others = chosen[:j] + chosen[j + 1 :]
            chosen[j] = int(np.argmax(gaps[:, others].min(axis=1)))
    return grid[chosen]


def ids_to_rgb(ids: jax.Array, colors: jax.Array, rgb: jax.Array) -> jax.Array:
    """RGB image of a coloured grain field: ``rgb[colors[ids]]`` (jittable).

    Args:
        ids: integer grain IDs, shape (*spatial).
        colors: colour index per grain, shape (n_grains,).
        rgb: the palette, shape (n_colors, 3) (e.g. ``palette(10)``).

    Returns:
        Channels-last image, shape (*spatial, 3), dtype of ``rgb``.
    """
    _validate.check_trailing(rgb, "rgb", 3)
    return _ids_to_rgb(jnp.asarray(ids), jnp.asarray(colors), jnp.asarray(rgb))


@jax.jit
def _ids_to_rgb(ids: jax.Array, colors: jax.Array, rgb: jax.Array) -> jax.Array:
    return rgb[colors[ids]]
