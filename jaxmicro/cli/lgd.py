"""``jaxmicro lgd``: Local-Global Decomposition with a trained or shipped model and a reference."""

from __future__ import annotations

import argparse

from jaxmicro.cli._model_args import add_model_args, init_distributed, model_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lgd",
        help="generate fields with the statistics of a reference (Local-Global Decomposition)",
        description="Sample Gaussian random fields with the 1- and 2-point statistics of "
        "REFERENCE, noise them to level t0 and refine them with t0 reverse steps of a trained "
        "model, with the 1-point correction (Buzzy et al. 2024). The reference must be in the "
        "units of the training data; a shipped model brings its own (reference.npy).",
    )
    add_model_args(parser)
    parser.add_argument(
        "--reference",
        default=None,
        help=".npy field (*spatial, C), or (*spatial) for one channel (default: the model's)",
    )
    parser.add_argument(
        "--shape", default=None, help="sample size, e.g. 128,128 (default: the reference's)"
    )
    parser.add_argument("--n", type=int, default=8, help="number of samples")
    parser.add_argument("--t0", type=int, default=300, help="start level of the diffusion")
    parser.add_argument("--no-renoise", action="store_true", help="seed with the field as is")
    parser.add_argument("--strength", type=float, default=1.0, help="1-point correction weight")
    parser.add_argument("--guidance", type=float, default=0.0, help="2-point guidance scale")
    parser.add_argument("--steps", type=int, default=None, help="sub-trajectory steps")
    parser.add_argument("--non-periodic", action="store_true", help="reference is not periodic")
    parser.add_argument("--symmetry", default=None, help="also write orientations (e.g. cubic)")
    parser.add_argument("--basis", choices=("rogsh", "shsh"), default=None)
    parser.add_argument("--degrees", type=int, nargs="+", default=None, help="SHSH degrees")
    parser.add_argument("--batch", type=int, default=8, help="samples per device call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    if args.n < 1 or args.batch < 1:
        raise ValueError(f"--n, --batch: expected positive counts, got {args.n}, {args.batch}")
    init_distributed(args)
    from jaxmicro.io import load_npy
    from jaxmicro.lgd import lgd_run
    from jaxmicro.train import save_grid
    from jaxmicro.train.parallel import is_primary, prepare_output_dir_once

    model = model_from_args(args)
    card = model.card.get("lgd", {})
    reference_path = args.reference or (model.path / "reference_field.npy")
    if not args.reference and not reference_path.is_file():
        raise ValueError("--reference: this model ships no reference field; pass one")
    reference = load_npy(reference_path, "--reference")
    shape = None
    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.split(","))
        except ValueError:
            raise ValueError(
                f"--shape: expected comma-separated integers, got {args.shape!r}"
            ) from None
    out = prepare_output_dir_once(args.out, overwrite=args.overwrite, name="--out")
    result = lgd_run(
        model,
        reference,
        args.n,
        seed=args.seed,
        shape=shape,
        t0=args.t0,
        renoise=not args.no_renoise,
        strength=args.strength,
        guidance_scale=args.guidance,
        num_steps=args.steps,
        periodic=not args.non_periodic,
        batch_size=args.batch,
        symmetry=args.symmetry or card.get("symmetry"),
        basis=args.basis or card.get("basis", "rogsh"),
        degrees=tuple(args.degrees or card.get("degrees", (8,))),
    )
    x = result["samples"]
    if not is_primary():  # every process holds all samples; process 0 writes them
        return 0
    np.save(out / "samples.npy", x)
    save_grid(x[:64], out / "samples.png")
    written = ["samples.npy", "samples.png"]
    if "orientations" in result:
        np.save(out / "orientations.npy", result["orientations"])
        written.append("orientations.npy")
    print(f"{x.shape[0]} samples {x.shape[1:]} -> {out}: " + ", ".join(written))
    return 0
