"""Random sequential addition (RSA) of points with a hard-core distance in a box.

One kernel serves two generators: Voronoi seeds (a hard core sets the regularity of the
tessellation) and non-overlapping disks/spheres (the hard core is the diameter). Candidates are
drawn uniformly, in batches of ``batch``; a candidate is kept when it lies at least ``min_dist``
from every point kept so far and from every earlier candidate of its batch (kept or not, which
makes the batch test vectorized and keeps the result a hard-core process). Distances are measured
in a scaled metric (``scale``, per axis) and, on periodic boxes, by the minimum image.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def displacement(a: jax.Array, b: jax.Array, box: jax.Array, periodic: bool) -> jax.Array:
    """``a - b`` (shapes broadcast, trailing axis d), wrapped to the minimum image if periodic."""
    d = a - b
    return d - box * jnp.round(d / box) if periodic else d


def hard_core_points(
    key: jax.Array,
    box: jax.Array,
    n: int,
    min_dist,
    *,
    scale: jax.Array,
    periodic: bool,
    max_rejections: int,
    relax: bool,
    batch: int = 32,
    n_target=None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Places up to ``n`` points in ``[0, box)`` at least ``min_dist`` apart (RSA).

    Args:
        key: PRNG key; batch ``i`` of candidates uses ``fold_in(key, i)``.
        box: box lengths, shape (d,), float.
        n: number of points wanted (static).
        min_dist: hard-core distance in the scaled metric ``|(a - b) / scale|``.
        scale: per-axis metric scale, shape (d,).
        periodic: minimum-image distances.
        max_rejections: consecutive candidates rejected before the box counts as jammed.
        relax: on jamming, keep further candidates without the hard core (True: always ``n``
          points) or stop (False: fewer points).
        batch: candidates per iteration (static).
        n_target: number of points to place, ``<= n``, may be traced (default ``n``).

    Returns:
        ``(points, count, relaxed)``: points (n, d) (rows ``>= count`` are zero), the number placed,
        and how many were placed without the hard core.
    """
    d = box.shape[0]
    min_d2 = jnp.asarray(min_dist, box.dtype) ** 2
    rows = jnp.arange(n)
    n_target = jnp.int32(n) if n_target is None else jnp.asarray(n_target, jnp.int32)
    earlier = jnp.tril(jnp.ones((batch, batch), bool), k=-1)

    def too_close(a, b):
        # Per-axis sums: XLA:CPU vectorizes these far better than a reduction over a size-d axis.
        r2 = sum(
            (displacement(a[:, None, i], b[None, :, i], box[i], periodic) / scale[i]) ** 2
            for i in range(d)
        )
        return r2 < min_d2

    def cond(state):
        _, count, rejections, _, _ = state
        going = count < n_target
        return going if relax else going & (rejections < max_rejections)

    def body(state):
        pts, count, rejections, step, relaxed = state
        cand = jax.random.uniform(jax.random.fold_in(key, step), (batch, d), box.dtype) * box
        clash = jnp.any(too_close(cand, pts) & (rows < count), axis=1)
        clash |= jnp.any(too_close(cand, cand) & earlier, axis=1)
        # Jammed (relax mode): keep the whole batch, hard core or not.
        forced = clash & (rejections >= max_rejections) if relax else jnp.zeros_like(clash)
        keep = ~clash | forced
        target = count + jnp.cumsum(keep, dtype=jnp.int32) - 1
        keep &= target < n_target
        pts = pts.at[jnp.where(keep, target, n)].set(cand, mode="drop")
        placed = jnp.sum(keep, dtype=jnp.int32)
        last = jnp.max(jnp.where(keep, jnp.arange(batch, dtype=jnp.int32), -1))
        trailing = jnp.where(last >= 0, batch - 1 - last, rejections + batch)
        return (
            pts,
            count + placed,
            trailing,
            step + 1,
            relaxed + jnp.sum(forced & keep, dtype=jnp.int32),
        )

    zero = jnp.int32(0)
    init = (jnp.zeros((n, d), box.dtype), zero, zero, zero, zero)
    pts, count, _, _, relaxed = jax.lax.while_loop(cond, body, init)
    return pts, count, relaxed
