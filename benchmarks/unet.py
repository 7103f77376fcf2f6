"""Speed of the 3D UNet at GrainPaint's two model sizes (batch 1, 32^3, float32, CPU).

python benchmarks/unet.py [--repeats 5] [--configs grainpaint_1m grainpaint_6m]

Prints, per configuration: parameters, XLA's FLOP count of one forward pass
(``jit(f).lower(...).compile().cost_analysis()``, 2 FLOPs per multiply-add), median wall seconds
and median process CPU seconds of forward and forward+backward (compilation excluded, results
blocked on), GFLOP/s from the wall time, and two speed ratios against GrainPaint's PyTorch UNet
measured on the same 2-core CPU (0.38 s / 25 GFLOP for ~1.1M parameters, 2.39 s / 375 GFLOP for
~6.4M): ``ratio`` at equal FLOPs, ``(our GFLOP/s) / (their GFLOP/s)``, as issue 7 defines it,
and ``per fwd``, ``(their seconds) / (our seconds)`` per forward pass. GrainPaint's network is a
video-style UNet (2D convolutions plus depth-only convolutions, depth never downsampled), so it
spends more FLOPs per parameter than our 3D UNet: the two ratios differ by the FLOP ratio.

CPU seconds are printed because the machine is shared: under load the wall time of a pass
grows, its CPU time much less (it includes the thread pools' spin-waiting, so it is an upper
bound on the work). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmicro.nn import UNet, count_params, unet_config

# GrainPaint PyTorch UNet, batch 1, 32^3, same 2-core CPU: (seconds per forward, GFLOP).
TORCH_REFERENCE = {"grainpaint_1m": (0.38, 25.0), "grainpaint_6m": (2.39, 375.0)}


def _median_seconds(f, args, repeats: int) -> tuple[float, float]:
    """Median wall and median process-CPU seconds of ``f(*args)``."""
    jax.block_until_ready(f(*args))  # compile and warm up
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(f(*args))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _flops(f, args) -> float:
    cost = f.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


def bench(name: str, repeats: int) -> dict:
    cfg = unet_config(name)
    graphdef, state = nnx.split(nnx.eval_shape(lambda: UNet(cfg, rngs=nnx.Rngs(0))))
    state = jax.jit(lambda: nnx.split(UNet(cfg, rngs=nnx.Rngs(0)))[1])()
    # Perturb the zero-initialized layers so the backward pass does real work everywhere.
    state = jax.tree.map(lambda p: p + 0.01, state)
    x = jax.random.normal(jax.random.key(0), (1, 32, 32, 32, cfg.in_channels), jnp.float32)
    t = jnp.array([100])

    def forward(state, x, t):
        return nnx.merge(graphdef, state)(x, t)

    def loss(state, x, t):
        return jnp.mean(jnp.square(forward(state, x, t)))

    fwd = jax.jit(forward)
    fwd_bwd = jax.jit(jax.grad(loss))
    flops_f, flops_fb = _flops(fwd, (state, x, t)), _flops(fwd_bwd, (state, x, t))
    sec_f, cpu_f = _median_seconds(fwd, (state, x, t), repeats)
    sec_fb, cpu_fb = _median_seconds(fwd_bwd, (state, x, t), max(repeats // 2, 1))
    ref_s, ref_gflop = TORCH_REFERENCE[name]
    return {
        "name": name,
        "params": count_params(nnx.merge(graphdef, state)),
        "gflop": flops_f / 1e9,
        "fwd_s": sec_f,
        "fwd_cpu": cpu_f,
        "fwd_gflops": flops_f / 1e9 / sec_f,
        "fwdbwd_s": sec_fb,
        "fwdbwd_cpu": cpu_fb,
        "fwdbwd_gflops": flops_fb / 1e9 / sec_fb,
        "torch_s": ref_s,
        "torch_gflops": ref_gflop / ref_s,
        "ratio": (flops_f / 1e9 / sec_f) / (ref_gflop / ref_s),
        "ratio_per_fwd": ref_s / sec_f,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=list(TORCH_REFERENCE))
    args = parser.parse_args()
    print(f"devices: {jax.devices()}; load average {os.getloadavg()[0]:.1f} (1 min)")
    head = (
        f"{'config':<15}{'params':>10}{'GFLOP':>7}{'fwd s':>8}{'cpu s':>7}{'GFLOP/s':>8}"
        f"{'fwd+bwd s':>10}{'cpu s':>7}{'GFLOP/s':>8}{'torch s':>8}{'torch GFLOP/s':>14}"
        f"{'ratio':>6}{'per fwd':>8}"
    )
    print(head)
    for name in args.configs:
        r = bench(name, args.repeats)
        print(
            f"{r['name']:<15}{r['params']:>10,}{r['gflop']:>7.1f}{r['fwd_s']:>8.3f}"
            f"{r['fwd_cpu']:>7.3f}{r['fwd_gflops']:>8.1f}{r['fwdbwd_s']:>10.3f}"
            f"{r['fwdbwd_cpu']:>7.3f}{r['fwdbwd_gflops']:>8.1f}{r['torch_s']:>8.2f}"
            f"{r['torch_gflops']:>14.1f}{r['ratio']:>6.2f}{r['ratio_per_fwd']:>8.2f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
