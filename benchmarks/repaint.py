"""RePaint cost per 32^3 block: denoiser calls and seconds, DDPM vs the DDIM sub-trajectory.

GrainPaint's settings: T = 250, resample U = 10, jump 1, last 25 steps plain (and U = 11, the
2,500-call equivalent of its code). The denoiser is ``jaxmicro.nn.UNet`` ``tiny3d`` without its
attention block (8/16 channels, untrained weights: the cost does not depend on them) on the CPU,
batch 1, float32. Compilation is excluded (ahead of time); times are medians of ``--repeats``
runs.

A block costs (denoiser calls) x (one call) plus the sampler's own work (noise, mixing, the
scan). The table measures one call, times complete RePaint runs whose call count is at most
``--max-calls`` and estimates the others as
calls x call time x (measured overhead factor of the largest complete run). Run:

    python benchmarks/repaint.py [--repeats 3] [--max-calls 100]   # --max-calls -1: time all
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from _timing import median_seconds
from flax import nnx

from jaxmicro.diffusion import linear_schedule
from jaxmicro.diffusion.repaint import repaint_sample, repaint_schedule
from jaxmicro.nn import UNet, count_params
from jaxmicro.nn.unet import unet_config
from jaxmicro.train.denoiser import denoiser, unet_apply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--max-calls", type=int, default=100, help="time complete runs up to this many calls"
    )
    args = parser.parse_args()

    config = unet_config("tiny3d", in_channels=1, max_time=250.0, attention_levels=())
    model = UNet(config, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    schedule = linear_schedule(250, dtype=jnp.float32)
    known = jax.random.normal(jax.random.key(0), (1, 32, 32, 32, 1), jnp.float32)
    mask = jnp.zeros_like(known).at[:, :16].set(1.0)  # half the block known, as in outpainting

    t = jnp.array([100])
    call = jax.jit(lambda p, x, t: nnx.merge(graphdef, p)(x, t)).lower(params, known, t).compile()
    per_call = median_seconds(
        lambda: call(params, known, t), repeats=max(args.repeats, 5), warmup=False
    )

    def sampler(resample, num_steps, plain_tail):
        @jax.jit
        def run(params, key):
            eps_fn = denoiser(unet_apply(nnx.merge(graphdef, params)), schedule)
            return repaint_sample(
                key,
                eps_fn,
                schedule,
                known,
                mask,
                resample=resample,
                jump=1,
                plain_tail=plain_tail,
                num_steps=num_steps,
            )

        key = jax.random.key(1)
        compiled = run.lower(params, key).compile()
        return lambda: compiled(params, key)

    variants = [  # name, resample, num_steps, plain_tail
        ("DDPM-RePaint", 10, None, 25),
        ("DDPM-RePaint", 11, None, 25),
        ("DDIM-RePaint", 10, 50, 5),
        ("DDIM-RePaint", 10, 25, 3),
        ("DDIM-RePaint", 2, 10, 1),
    ]
    rows, overhead = [], None
    for name, resample, num_steps, tail in sorted(variants, key=lambda v: _calls(*v[1:])):
        calls = _calls(resample, num_steps, tail)
        measured = args.max_calls < 0 or calls <= args.max_calls
        if measured:
            seconds = median_seconds(
                sampler(resample, num_steps, tail), repeats=args.repeats, warmup=False
            )
            overhead = seconds / (calls * per_call)
        else:
            seconds = calls * per_call * (overhead or 1.0)
        rows.append((name, resample, num_steps or 250, tail, calls, seconds, measured))

    print(
        f"UNet tiny3d without attention ({count_params(model):,} parameters), one 32^3 block,"
        f" {jax.devices()[0].platform}: one denoiser call {1e3 * per_call:.0f} ms; sampler "
        f"overhead factor {overhead or float('nan'):.2f} (largest complete run)"
    )
    print(f"{'variant':<13} {'U':>3} {'steps':>5} {'tail':>4} {'calls':>6} {'s/block':>9}  how")
    for name, resample, steps, tail, calls, seconds, measured in rows:
        how = "measured" if measured else "calls x call x overhead"
        print(f"{name:<13} {resample:>3} {steps:>5} {tail:>4} {calls:>6} {seconds:>9.1f}  {how}")


def _calls(resample: int, num_steps: int | None, plain_tail: int) -> int:
    levels = repaint_schedule(
        250, resample=resample, jump=1, plain_tail=plain_tail, num_steps=num_steps
    )
    return int(np.sum(np.diff(levels) < 0))


if __name__ == "__main__":
    main()
