"""Speed of the synthetic-microstructure generators against NumPy/SciPy baselines.

    python benchmarks/generators.py            # timing table (about a minute)
    python benchmarks/generators.py --physics  # plus Potts growth law and melt-pool elongation

Voronoi: 64^3 voxels, 300 grains (seeds given), ``voronoi_from_seeds`` vs a periodic
``scipy.spatial.cKDTree`` query of every voxel centre. Potts: Monte Carlo sweeps per second of
``potts`` vs a straightforward NumPy implementation of the same sublattice Metropolis updates
(``np.roll`` of the whole grid per neighbour). Times exclude compilation; medians of repeats.
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from _timing import median_seconds
from scipy.spatial import cKDTree

from jaxmicro import synth
from jaxmicro.data import mean_intercept_lengths


def kdtree_voronoi(seeds: np.ndarray, shape) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(n) + 0.5 for n in shape], indexing="ij"), -1)
    tree = cKDTree(seeds, boxsize=np.asarray(shape, float))
    return tree.query(grid.reshape(-1, len(shape)))[1].reshape(shape)


def numpy_potts_sweep(ids: np.ndarray, rng: np.random.Generator, kT: float) -> np.ndarray:
    """One sweep: for each of the 2^d sublattices, neighbour proposals + Metropolis."""
    d = ids.ndim
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=d) if any(o)]
    coords = np.meshgrid(*[np.arange(n) for n in ids.shape], indexing="ij")
    for site in itertools.product((0, 1), repeat=d):
        mask = np.all([c % 2 == a for c, a in zip(coords, site, strict=True)], axis=0)
        nbrs = np.stack([np.roll(ids, o, axis=tuple(range(d)))[mask] for o in offsets])
        old = ids[mask]
        new = nbrs[rng.integers(0, len(offsets), old.size), np.arange(old.size)]
        delta = np.sum(nbrs == old, axis=0) - np.sum(nbrs == new, axis=0)
        p = np.where(delta <= 0, 1.0, np.exp(-np.maximum(delta, 0) / kT))
        ids[mask] = np.where(rng.random(old.size) < p, new, old)
    return ids


def timing_table() -> list[tuple[str, float, float]]:
    rows = []
    shape, n = (64, 64, 64), 300
    seeds = synth.voronoi_seeds(jax.random.key(0), shape, n, regularity=0.5, dtype=jnp.float32)
    tess = jax.jit(synth.voronoi_from_seeds, static_argnames=("shape",))
    full = jax.jit(synth.voronoi, static_argnames=("shape", "n_grains"))
    tess(seeds, shape).block_until_ready()
    full(jax.random.key(0), shape, n, regularity=0.5).block_until_ready()
    seeds_np = np.asarray(seeds, float)
    t_kd = median_seconds(lambda: kdtree_voronoi(seeds_np, shape), repeats=3, warmup=False)
    t_jax = median_seconds(lambda: tess(seeds, shape), repeats=7, warmup=False)
    t_full = median_seconds(
        lambda: full(jax.random.key(1), shape, n, regularity=0.5), repeats=7, warmup=False
    )
    rows.append(("Voronoi 64^3, 300 grains (s)", t_kd, t_jax))
    rows.append(("  same + seed generation (s)", float("nan"), t_full))

    run = jax.jit(lambda key, ids: synth.potts(key, ids, 5, kT=0.5))
    for size in (64, 128):
        ids = jnp.arange(size**3, dtype=jnp.int32).reshape((size,) * 3)
        run(jax.random.key(0), ids).block_until_ready()
        t_jax = (
            median_seconds(lambda ids=ids: run(jax.random.key(1), ids), repeats=3, warmup=False) / 5
        )
        ids_np, rng = np.array(ids), np.random.default_rng(0)
        t_np = median_seconds(
            lambda x=ids_np, g=rng: numpy_potts_sweep(x, g, 0.5), repeats=2, warmup=False
        )
        rows.append((f"Potts {size}^3 sweeps per second", 1 / t_np, 1 / t_jax))
    return rows


def growth_law(size: int = 64, checkpoints=(25, 50, 100, 200)) -> list[tuple[int, float]]:
    """Mean grain volume (voxels) after t sweeps of normal grain growth from one grain per site."""
    ids = jnp.arange(size**3, dtype=jnp.int32).reshape((size,) * 3)
    run = jax.jit(synth.potts)
    out, done = [], 0
    for t in checkpoints:
        ids = run(jax.random.key(0), ids, t - done, kT=0.5, first_sweep=done)
        done = t
        out.append((t, size**3 / np.unique(np.asarray(ids)).size))
    return out


def melt_pool_elongation(shape=(64, 32, 32)) -> tuple[np.ndarray, np.ndarray]:
    """Mean intercept lengths (scan, hatch, build) after a melt-pool scan vs isotropic growth."""
    scan = synth.RasterScan(speed=1.0, hatch=8.0, layer=4.0, pool=(8.0, 6.0, 6.0), haz=4.0)
    sweeps = synth.scan_sweeps(shape, scan)
    ids = jnp.arange(np.prod(shape), dtype=jnp.int32).reshape(shape)

    @jax.jit
    def am(key, ids):
        return synth.potts(
            key, ids, sweeps, mobility=lambda t: synth.melt_pool_mobility(shape, t, scan)
        )

    iso = jax.jit(lambda key, ids: synth.potts(key, ids, 40))(jax.random.key(0), ids)
    return mean_intercept_lengths(am(jax.random.key(0), ids)), mean_intercept_lengths(iso)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--physics", action="store_true", help="also measure growth and AM shape")
    args = parser.parse_args()
    print(f"| {'task':36s} | {'NumPy/SciPy':>11s} | {'jaxmicro':>9s} | ratio |")
    print(f"|{'-' * 38}|{'-' * 13}|{'-' * 11}|-------|")
    for name, base, ours in timing_table():
        faster = base / ours if "(s)" in name else ours / base
        print(f"| {name:36s} | {base:11.4g} | {ours:9.4g} | {faster:5.1f} |")
    if args.physics:
        law = growth_law()
        t, v = np.array(law).T
        slope, intercept = np.polyfit(t, v, 1)
        r2 = 1 - np.sum((v - (slope * t + intercept)) ** 2) / np.sum((v - v.mean()) ** 2)
        print("\nnormal grain growth, 64^3, kT = 0.5: sweeps -> mean grain volume")
        for ti, vi in law:
            print(f"  {int(ti):4d}  {vi:8.1f}")
        print(f"  linear fit: {slope:.3f} voxels/sweep, R^2 = {r2:.4f}")
        am, iso = melt_pool_elongation()
        print("\nmean intercept lengths (scan, hatch, build), 64 x 32 x 32:")
        print(f"  melt-pool scan: {np.round(am, 2)}  build/scan = {am[2] / am[0]:.2f}")
        print(f"  isotropic (40 sweeps): {np.round(iso, 2)}  build/scan = {iso[2] / iso[0]:.2f}")


if __name__ == "__main__":
    main()
