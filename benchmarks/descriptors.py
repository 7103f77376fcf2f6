"""Speed of ``two_point`` (value, and value + gradient) against its FFT lower bound.

Usage::

    python benchmarks/descriptors.py                    # 256^2, 512^2, 64^3, 128^3; C = 1, 9
    python benchmarks/descriptors.py --sizes 256,256 --channels 1 --repeats 5
    python benchmarks/descriptors.py --pairs all        # every pair: P = C (C + 1) / 2 transforms
    python benchmarks/descriptors.py --cpu-time         # 1 XLA thread, CPU seconds (loaded machine)
    python benchmarks/descriptors.py --three-point      # three_point_variogram, MCR problem (c)

``--three-point`` times ``three_point_variogram`` at the size of the MCR benchmark's problem (c)
(128x128, C = 9, float32, periodic, the 25 lags of the half window ``|r_i| <= 3``, smoothing
1e-3) against its matrix-product bound: the Gram product ``D @ D.T`` of precomputed ``(C, K, N)``
increments (value), and that product's value + gradient (two more products of the same size).

For each field ``(*spatial, C)`` (float32, periodic, ``pairs='auto'`` unless ``--pairs all``, full
lag window) it prints the median wall time of:

- ``value``: ``jit(two_point)``;
- ``fft bound``: the real FFTs any FFT-based evaluation must perform, with nothing else, on the
  same data laid out channels-first (the transpose of the channels-last input is not in the
  bound): ``C`` forward ``rfftn`` and ``P`` inverse ``irfftn``, ``P`` the number of distinct pairs
  (``C`` for ``'auto'``, ``C (C + 1) / 2`` for ``'all'``: ``f[b, a]`` is ``f[a, b]`` read
  backwards). For ``'auto'`` it is ``irfftn(rfftn(x))``; for ``'all'`` the ``P`` inverse
  transforms read a precomputed spectrum, ordered after the forward ones by an
  ``optimization_barrier`` (no gather or product pass in the bound);
- ``value+grad``: ``jit`` of the value and its VJP (reverse-mode gradient) for a given cotangent
  of the output: what any gradient of a loss ``L(two_point(m))`` costs on top of ``L``'s own
  derivative (``L`` and its passes over the output lags are not timed);
- ``grad bound``: the forward transforms, then the mirrored ones of the reverse pass: ``P``
  ``rfftn`` of the cotangents and ``C`` ``irfftn`` back to the field. For ``'auto'``:
  ``irfftn(rfftn(irfftn(rfftn(x))))``; for ``'all'`` the four sets chained the same way as above;
- ``passes``: what ``value+grad`` must do besides its transforms on a channels-last field, timed
  on its own (``'auto'`` only): the input's transpose to channels-first, the spectrum product
  ``|A|^2`` with its lag-centring phase, the adjoint product ``2 A G`` of the reverse pass, and
  the gradient's transpose back; each is one memory pass that XLA cannot fuse into an FFT.

and the ratios ``value / fft bound``, ``value+grad / grad bound`` (target: <= 1.5) and
``value+grad / (grad bound + passes)`` (how far two_point is from the transforms plus the passes
it cannot avoid). Compilation is excluded (one warm-up call), every call is blocked on with
``block_until_ready``; each function is timed alternately with its bound ``--repeats`` times,
and the medians of the times and of the per-pair ratios are reported."""

from __future__ import annotations

import argparse
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from _timing import paired_seconds

from jaxmicro.descriptors import three_point_variogram, two_point, window_lags

CLOCK = time.perf_counter  # time.process_time with --cpu-time
SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _passes(field, spec, spec_ct, field_cf, *, ramp_size: int, spatial: tuple[int, ...]):
    """The four memory passes between the transforms of value + VJP on a channels-last field,
    each on its own array so that none fuses with another: transpose in, spectrum product,
    adjoint product, transpose out."""
    k = np.arange(ramp_size)
    ramp = jnp.asarray(np.exp(-2j * np.pi * k / spatial[-1]), spec.dtype)
    to_channels_first = jnp.moveaxis(field, -1, 0) * (1.0 / np.prod(spatial))
    product = (jnp.real(spec) ** 2 + jnp.imag(spec) ** 2) * ramp
    adjoint = 2.0 * spec * spec_ct * jnp.conj(ramp)
    return to_channels_first, product, adjoint, jnp.moveaxis(field_cf, 0, -1)


