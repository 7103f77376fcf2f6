"""Measured figures of jaxmicro.orientations and the ROGSH inverses.

    python benchmarks/orientations.py [--n 10000] [--count 300]

Prints three tables:

1. Throughput of the orientation functions (median of 5 runs after compilation).
2. ROGSH round trips over ``--n`` Haar-random orientations: coefficient residual
   ``max |rogsh(rogsh_to_euler(c)) - c|`` and the misorientation (crystal symmetry applied)
   between the input and the recovered orientation.
3. How many orientations (distinct under crystal symmetry, > 1 deg apart) share one coefficient
   triple, for ``--count`` random orientations: every solution of the axial equations over the
   standard triangle, both phi1 roots, and the images under the extra invariances.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
from _timing import median_seconds

from jaxmicro import orientations as ori
from jaxmicro.harmonics.rogsh import rogsh, rogsh_to_euler

jax.config.update("jax_enable_x64", True)
_rogsh = sys.modules["jaxmicro.harmonics.rogsh"]


def throughput(n: int) -> None:
    q = ori.random_quats(jax.random.key(0), (n,))
    r = ori.random_quats(jax.random.key(1), (n,))
    e = ori.quat_to_euler(q)
    cases = {
        "euler_to_quat": (jax.jit(ori.euler_to_quat), e),
        "quat_to_euler": (jax.jit(ori.quat_to_euler), q),
        "quat_to_matrix": (jax.jit(ori.quat_to_matrix), q),
        "to_fundamental_zone cubic": (jax.jit(lambda x: ori.to_fundamental_zone(x, "cubic")), q),
        "misorientation_angle cubic": (
            jax.jit(lambda x, y: ori.misorientation_angle(x, y, "cubic")),
            q,
            r,
        ),
        "ipf_color cubic": (jax.jit(lambda x: ori.ipf_color(x, "cubic")), q),
        "rogsh cubic": (jax.jit(lambda x: rogsh(x, "cubic")), e),
        "rogsh_to_euler hexagonal": (
            jax.jit(lambda x: rogsh_to_euler(x, "hexagonal")),
            rogsh(e, "hexagonal"),
        ),
        "rogsh_to_euler cubic": (jax.jit(lambda x: rogsh_to_euler(x, "cubic")), rogsh(e, "cubic")),
    }
    print(f"\n{'function (float64)':30s} {'n':>8s} {'ms':>9s} {'Morient/s':>10s}")
    for name, (fn, *args) in cases.items():
        t = median_seconds(fn, *args)
        print(f"{name:30s} {n:8d} {1e3 * t:9.2f} {n / t / 1e6:10.3f}")


def round_trips(n: int) -> None:
    q = ori.random_quats(jax.random.key(2), (n,))
    e = ori.quat_to_euler(q)
    print(
        f"\n{'symmetry':10s} {'coef resid median':>17s} {'p99':>9s} {'max':>9s} | "
        f"{'misorientation deg: median':>26s} {'p90':>6s} {'p99':>6s} {'max':>6s} "
        f"{'recovered (<0.1 deg)':>20s}"
    )
    for sym in ("hexagonal", "cubic"):
        c = rogsh(e, sym)
        back = rogsh_to_euler(c, sym)
        res = np.abs(np.asarray(rogsh(back, sym) - c)).max(-1)
        mis = np.degrees(np.asarray(ori.misorientation_angle(q, ori.euler_to_quat(back), sym)))
        p50, p90, p99 = np.percentile(mis, [50, 90, 99])
        print(
            f"{sym:10s} {np.median(res):17.1e} {np.percentile(res, 99):9.1e} {res.max():9.1e} | "
            f"{p50:26.2f} {p90:6.2f} {p99:6.2f} {mis.max():6.2f} {np.mean(mis < 0.1):20.3f}"
        )


@jax.jit(static_argnames="sym")
def _pairwise_deg(quats: jax.Array, sym: str) -> jax.Array:
    return jnp.degrees(ori.misorientation_angle(quats[:, None], quats[None], sym))


def distinct(quats: np.ndarray, valid: np.ndarray, sym: str, tol_deg: float = 1.0) -> int:
    """Number of valid orientations more than tol_deg apart (greedy on the pairwise matrix)."""
    pairwise = np.asarray(_pairwise_deg(jnp.asarray(quats), sym))
    kept: list[int] = []
    for i in np.flatnonzero(valid):
        if all(pairwise[i, j] > tol_deg for j in kept):
            kept.append(i)
    return len(kept)


@jax.jit
def cubic_preimages(euler: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Candidate Euler triplets (512, 3) sharing the cubic ROGSH coefficients of ``euler``
    (3,), and which of them do: every root u of the axial equations (refined from 32 local
    minima), both phi1 roots, and the images under the sample 4-fold and
    (phi1, phi2) -> (-phi1, -phi2)."""
    c = rogsh(euler, "cubic")
    table = jnp.asarray(_rogsh._cubic_table())
    mismatch, excess = _rogsh._axial_mismatch(table, c[1:])
    starts = table[_rogsh._local_minima(mismatch**2 + excess**2, 32)]
    u = jax.vmap(_rogsh._refine_u, in_axes=(0, None))(starts, c[1:])
    Phi = jnp.arccos(jnp.sqrt(u))
    phi2 = jnp.arccos(_rogsh._safe_ratio(_rogsh._x_from_t4(u, c[1]), (1 - u) ** 2)) / 4
    root = _rogsh._phi1_from_t4(c[0], Phi, phi2)
    a, b = _rogsh._t4_re_coefficients(Phi, phi2)
    out = []
    for phi1 in (root, jnp.arctan2(b, a) / 2 - root):  # both roots of cos(4 phi1 - alpha)
        for k in range(4):
            for t in (1.0, -1.0):
                out.append(jnp.stack([t * (phi1 + k * np.pi / 2), Phi, t * phi2], -1))
    cand = jnp.concatenate(out)
    ok = jnp.max(jnp.abs(rogsh(cand, "cubic") - c), axis=-1) < 1e-9
    return cand, ok


def preimage_counts(count: int) -> None:
    e = np.asarray(ori.quat_to_euler(ori.random_quats(jax.random.key(3), (count,))))
    hexa, cubic = [], []
    for p1, P, p2 in e:
        cand = np.array([[p1, P, p2], [np.pi - p1, P, p2], [p1, P, -p2], [np.pi - p1, P, -p2]])
        hexa.append(distinct(ori.euler_to_quat(cand), np.ones(4, bool), "hexagonal"))
        cand, ok = cubic_preimages(jnp.asarray([p1, P, p2]))
        cubic.append(distinct(ori.euler_to_quat(cand), np.asarray(ok), "cubic"))
    head = "orientations per coefficient triple: min"
    print(f"\n{'symmetry':10s} {head:>40s} {'median':>7s} {'max':>5s}")
    for sym, counts in (("hexagonal", hexa), ("cubic", cubic)):
        print(f"{sym:10s} {min(counts):40d} {int(np.median(counts)):7d} {max(counts):5d}")
    values, freq = np.unique(cubic, return_counts=True)
    print("cubic histogram:", dict(zip(values.tolist(), freq.tolist(), strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    throughput(args.n)
    round_trips(args.n)
    preimage_counts(args.count)


if __name__ == "__main__":
    main()
