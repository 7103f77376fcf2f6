"""Speed of HSH/SHSH evaluation and accuracy + speed of the SHSH inverse.

    python benchmarks/harmonics.py [--orientations 10000] [--database-size 50000]

Prints three tables: (1) median wall time of jitted calls (compilation excluded, 5 runs); (2) the
round-trip misorientation ``shsh_to_quat(shsh(q))`` vs ``q`` over uniformly random orientations
(median / 90th / 99th percentile / max, degrees), with and without the refinement steps; (3) at the
size of the MCR benchmark's problem (c), a 128x128 float32 orientation map, the cubic degree-8
SHSH forward and value + gradient, against the HSH recurrence times the basis (the definition,
and the evaluation before the monomial form), timed alternately in one run (min and median of 15
calls, wall and process CPU time, since the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from _timing import median_seconds

from jaxmicro.harmonics import hsh, shsh, shsh_basis, shsh_size, shsh_to_quat
from jaxmicro.harmonics.hsh import hsh_polynomial
from jaxmicro.orientations import misorientation_angle, random_quats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orientations", type=int, default=10_000)
    parser.add_argument("--database-size", type=int, default=10_000)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    n = args.orientations
    q = random_quats(jax.random.key(0), (n,))

    print(f"devices: {jax.devices()}, float64, {n} orientations")
    print(f"{'operation':44s} {'time (s)':>10s} {'per orientation (us)':>22s}")
    rows = [
        ("hsh degree 8 (81)", jax.jit(lambda p: hsh(p, 8)), q),
        ("shsh cubic (8,) (9)", jax.jit(lambda p: shsh(p, "cubic")), q),
        ("shsh cubic (8, 12) (22)", jax.jit(lambda p: shsh(p, "cubic", (8, 12))), q),
    ]
    f8 = shsh(q, "cubic")
    inv = jax.jit(lambda f: shsh_to_quat(f, "cubic", database_size=args.database_size))
    rows.append((f"shsh_to_quat cubic (8,), db {args.database_size}", inv, f8))
    for name, fn, x in rows:
        t = median_seconds(fn, x, repeats=3 if "to_quat" in name else 5)
        print(f"{name:44s} {t:10.4f} {1e6 * t / n:22.3f}")

    print()
    print(f"round trip, {n} random orientations, database {args.database_size} (degrees)")
    print(
        f"{'symmetry':10s} {'degrees':10s} {'d':>3s} {'steps':>5s} "
        f"{'median':>10s} {'p90':>10s} {'p99':>10s} {'max':>10s}"
    )
    for symmetry, degrees, dtype in [
        ("cubic", (8,), jnp.float64),
        ("cubic", (8,), jnp.float32),
        ("cubic", (8, 12), jnp.float64),
        ("hexagonal", (12,), jnp.float64),
        ("hexagonal", (4, 12), jnp.float64),
        ("hexagonal", (4, 8), jnp.float64),
    ]:
        f = shsh(q.astype(dtype), symmetry, degrees)
        for steps in (0, 8):
            back = shsh_to_quat(f, symmetry, degrees, database_size=args.database_size, steps=steps)
            ang = np.degrees(np.asarray(misorientation_angle(q, back, symmetry)))
            p50, p90, p99, pmax = np.percentile(ang, [50, 90, 99, 100])
            print(
                f"{symmetry:10s} {str(degrees):10s} {jnp.dtype(dtype).name:8s} "
                f"{shsh_size(symmetry, degrees):3d} {steps:5d} "
                f"{p50:10.2e} {p90:10.2e} {p99:10.2e} {pmax:10.2e}"
            )

    mcr_size_table()


def mcr_size_table(calls: int = 15) -> None:
    """Table (3): SHSH forward and value + gradient on a 128x128 float32 map."""
    q = random_quats(jax.random.key(1), (128, 128)).astype(jnp.float32)
    weights = jax.random.normal(jax.random.key(2), (128, 128, 9), jnp.float32)
    basis = jnp.asarray(shsh_basis("cubic", 8), jnp.float32)
    paths = {
        "monomials (shsh)": lambda p: shsh(p, "cubic"),
        "HSH recurrence @ basis": lambda p: hsh_polynomial(p, 8, jnp) @ basis,
    }
    fns = {}
    for name, f in paths.items():
        fns[f"{name}, forward"] = jax.jit(f)
        fns[f"{name}, value+grad"] = jax.jit(
            jax.value_and_grad(lambda p, f=f: jnp.sum(weights * f(p)))
        )
    wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
    for fn in fns.values():
        jax.block_until_ready(fn(q))
    for _ in range(calls):
        for name, fn in fns.items():
            c, t = time.process_time(), time.perf_counter()
            jax.block_until_ready(fn(q))
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    print()
    print(f"128x128 float32, cubic degree 8 (9 features); load average {os.getloadavg()}")
    print(f"{'evaluation':44s} {'wall min/med (ms)':>18s} {'cpu min/med (ms)':>18s}")
    for name in fns:
        w, c = 1e3 * np.array(wall[name]), 1e3 * np.array(cpu[name])
        print(f"{name:44s} {w.min():8.2f} {np.median(w):8.2f} {c.min():8.2f} {np.median(c):8.2f}")


if __name__ == "__main__":
    main()
