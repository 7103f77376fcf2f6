"""``jaxmicro outpaint``: fill a large box or a CAD part with grains from a trained 3D model.

An argument adapter over ``jaxmicro.outpaint.outpaint`` (the pipeline: plan, RePaint, disk
volume, segmentation, statistics); the model comes from ``jaxmicro.train.load_model`` and its
denoiser from ``Model.eps_fn`` (``jaxmicro.train.denoiser``).

A shipped model's card may name its sampler (``card["outpaint"]``: ``resample``, ``jump``,
``plain_tail``, ``num_steps``, ``eta``, ``batch_size``): it is the default sampler with
``--model``, and any sampler option on the command line replaces it
(``jaxmicro.outpaint.card_sampler``).
``--stl example`` is the example part shipped in the model's folder (``card["example"]``: ``stl``
and its ``voxel``).
"""

from __future__ import annotations

import argparse

from jaxmicro.cli._model_args import add_model_args, init_distributed, model_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "outpaint",
        help="generate a large or CAD-shaped grain volume by outpainting (GrainPaint)",
        description="Plan overlapping blocks in dependency order, inpaint each from its "
        "generated neighbours with RePaint (batched and sharded over the devices), write the "
        "volume to disk as it goes (resumable), then segment it into grains.",
    )
    add_model_args(parser)
    region = parser.add_mutually_exclusive_group(required=True)
    region.add_argument("--shape", help="volume size Z,Y,X in voxels, e.g. 128,128,128")
    region.add_argument(
        "--stl",
        help="closed triangle mesh (ASCII or binary STL) to fill; 'example': the example part "
        "shipped with --model",
    )
    parser.add_argument(
        "--voxel",
        type=float,
        help="voxel size in STL units (with --stl; default for 'example': the card's)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument(
        "--mode",
        choices=("grid", "centre"),
        default="grid",
        help="grid: GrainPaint's 8-stage plan; centre: anisotropic plan (§3.3)",
    )
    # None: the model card's sampler (shipped models), else the library's defaults.
    parser.add_argument("--batch-size", type=int, help="blocks per batch (default 24)")
    parser.add_argument("--resample", type=int, help="RePaint resamplings U (default 10)")
    parser.add_argument("--jump", type=int, help="RePaint jump length j (default 1)")
    parser.add_argument(
        "--plain-tail", type=int, help="final steps without resampling (default 25)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="run RePaint on a DDIM sub-trajectory of this many steps (faster)",
    )
    parser.add_argument(
        "--eta", type=float, help="DDIM stochasticity of the reverse steps (default 1)"
    )
    parser.add_argument(
        "--reference",
        help=".npy of reference grain IDs (Z,Y,X) or (N,Z,Y,X) "
        "for the statistics table (e.g. Potts volumes), measured as the generated volume",
    )
    parser.add_argument(
        "--boundary",
        choices=("exclude", "include"),
        default="exclude",
        help="grains cut by the box faces or the part surface: left out of the statistics of "
        "both volumes (default) or measured as cut",
    )
    parser.add_argument(
        "--segment",
        choices=("regions", "dbscan"),
        default="regions",
        help="segmentation of the continuous field into grains",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


# The library's argument names -> this command's options, for its error messages.
_OPTIONS = {
    "shape": "--shape",
    "stl": "--stl",
    "voxel": "--voxel",
    "out_dir": "--out",
    "batch_size": "--batch-size",
    "resample": "--resample",
    "jump": "--jump",
    "plain_tail": "--plain-tail",
    "num_steps": "--steps",
    "eta": "--eta",
    "reference": "--reference",
}

# Sampler options: argument -> library keyword (defaults: the card's, else the library's).
SAMPLER_OPTIONS = {
    "batch_size": "batch_size",
    "resample": "resample",
    "jump": "jump",
    "plain_tail": "plain_tail",
    "steps": "num_steps",
    "eta": "eta",
}


def _named(err: ValueError, default: str) -> ValueError:
    """The library's error naming the option (``resample: ...`` -> ``--resample: ...``)."""
    name, sep, rest = str(err).partition(":")
    if sep and name in _OPTIONS:
        return ValueError(f"{_OPTIONS[name]}:{rest}")
    return ValueError(f"{default}: {err}")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import jax
    import numpy as np

    init_distributed(args)
    from jaxmicro.outpaint import (
        card_sampler,
        example_part,
        outpaint,
        region_from_shape,
        region_from_stl,
    )
    from jaxmicro.train import batch_mesh
    from jaxmicro.train.parallel import is_primary

    mesh = batch_mesh()
    model = model_from_args(args, mesh)
    block_shape = tuple(model.config.data.shape)
    source = "--model" if args.model else "--checkpoint"
    if model.autoencoder is not None or len(block_shape) != 3 or len(set(block_shape)) != 1:
        raise ValueError(f"{source}: needs a pixel-space model of cubic 3D blocks")
    block = block_shape[0]
    try:
        if args.shape:
            shape, mask = region_from_shape(args.shape, block)
        elif args.stl == "example" and not Path(args.stl).is_file():
            part = example_part(model.path, model.card, args.voxel)
            shape, mask = region_from_stl(*part, block)
        else:
            shape, mask = region_from_stl(args.stl, args.voxel, block)
    except ValueError as err:
        raise _named(err, "--stl") from None
    reference = None
    if args.reference:
        try:
            reference = np.load(args.reference)
        except (OSError, ValueError) as err:
            raise ValueError(f"--reference: cannot read {args.reference} ({err})") from None
    out = Path(args.out)
    overrides = {name: getattr(args, arg) for arg, name in SAMPLER_OPTIONS.items()}
    sampler = card_sampler(model.card, overrides)
    print(f"volume {shape}, block {block}, {mesh.size} device(s) -> {out}; sampler {sampler}")
    try:  # arguments are checked, and --out prepared, before any generation
        summary = outpaint(
            jax.random.key(args.seed),
            model.eps_fn(mesh=mesh),
            model.schedule,
            block=block,
            channels=model.config.model.in_channels,
            shape=shape,
            mask=mask,
            out_dir=out,
            **sampler,
            mode=args.mode,
            segment=args.segment,
            reference=reference,
            boundary=args.boundary,
            resume=args.resume,
            overwrite=args.overwrite,
            mesh=mesh,
        )
    except ValueError as err:
        raise _named(err, source) from None
    if not is_primary():  # process 0 wrote the files
        return 0
    print((out / "statistics.md").read_text(), end="")
    rate = summary["voxels_per_minute"]
    print(
        f"{summary['blocks']} blocks x {summary['denoiser_calls_per_block']} denoiser calls, "
        f"{summary['grains']} grains; "
        + (f"{rate:,.0f} voxels/min; " if rate else "nothing left to generate; ")
        + f"wrote {out}/volume.vti, grain_ids.npy, slices.png, statistics.md, summary.json"
    )
    return 0
