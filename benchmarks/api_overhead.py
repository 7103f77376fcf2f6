"""Plain call vs ``jax.jit`` of the same call, for every public function that does heavy work.

    python benchmarks/api_overhead.py               # all groups (a few minutes on 2 CPU cores)
    python benchmarks/api_overhead.py --only synth  # one group: synth, descriptors, harmonics,
                                                    # orientations, grains, samplers

House rule (issue #19): a public function validates its arguments outside and calls a jitted
kernel inside, so that a plain call costs at most 1.5x the same call under ``jax.jit`` once both
are compiled. Each row times both after one untimed warm-up call (compilation), alternately
(``--repeats`` pairs; a call under 20 ms is looped to 20 ms and timed per call); ``ratio`` is
the median of the per-pair ratios plain / jit, and rows above 1.5 are flagged ``MISS``. The
samplers compile once per denoiser object, so their rows call them again with the same ``eps``.
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np
from _timing import paired_seconds

from jaxmicro import descriptors, grains, harmonics, orientations, synth

TARGET = 1.5


def _synth_rows():
    key = jax.random.key(0)
    shape, n = (64, 64, 64), 300
    seeds = synth.voronoi_seeds(key, shape, n, regularity=0.5)
    ids = synth.voronoi(key, (64, 64, 64), 300, regularity=0.5)
    ids2 = synth.voronoi(key, (128, 128), 200, regularity=0.5)
    colors = jnp.asarray(synth.color_grains(ids))
    rgb = jnp.asarray(synth.palette(10), jnp.float32)
    texture = jnp.array([1.0, 0.0, 0.0, 0.0])  # made once, as for the jitted call
    return [
        (
            "synth.voronoi 64^3, 300, reg 0.5",
            lambda: synth.voronoi(key, shape, n, regularity=0.5),
            jax.jit(lambda k: synth.voronoi(k, shape, n, regularity=0.5)),
            (key,),
        ),
        (
            "synth.voronoi_seeds 64^3, 300",
            lambda: synth.voronoi_seeds(key, shape, n, regularity=0.5),
            jax.jit(lambda k: synth.voronoi_seeds(k, shape, n, regularity=0.5)),
            (key,),
        ),
        (
            "synth.voronoi_from_seeds 64^3, 300",
            lambda: synth.voronoi_from_seeds(seeds, shape),
            jax.jit(lambda s: synth.voronoi_from_seeds(s, shape)),
            (seeds,),
        ),
        (
            "synth.potts 64^3, 1 sweep",
            lambda: synth.potts(key, ids, 1, kT=0.5),
            jax.jit(lambda k, x: synth.potts(k, x, 1, kT=0.5)),
            (key, ids),
        ),
        (
            "synth.potts 128^2, 10 sweeps, mobility",
            lambda: synth.potts(key, ids2, 10, mobility=jnp.full(ids2.shape, 0.5)),
            jax.jit(lambda k, x: synth.potts(k, x, 10, mobility=jnp.full(x.shape, 0.5))),
            (key, ids2),
        ),
        (
            "synth.potts_energy 64^3",
            lambda: synth.potts_energy(ids),
            jax.jit(synth.potts_energy),
            (ids,),
        ),
        (
            "synth.melt_pool_mobility 64^3",
            lambda: synth.melt_pool_mobility((64, 64, 64), 40),
            jax.jit(lambda t: synth.melt_pool_mobility((64, 64, 64), t)),
            (40,),
        ),
        (
            "synth.rsa_disks 128^2, r 4, 0.35",
            lambda: synth.rsa_disks(key, (128, 128), 4.0, 0.35),
            jax.jit(lambda k: synth.rsa_disks(k, (128, 128), 4.0, 0.35)),
            (key,),
        ),
        (
            "synth.gaussian_two_phase 64^3",
            lambda: synth.gaussian_two_phase(key, (64, 64, 64), 3.0, 0.4),
            jax.jit(lambda k: synth.gaussian_two_phase(k, (64, 64, 64), 3.0, 0.4)),
            (key,),
        ),
        (
            "synth.grain_orientations 300, texture",
            lambda: synth.grain_orientations(key, 300, texture=texture),
            jax.jit(lambda k, tex: synth.grain_orientations(k, 300, texture=tex)),
            (key, texture),
        ),
        (
            "synth.ids_to_rgb 64^3",
            lambda: synth.ids_to_rgb(ids, colors, rgb),
            jax.jit(synth.ids_to_rgb),
            (ids, colors, rgb),
        ),
        (
            "synth.empty_grains 64^3",
            lambda: synth.empty_grains(ids, 300),
            jax.jit(lambda x: synth.empty_grains(x, 300)),
            (ids,),
        ),
    ]


def _descriptor_rows():
    key = jax.random.key(1)
    m2 = jax.random.uniform(key, (128, 128, 9), jnp.float32)
    m3 = jax.random.uniform(key, (32, 32, 32, 3), jnp.float32)
    phase = (jax.random.uniform(key, (128, 128, 2)) > 0.5).astype(jnp.float32)
    lags = descriptors.window_lags(2, 2, half=True)
    mask = jnp.ones((128, 128), jnp.float32)

    def row(name, fn, *args):
        return (name, lambda: fn(*args), jax.jit(fn), args)

    tp = functools.partial(descriptors.two_point, max_lag=8)
    return [
        row("descriptors.one_point 128^2x9", descriptors.one_point, m2),
        row("descriptors.two_point 128^2x9, L 8", tp, m2),
        row(
            "descriptors.two_point 128^2x9, masked, np",
            functools.partial(descriptors.two_point, periodic=False, max_lag=8),
            m2,
        ),
        row(
            "descriptors.two_point mask= arg",
            lambda x, w: descriptors.two_point(x, mask=w, max_lag=8),
            m2,
            mask,
        ),
        row("descriptors.two_point 32^3x3", descriptors.two_point, m3),
        row(
            "descriptors.variogram 128^2x9, L 4",
            functools.partial(descriptors.variogram, max_lag=4),
            m2,
        ),
        row(
            "descriptors.three_point_variogram 128^2x9",
            lambda x: descriptors.three_point_variogram(x, lags),
            m2,
        ),
        row("descriptors.mean_variation 128^2x9", descriptors.mean_variation, m2),
        row(
            "descriptors.lineal_path 128^2x2, z 32",
            functools.partial(descriptors.lineal_path, axis=0, max_length=32),
            phase,
        ),
        row(
            "descriptors.chord_length_distribution",
            functools.partial(descriptors.chord_length_distribution, axis=1),
            phase,
        ),
        row(
            "descriptors.slice_descriptors 32^3x3",
            lambda x: descriptors.slice_descriptors(
                x, functools.partial(descriptors.two_point, max_lag=4)
            ),
            m3,
        ),
    ]


def _harmonic_rows():
    key = jax.random.key(2)
    q = orientations.random_quats(key, (128, 128), jnp.float32)
    euler = orientations.quat_to_euler(q)
    f = harmonics.shsh(q[:16, :16], "cubic", (8,))
    c_hex = harmonics.rogsh(euler, "hexagonal")
    c_cub = harmonics.rogsh(euler[:8, :8], "cubic")

    def row(name, fn, *args):
        return (name, lambda: fn(*args), jax.jit(fn), args)

    return [
        row("harmonics.hsh 128^2, n 8", lambda x: harmonics.hsh(x, 8), q),
        row("harmonics.shsh 128^2, cubic (8,)", lambda x: harmonics.shsh(x, "cubic", (8,)), q),
        row(
            "harmonics.shsh 128^2, hex (4,8,12)",
            lambda x: harmonics.shsh(x, "hexagonal", (4, 8, 12)),
            q,
        ),
        row(
            "harmonics.shsh_to_quat 16^2, cubic",
            lambda x: harmonics.shsh_to_quat(x, "cubic", (8,)),
            f,
        ),
        row("harmonics.rogsh 128^2, hexagonal", lambda e: harmonics.rogsh(e, "hexagonal"), euler),
        row("harmonics.rogsh 128^2, cubic", lambda e: harmonics.rogsh(e, "cubic"), euler),
        row(
            "harmonics.rogsh_to_euler 128^2, hex",
            lambda c: harmonics.rogsh_to_euler(c, "hexagonal"),
            c_hex,
        ),
        row(
            "harmonics.rogsh_to_euler 8^2, cubic",
            lambda c: harmonics.rogsh_to_euler(c, "cubic"),
            c_cub,
        ),
    ]


def _orientation_rows():
    key = jax.random.key(3)
    q = orientations.random_quats(key, (256, 256), jnp.float32)
    q2 = orientations.random_quats(jax.random.fold_in(key, 1), (256, 256), jnp.float32)
    e = orientations.quat_to_euler(q)

    def row(name, fn, *args):
        return (name, lambda: fn(*args), jax.jit(fn), args)

    return [
        row("orientations.euler_to_quat 256^2", orientations.euler_to_quat, e),
        row("orientations.quat_to_euler 256^2", orientations.quat_to_euler, q),
        row(
            "orientations.to_fundamental_zone cubic",
            lambda x: orientations.to_fundamental_zone(x, "cubic"),
            q,
        ),
        row(
            "orientations.misorientation_angle cubic",
            lambda a, b: orientations.misorientation_angle(a, b, "cubic"),
            q,
            q2,
        ),
        row("orientations.ipf_color cubic", lambda x: orientations.ipf_color(x, "cubic"), q),
    ]


def _grain_rows():
    key = jax.random.key(4)
    ids = synth.voronoi(key, (48, 48, 48), 100, regularity=0.5)
    grain_q = synth.grain_orientations(key, 100, dtype=jnp.float32)
    q = grain_q[ids]
    rgb = jnp.asarray(synth.palette(10), jnp.float32)
    field = rgb[jnp.asarray(synth.color_grains(ids))[ids]]

    def row(name, fn, *args):
        return (name, lambda: fn(*args), jax.jit(fn), args)

    return [
        row("grains.quantize_palette 48^3", grains.quantize_palette, field, rgb),
        row(
            "grains.neighbour_disorientation 48^3",
            lambda x: grains.neighbour_disorientation(x, "cubic"),
            q,
        ),
    ]


def _sampler_rows():
    from jaxmicro.diffusion import ddim_sample, ddpm_sample, repaint_sample, schedule

    sched = schedule.linear_schedule(100)
    key = jax.random.key(5)
    shape = (32, 32, 32, 3)
    known = jax.random.normal(key, (1, *shape))
    mask = (jnp.arange(32) < 16)[None, :, None, None, None]

    def eps(x, t):
        return 0.1 * x

    def ddim(k):
        return ddim_sample(k, eps, sched, shape, num_samples=1, num_steps=20, eta=0.5)

    def ddpm(k):
        return ddpm_sample(k, eps, sched, shape, num_samples=1)

    def repaint(k, known, mask):  # arrays as arguments on both sides (not jit constants)
        return repaint_sample(k, eps, sched, known, mask, resample=2, num_steps=10)

    return [
        ("diffusion.ddim_sample 32^3x3, 20 steps", lambda: ddim(key), jax.jit(ddim), (key,)),
        ("diffusion.ddpm_sample 32^3x3, 100 steps", lambda: ddpm(key), jax.jit(ddpm), (key,)),
        (
            "diffusion.repaint_sample 32^3x3, r=2",
            lambda: repaint(key, known, mask),
            jax.jit(repaint),
            (key, known, mask),
        ),
    ]


GROUPS = {
    "synth": _synth_rows,
    "descriptors": _descriptor_rows,
    "harmonics": _harmonic_rows,
    "orientations": _orientation_rows,
    "grains": _grain_rows,
    "samplers": _sampler_rows,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(GROUPS), action="append")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(f"{'function':44s} {'plain ms':>10s} {'jit ms':>10s} {'ratio':>7s}")
    misses = 0
    for group in args.only or list(GROUPS):
        rows = GROUPS[group]()
        for name, plain, jitted, fn_args in rows:
            t_plain, t_jit, ratio = paired_seconds(
                plain, (), jitted, fn_args, args.repeats, min_seconds=0.02
            )
            flag = "  MISS" if ratio > TARGET else ""
            misses += ratio > TARGET
            print(f"{name:44s} {1e3 * t_plain:10.2f} {1e3 * t_jit:10.2f} {ratio:7.2f}{flag}")
    print(f"\n{misses} row(s) above {TARGET}x")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
