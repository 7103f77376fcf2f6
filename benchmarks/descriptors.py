"""Speed of ``two_point`` (value, and value + gradient) against its FFT lower bound.

Usage::

    python benchmarks/descriptors.py                    # 256^2, 512^2, 64^3, 128^3; C = 1, 9
    python benchmarks/descriptors.py --sizes 256,256 --channels 1 --repeats 5
    python benchmarks/descriptors.py --three-point      # three_point_variogram, MCR problem (c)

``--three-point`` times ``three_point_variogram`` at the size of the MCR benchmark's problem (c)
(128x128, C = 9, float32, periodic, the 25 lags of the half window ``|r_i| <= 3``, smoothing
1e-3) against its matrix-product bound: the Gram product ``D @ D.T`` of precomputed ``(C, K, N)``
increments (value), and that product's value + gradient (two more products of the same size).

For each field ``(*spatial, C)`` (float32, periodic, ``pairs='auto'``, full lag window) it prints
the median wall time of:

- ``value``: ``jit(two_point)``;
- ``fft bound``: ``jit(irfftn(rfftn(x)))`` on the same data laid out channels-first, i.e. the
  forward and inverse real FFTs any FFT-based evaluation must perform, with nothing else;
- ``value+grad``: ``jit(value_and_grad)`` of ``sum((two_point(m) - target)**2)``;
- ``grad bound``: four chained transforms ``irfftn(rfftn(irfftn(rfftn(x))))``: the forward pass
  needs one rfftn and one irfftn, its reverse pass their two adjoints (an rfftn-like transform
  of the cotangent and an irfftn-like one back to the field);

and the ratios ``value / fft bound`` and ``value+grad / grad bound`` (target: <= 1.5).
Compilation is excluded (one warm-up call), every call is blocked on with
``block_until_ready``; each function is timed alternately with its bound ``--repeats`` times,
and the medians of the times and of the per-pair ratios are reported.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro.descriptors import three_point_variogram, two_point, window_lags


def paired_times(fn, args, bound, bound_args, repeats: int) -> tuple[float, float, float]:
    """Median times of ``fn`` and ``bound``, and the median of their per-repeat ratio.

    The two are timed alternately, so that load from other processes on a shared machine hits
    both alike; the ratio of each pair is then less noisy than the ratio of the medians.
    """
    jax.block_until_ready(fn(*args))
    jax.block_until_ready(bound(*bound_args))
    t_fn, t_bound = [], []
    for _ in range(repeats):
        for f, a, out in ((fn, args, t_fn), (bound, bound_args, t_bound)):
            start = time.perf_counter()
            jax.block_until_ready(f(*a))
            out.append(time.perf_counter() - start)
    ratios = np.asarray(t_fn) / np.asarray(t_bound)
    return float(np.median(t_fn)), float(np.median(t_bound)), float(np.median(ratios))


def measure(spatial: tuple[int, ...], channels: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    m = jnp.asarray(rng.uniform(size=(*spatial, channels)), jnp.float32)
    axes = tuple(range(1, len(spatial) + 1))
    x = jnp.moveaxis(m, -1, 0)  # the bound gets the FFT-friendly layout for free

    def round_trip(y):
        return jnp.fft.irfftn(jnp.fft.rfftn(y, axes=axes), s=spatial, axes=axes)

    value = jax.jit(functools.partial(two_point, pairs="auto"))
    target = value(m) * 1.01

    def loss(field, goal):
        return jnp.sum((two_point(field, pairs="auto") - goal) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    fft_bound = jax.jit(round_trip)
    grad_bound = jax.jit(lambda y: round_trip(round_trip(y)))
    return {
        "value": paired_times(value, (m,), fft_bound, (x,), repeats),
        "value+grad": paired_times(value_and_grad, (m, target), grad_bound, (x,), repeats),
    }


def measure_three_point(repeats: int) -> dict:
    rng = np.random.default_rng(0)
    m = jnp.asarray(rng.uniform(size=(128, 128, 9)), jnp.float32)
    lags = window_lags(3, 2, half=True)
    d = jnp.asarray(rng.uniform(size=(9, len(lags), 128 * 128)), jnp.float32)

    def variogram3(field):
        return three_point_variogram(field, lags, smoothing=1e-3)

    def gram(x):
        return jnp.einsum("ckn,cjn->ckj", x, x)

    target = variogram3(m) * 1.01
    value_and_grad = jax.jit(jax.value_and_grad(lambda f: jnp.sum((variogram3(f) - target) ** 2)))
    gram_and_grad = jax.jit(jax.value_and_grad(lambda x: jnp.sum((gram(x) - 1.0) ** 2)))
    return {
        "value": paired_times(jax.jit(variogram3), (m,), jax.jit(gram), (d,), repeats),
        "value+grad": paired_times(value_and_grad, (m,), gram_and_grad, (d,), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="*", default=["256,256", "512,512", "64,64,64", "128,128,128"]
    )
    parser.add_argument("--channels", nargs="*", type=int, default=[1, 9])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--three-point", action="store_true")
    args = parser.parse_args()

    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
    if args.three_point:
        t = measure_three_point(args.repeats)
        print("| 128x128, C = 9, 25 lags | time (ms) | Gram product bound (ms) | ratio |")
        print("|---|---|---|---|")
        for name, (f, b, r) in t.items():
            print(f"| {name} | {1e3 * f:.2f} | {1e3 * b:.2f} | {r:.2f} |")
        return
    print(
        "| field | C | value (ms) | fft bound (ms) | ratio "
        "| value+grad (ms) | grad bound (ms) | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        spatial = tuple(int(n) for n in size.split(","))
        for c in args.channels:
            t = measure(spatial, c, args.repeats)
            (v, vb, vr), (g, gb, gr) = t["value"], t["value+grad"]
            field = "x".join(map(str, spatial))
            print(
                f"| {field} | {c} | {1e3 * v:.2f} | {1e3 * vb:.2f} | {vr:.2f} "
                f"| {1e3 * g:.2f} | {1e3 * gb:.2f} | {gr:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