def measure(spatial: tuple[int, ...], channels: int, repeats: int, pairs: str = "auto") -> dict:
    rng = np.random.default_rng(0)
    m = jnp.asarray(rng.uniform(size=(*spatial, channels)), jnp.float32)
    axes = tuple(range(1, len(spatial) + 1))
    x = jnp.moveaxis(m, -1, 0)  # the bound gets the FFT-friendly layout for free

    def rfftn(y):
        return jnp.fft.rfftn(y, axes=axes)

    def irfftn(y):
        return jnp.fft.irfftn(y, s=spatial, axes=axes)

    value = jax.jit(functools.partial(two_point, pairs=pairs))
    cotangent = value(m) * 0.01

    def value_and_vjp(field, ct):
        out, pullback = jax.vjp(functools.partial(two_point, pairs=pairs), field)
        return out, pullback(ct)[0]

    value_and_grad = jax.jit(value_and_vjp)
    spec = rfftn(x)
    if pairs == "auto":  # P = C: each inverse transform reads the forward one's output
        fft_bound = jax.jit(lambda y: irfftn(rfftn(y)))
        grad_bound = jax.jit(lambda y: irfftn(rfftn(irfftn(rfftn(y)))))
        fft_args = grad_args = (x,)
    else:  # P = C (C + 1) / 2 inverse transforms of a precomputed (P, ...) spectrum

        def then(done, y):  # y, ordered after `done` without touching either
            return jax.lax.optimization_barrier((done, y))

        def fft_pass(y, spec_p):
            done, spec_p = then(rfftn(y), spec_p)
            return done, irfftn(spec_p)

        def grad_pass(y, spec_p, spec_c):
            done, field_p = fft_pass(y, spec_p)
            back, spec_c = then(rfftn(field_p), spec_c)
            return done, back, irfftn(spec_c)

        p = channels * (channels + 1) // 2
        spec_p = rfftn(jnp.asarray(rng.uniform(size=(p, *spatial)), jnp.float32))
        fft_bound, grad_bound = jax.jit(fft_pass), jax.jit(grad_pass)
        fft_args, grad_args = (x, spec_p), (x, spec_p, spec)
    times = {
        "value": paired_seconds(value, (m,), fft_bound, fft_args, repeats, clock=CLOCK),
        "value+grad": paired_seconds(
            value_and_grad, (m, cotangent), grad_bound, grad_args, repeats, clock=CLOCK
        ),
    }
    if pairs == "auto":
        passes = jax.jit(functools.partial(_passes, ramp_size=spec.shape[-1], spatial=spatial))
        times["passes"] = paired_seconds(
            value_and_grad, (m, cotangent), passes, (m, spec, spec, x), repeats, clock=CLOCK
        )
    return times


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
        "value": paired_seconds(
            jax.jit(variogram3), (m,), jax.jit(gram), (d,), repeats, clock=CLOCK
        ),
        "value+grad": paired_seconds(
            value_and_grad, (m,), gram_and_grad, (d,), repeats, clock=CLOCK
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="*", default=["256,256", "512,512", "64,64,64", "128,128,128"]
    )
    parser.add_argument("--channels", nargs="*", type=int, default=[1, 9])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pairs", choices=("auto", "all"), default="auto")
    parser.add_argument("--three-point", action="store_true")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="single-threaded XLA, timed in CPU seconds of this process (time.process_time): "
        "far less sensitive to other processes on a loaded machine than wall time",
    )
    args = parser.parse_args()
    if args.cpu_time:  # before the backend starts, i.e. before the first jax.devices()
        global CLOCK
        CLOCK = time.process_time
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREAD}".strip()

    clock = "CPU time, single-threaded XLA" if args.cpu_time else "wall time"
    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}; {clock}"
    )
    if args.three_point:
        t = measure_three_point(args.repeats)
        print("| 128x128, C = 9, 25 lags | time (ms) | Gram product bound (ms) | ratio |")
        print("|---|---|---|---|")
        for name, (f, b, r) in t.items():
            print(f"| {name} | {1e3 * f:.2f} | {1e3 * b:.2f} | {r:.2f} |")
        return
    print(
        "| field | C | pairs | value (ms) | fft bound (ms) | ratio "
        "| value+grad (ms) | grad bound (ms) | ratio | passes (ms) | ratio to bound + passes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        spatial = tuple(int(n) for n in size.split(","))
        for c in args.channels:
            t = measure(spatial, c, args.repeats, args.pairs)
            (v, vb, vr), (g, gb, gr) = t["value"], t["value+grad"]
            field = "x".join(map(str, spatial))
            if args.pairs == "auto":
                p = t["passes"][1]
                extra = f"{1e3 * p:.2f} | {g / (gb + p):.2f}"
            else:
                extra = "- | -"
            print(
                f"| {field} | {c} | {args.pairs} | {1e3 * v:.2f} | {1e3 * vb:.2f} | {vr:.2f} "
                f"| {1e3 * g:.2f} | {1e3 * gb:.2f} | {gr:.2f} | {extra} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
