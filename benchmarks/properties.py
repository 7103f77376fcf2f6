"""Cost of the FFT homogenization solver (``jaxmicro.properties``): iterations, FFT bound, memory.

Usage::

    python benchmarks/properties.py                       # 64^3 and 128^3, all three tables
    python benchmarks/properties.py --sizes 32,64 --repeats 3
    python benchmarks/properties.py --only contrast --contrast-size 32

Three tables, all for ``effective_conductivity`` of 3D cells (3 unit loads, one CG solve each,
vmapped), float32 unless stated:

1. **Time per CG iteration against its FFT bound.** A CG iteration of the three loads applies the
   Green operator once per load: one ``rfftn`` and one ``irfftn`` of the ``(3, n, n, n, 3)``
   field (loads, space, components; transforms over the spatial axes), plus pointwise products
   and two inner products. The per-iteration time is measured as
   ``(T(maxiter=b) - T(maxiter=a)) / (b - a)`` with ``tol=0`` (every iteration runs); the bound
   the same way, from a jitted ``fori_loop`` of ``irfftn(rfftn(x))`` on a field of that shape and
   layout, timed alternately in the same run (medians over ``--repeats``; the ratio is the median
   of the per-repeat ratios).
2. **Iterations against phase contrast.** A two-phase cell (thresholded Gaussian field, volume
   fraction 0.5, correlation length n/16) with conductivities ``1`` and ``c`` for
   ``c = 10, 100, 1000``, solved to ``tol = 1e-6`` in float64 (iterations are a property of the
   problem, not of the precision); the time of the whole solve is reported too.
3. **Memory of value + gradient against the forward solve.** From XLA's
   ``compiled.memory_analysis()`` of ``jit(effective_conductivity)`` and of
   ``jit(value_and_grad(lambda k: effective_conductivity(k)[0, 0]))``: temporaries and
   arguments + outputs. The gradient is one more CG solve per load (implicit differentiation),
   so its memory does not depend on the iteration count; ``maxiter`` is a traced argument and the
   compiled programs are the same for every value of it.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro.properties import effective_conductivity, effective_conductivity_with_info


def two_phase(n: int, contrast: float, dtype, seed: int = 0) -> np.ndarray:
    """Conductivity 1 / ``contrast`` on a thresholded Gaussian field (fraction 0.5)."""
    rng = np.random.default_rng(seed)
    f = np.meshgrid(*[np.fft.fftfreq(n)] * 2, np.fft.rfftfreq(n), indexing="ij")
    smooth = np.exp(-0.5 * sum(fi**2 for fi in f) * (2 * np.pi * n / 16) ** 2)
    field = np.fft.irfftn(
        np.fft.rfftn(rng.normal(size=(n, n, n))) * smooth, s=(n, n, n), axes=(0, 1, 2)
    )
    return np.where(field > np.median(field), contrast, 1.0).astype(dtype)


def per_iteration(n: int, repeats: int, iters: tuple[int, int]) -> tuple[float, float, float]:
    k = jnp.asarray(two_phase(n, 100.0, np.float32))
    solve = jax.jit(effective_conductivity_with_info)
    axes = (1, 2, 3)

    @jax.jit
    def ffts(x, m):
        def body(_, x):
            return jnp.fft.irfftn(jnp.fft.rfftn(x, axes=axes), s=(n, n, n), axes=axes)

        return jax.lax.fori_loop(0, m, body, x)

    x = jnp.asarray(np.random.default_rng(1).normal(size=(3, n, n, n, 3)), jnp.float32)
    a, b = iters
    jax.block_until_ready(solve(k, tol=0.0, maxiter=a))
    jax.block_until_ready(ffts(x, a))
    t_iter, t_fft = [], []
    for _ in range(repeats):
        for fn, out in (
            (lambda m: solve(k, tol=0.0, maxiter=m), t_iter),
            (lambda m: ffts(x, m), t_fft),
        ):
            times = []
            for m in (a, b):
                start = time.perf_counter()
                jax.block_until_ready(fn(m))
                times.append(time.perf_counter() - start)
            out.append((times[1] - times[0]) / (b - a))
    ratio = np.median(np.asarray(t_iter) / np.asarray(t_fft))
    return float(np.median(t_iter)), float(np.median(t_fft)), float(ratio)


def contrast_row(n: int, contrast: float) -> tuple[list[int], float, float]:
    k = jnp.asarray(two_phase(n, contrast, np.float64))
    solve = jax.jit(effective_conductivity_with_info)
    jax.block_until_ready(solve(k, tol=1e-6, maxiter=5000))
    start = time.perf_counter()
    K, info = jax.block_until_ready(solve(k, tol=1e-6, maxiter=5000))
    seconds = time.perf_counter() - start
    assert bool(info.converged.all())
    return [int(i) for i in info.iterations], float(jnp.trace(K) / 3), seconds


def memory(n: int) -> dict[str, float]:
    k = jnp.asarray(two_phase(n, 100.0, np.float32))
    fwd = jax.jit(effective_conductivity).lower(k).compile().memory_analysis()
    vg = jax.jit(jax.value_and_grad(lambda k: effective_conductivity(k)[0, 0]))
    both = vg.lower(k).compile().memory_analysis()
    field = 3 * n**3 * 4  # one (n, n, n, 3) float32 field, in bytes
    mib = 2.0**20
    return {
        "field": field / mib,
        "fwd temp": fwd.temp_size_in_bytes / mib,
        "fwd args+out": (fwd.argument_size_in_bytes + fwd.output_size_in_bytes) / mib,
        "v+g temp": both.temp_size_in_bytes / mib,
        "v+g args+out": (both.argument_size_in_bytes + both.output_size_in_bytes) / mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="64,128", help="cube edges for tables 1 and 3")
    parser.add_argument("--contrast-size", type=int, default=64, help="cube edge for table 2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", default="2,6", help="maxiter pair a,b of table 1")
    parser.add_argument("--only", choices=("iteration", "contrast", "memory"), default=None)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    sizes = [int(s) for s in args.sizes.split(",")]
    iters = tuple(int(s) for s in args.iters.split(","))
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {jax.devices()[0].device_kind}")

    if args.only in (None, "iteration"):
        print("\n| grid | CG iteration (3 loads) | rfftn+irfftn (3, n^3, 3) | ratio |")
        print("|---|---|---|---|")
        for n in sizes:
            t_it, t_fft, ratio = per_iteration(n, args.repeats, iters)
            print(
                f"| {n}^3 | {t_it * 1e3:.1f} ms | {t_fft * 1e3:.1f} ms | {ratio:.2f} |", flush=True
            )

    if args.only in (None, "contrast"):
        n = args.contrast_size
        print(
            f"\n| contrast ({n}^3, float64, tol 1e-6) | CG iterations (loads x, y, z) "
            "| K_eff (trace/3) | solve time |"
        )
        print("|---|---|---|---|")
        for contrast in (10.0, 100.0, 1000.0):
            its, k_eff, seconds = contrast_row(n, contrast)
            print(
                f"| 1:{contrast:g} | {', '.join(map(str, its))} | {k_eff:.4g} | {seconds:.2f} s |",
                flush=True,
            )

    if args.only in (None, "memory"):
        print(
            "\n| grid | one field | forward: temp / args+out | value+grad: temp / args+out "
            "| v+g temp / fwd temp |"
        )
        print("|---|---|---|---|---|")
        for n in sizes:
            m = memory(n)
            print(
                f"| {n}^3 | {m['field']:.1f} MiB "
                f"| {m['fwd temp']:.1f} / {m['fwd args+out']:.1f} MiB "
                f"| {m['v+g temp']:.1f} / {m['v+g args+out']:.1f} MiB "
                f"| {m['v+g temp'] / m['fwd temp']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
