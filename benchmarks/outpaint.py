"""Outpainting benchmarks: planner time, and voxels per minute + peak RSS of a whole volume.

    python benchmarks/outpaint.py                       # planner table + 128^3 generation
    python benchmarks/outpaint.py --size 256            # the 256^3 memory target (<= 2 GB)

The generation uses a tiny random-initialized 3D UNet (the cost per voxel of a trained model of
the same size is the same) through RePaint on a short DDIM sub-trajectory, so the figure measures
the pipeline (planning, gathering known voxels, jitted sharded sampling, disk writes); a trained
GrainPaint-size model multiplies the sampling part by its denoiser cost and step count.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmicro.diffusion import linear_schedule
from jaxmicro.nn import UNet, UNetConfig
from jaxmicro.outpaint import outpaint_volume, plan_blocks, repaint_inpainter
from jaxmicro.train import batch_mesh
from jaxmicro.train.denoiser import denoiser, unet_apply


def planner_table() -> None:
    print("| volume | mode | blocks | batches | seconds |")
    print("|---|---|---|---|---|")
    for shape in [(224, 224, 224), (464, 464, 224)]:
        for mode in ("grid", "centre"):
            plan_blocks(shape, mode=mode)  # warm caches of scipy / numpy
            start = time.perf_counter()
            batches = plan_blocks(shape, mode=mode)
            seconds = time.perf_counter() - start
            blocks = sum(map(len, batches))
            print(
                f"| {'x'.join(map(str, shape))} | {mode} | {blocks} | {len(batches)} | "
                f"{seconds:.4f} |"
            )


def generation(size: int, block: int, batch: int, steps: int) -> None:
    model = UNet(
        UNetConfig(
            spatial_dims=3,
            in_channels=1,
            channels=(8, 16),
            num_res_blocks=1,
            attention_levels=(),
            num_groups=4,
            dropout=0.0,
        ),
        rngs=nnx.Rngs(0),
    )
    schedule = linear_schedule(50, dtype=jnp.float32)
    mesh = batch_mesh()
    eps_fn = denoiser(unet_apply(model), schedule, mesh=mesh)
    inpaint = repaint_inpainter(eps_fn, schedule, resample=1, plain_tail=0, num_steps=steps)
    shape = (size,) * 3
    batches = plan_blocks(shape, block=block, batch_size=batch)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        outpaint_volume(
            jax.random.key(0), inpaint, batches, tmp, volume_shape=shape, block=block, mesh=mesh
        )
        seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    blocks = sum(map(len, batches))
    print("\n| volume | block | blocks | RePaint-DDIM steps | seconds | voxels/min | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {size}^3 | {block} | {blocks} | {steps} | {seconds:.1f} | "
        f"{size**3 / seconds * 60:,.0f} | {rss:.0f} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--block", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    planner_table()
    generation(args.size, args.block, args.batch, args.steps)


if __name__ == "__main__":
    main()
