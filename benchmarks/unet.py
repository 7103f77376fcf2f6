"""Speed of the 3D UNet at GrainPaint's two model sizes (batch 1, 32^3, float32, CPU).

python benchmarks/unet.py [--repeats 5] [--configs grainpaint_1m grainpaint_6m]

Prints, per configuration: parameters, XLA's FLOP count of one forward pass
(``jit(f).lower(...).compile().cost_analysis()``), median seconds of forward and forward+backward
(compilation excluded, results blocked on), GFLOP/s, and the speed ratio against GrainPaint's
PyTorch UNet measured on the same 2-core CPU (0.38 s / 25 GFLOP for ~1.1M parameters, 2.39 s /
375 GFLOP for ~6.4M). The ratio compares throughput, i.e. time at equal FLOPs:
``(our GFLOP/s) / (their GFLOP/s)``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmicro.nn import UNet, count_params, unet_config

# GrainPaint PyTorch UNet, batch 1, 32^3, same 2-core CPU: (seconds per forward, GFLOP).
TORCH_REFERENCE = {"grainpaint_1m": (0.38, 25.0), "grainpaint_6m": (2.39, 375.0)}


def _median_seconds(f, args, repeats: int) -> float:
    jax.block_until_ready(f(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
    sec_f = _median_seconds(fwd, (state, x, t), repeats)
    sec_fb = _median_seconds(fwd_bwd, (state, x, t), max(repeats // 2, 1))
    ref_s, ref_gflop = TORCH_REFERENCE[name]
    return {
        "name": name,
        "params": count_params(nnx.merge(graphdef, state)),
        "gflop": flops_f / 1e9,
        "fwd_s": sec_f,
        "fwd_gflops": flops_f / 1e9 / sec_f,
        "fwdbwd_s": sec_fb,
        "fwdbwd_gflops": flops_fb / 1e9 / sec_fb,
        "torch_s": ref_s,
        "torch_gflops": ref_gflop / ref_s,
        "ratio": (flops_f / 1e9 / sec_f) / (ref_gflop / ref_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=list(TORCH_REFERENCE))
    args = parser.parse_args()
    print(f"devices: {jax.devices()}")
    head = (
        f"{'config':<15}{'params':>10}{'GFLOP':>8}{'fwd s':>9}{'GFLOP/s':>9}"
        f"{'fwd+bwd s':>11}{'GFLOP/s':>9}{'torch s':>9}{'torch GFLOP/s':>15}{'ratio':>7}"
    )
    print(head)
    for name in args.configs:
        r = bench(name, args.repeats)
        print(
            f"{r['name']:<15}{r['params']:>10,}{r['gflop']:>8.1f}{r['fwd_s']:>9.3f}"
            f"{r['fwd_gflops']:>9.1f}{r['fwdbwd_s']:>11.3f}{r['fwdbwd_gflops']:>9.1f}"
            f"{r['torch_s']:>9.2f}{r['torch_gflops']:>15.1f}{r['ratio']:>7.2f}"
        )


if __name__ == "__main__":
    main()
