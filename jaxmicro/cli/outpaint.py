"""``jaxmicro outpaint``: fill a large box or a CAD part with grains from a trained 3D model."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "outpaint",
        help="generate a large or CAD-shaped grain volume by outpainting (GrainPaint)",
        description="Plan overlapping blocks in dependency order, inpaint each from its "
        "generated neighbours with RePaint (batched and sharded over the devices), write the "
        "volume to disk as it goes (resumable), then segment it into grains.",
    )
    parser.add_argument("--checkpoint", required=True, help="3D run folder of `jaxmicro train`")
    region = parser.add_mutually_exclusive_group(required=True)
    region.add_argument("--shape", help="volume size Z,Y,X in voxels, e.g. 128,128,128")
    region.add_argument("--stl", help="closed triangle mesh (ASCII or binary STL) to fill")
    parser.add_argument("--voxel", type=float, help="voxel size in STL units (with --stl)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument(
        "--mode",
        choices=("grid", "centre"),
        default="grid",
        help="grid: GrainPaint's 8-stage plan; centre: anisotropic plan (§3.3)",
    )
    parser.add_argument("--batch-size", type=int, default=24, help="blocks per batch")
    parser.add_argument("--resample", type=int, default=10, help="RePaint resamplings U")
    parser.add_argument("--jump", type=int, default=1, help="RePaint jump length j")
    parser.add_argument("--plain-tail", type=int, default=25, help="final steps without resampling")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="run RePaint on a DDIM sub-trajectory of this many steps (faster)",
    )
    parser.add_argument(
        "--reference",
        help=".npy of reference grain IDs (Z,Y,X) or (N,Z,Y,X) "
        "for the statistics table (e.g. the Potts training volumes)",
    )
    parser.add_argument(
        "--segment",
        choices=("regions", "dbscan"),
        default="regions",
        help="segmentation of the continuous field into grains",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw", action="store_true", help="raw instead of EMA parameters")
    parser.set_defaults(func=run)


def _region(args, block: int):
    """(volume shape, mask or None)."""
    import numpy as np

    from jaxmicro.outpaint import read_stl, voxelize

    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.split(","))
        except ValueError:
            raise ValueError(f"--shape: expected Z,Y,X integers, got {args.shape!r}") from None
        if len(shape) != 3 or min(shape) < block:
            raise ValueError(f"--shape: expected 3 sizes >= the block size {block}, got {shape}")
        return shape, None
    if not args.voxel or args.voxel <= 0:
        raise ValueError("--voxel: a positive voxel size is required with --stl")
    mask, _ = voxelize(read_stl(args.stl), args.voxel)
    shape = tuple(max(n, block) for n in mask.shape)
    padded = np.zeros(shape, bool)
    padded[tuple(slice(0, n) for n in mask.shape)] = mask
    if not padded.any():
        raise ValueError(f"--stl: the part has no voxel inside at --voxel {args.voxel}")
    return shape, padded


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxmicro.grains import segment_continuous
    from jaxmicro.io import write_vti
    from jaxmicro.outpaint import (
        compare_statistics,
        grain_statistics,
        outpaint_volume,
        plan_blocks,
        repaint_inpainter,
        statistics_markdown,
    )
    from jaxmicro.outpaint.report import save_slices
    from jaxmicro.train import batch_mesh, make_schedule, model_from_state, restore_run
    from jaxmicro.train.parallel import batch_sharded

    mesh = batch_mesh()
    config, graphdef, state = restore_run(args.checkpoint, mesh=mesh)
    block_shape = tuple(config.data.shape)
    if len(block_shape) != 3 or len(set(block_shape)) != 1:
        raise ValueError(f"--checkpoint: needs a model of cubic 3D blocks, got {block_shape}")
    block = block_shape[0]
    shape, mask = _region(args, block)
    model = model_from_state(graphdef, state, ema=not args.raw)
    schedule = make_schedule(config, dtype=jnp.float32)

    def eps_fn(x, t):
        x = jax.lax.with_sharding_constraint(x, batch_sharded(mesh))
        return model(x, t)

    inpaint = repaint_inpainter(
        eps_fn,
        schedule,
        resample=args.resample,
        jump=args.jump,
        plain_tail=args.plain_tail,
        num_steps=args.steps,
    )
    batches = plan_blocks(shape, block=block, batch_size=args.batch_size, mode=args.mode, mask=mask)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"volume {shape}, block {block}: {sum(map(len, batches))} blocks in "
        f"{len(batches)} batches on {mesh.size} device(s)"
    )
    start = time.perf_counter()
    values = outpaint_volume(
        jax.random.key(args.seed),
        inpaint,
        batches,
        out / "volume",
        volume_shape=shape,
        channels=config.model.in_channels,
        block=block,
        resume=args.resume,
        mesh=mesh,
    )
    seconds = time.perf_counter() - start
    field = np.asarray(values[..., 0], np.float64)
    labels = segment_continuous(field, method=args.segment)
    if mask is not None:
        labels = np.where(mask, labels, 0)
    np.save(out / "grain_ids.npy", labels)
    fields = {"field": field.astype(np.float32), "grain_ids": labels.astype(np.int32)}
    if mask is not None:
        fields["region"] = mask
    write_vti(out / "volume.vti", fields)
    save_slices(field, labels, out / "slices.png")
    generated = grain_statistics(labels)
    comparison = None
    if args.reference:
        ref = np.load(args.reference)
        ref = ref[None] if ref.ndim == 3 else ref
        stats = [grain_statistics(r, periodic=True) for r in ref]
        reference = {k: np.concatenate([s[k] for s in stats]) for k in stats[0]}
        comparison = compare_statistics(generated, reference)
    (out / "statistics.md").write_text(statistics_markdown(generated, comparison))
    voxels = int(mask.sum()) if mask is not None else int(np.prod(shape))
    summary = {
        "shape": shape,
        "blocks": sum(map(len, batches)),
        "batches": len(batches),
        "seconds": seconds,
        "voxels_per_minute": voxels / seconds * 60,
        "grains": int(len(generated["volume"])),
        "statistics": comparison,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(statistics_markdown(generated, comparison))
    print(
        f"wrote {out}/volume.vti, grain_ids.npy, slices.png, statistics.md "
        f"({summary['voxels_per_minute']:.0f} voxels/min)"
    )
    return 0
