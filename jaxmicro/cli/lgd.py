"""``jaxmicro lgd``: Local-Global Decomposition with a trained or shipped model and a reference."""

from __future__ import annotations

import argparse

from jaxmicro.cli._model_args import (
    add_model_args,
    check_counts,
    init_distributed,
    model_from_args,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lgd",
        help="generate fields with the statistics of a reference (Local-Global Decomposition)",
        description="Sample Gaussian random fields with the 1- and 2-point statistics of "
        "REFERENCE, noise them to level t0 and refine them with t0 reverse steps of a trained "
        "model, with the 1-point correction (Buzzy et al. 2024). The reference must be in the "
        "units of the training data; a shipped model brings its own (reference_field.npy, or "
        "the orientations reference.npy that its card's basis maps to fields). With a crystal "
        "symmetry (--symmetry or the card's) the orientations are written as unit quaternions "
        "(orientations.npy, n x *shape x 4) with an IPF-Z map of each sample (ipf.png).",
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
    parser.add_argument(
        "-n", "--n", "--num-samples", dest="num_samples", type=int, default=8, help="samples"
    )
    parser.add_argument(
        "--t0", type=int, default=None, help="start level of the diffusion (default: card's or 300)"
    )
    parser.add_argument("--no-renoise", action="store_true", help="seed with the field as is")
    parser.add_argument("--strength", type=float, default=1.0, help="1-point correction weight")
    parser.add_argument("--guidance", type=float, default=0.0, help="2-point guidance scale")
    parser.add_argument(
        "--steps", type=int, default=None, help="sub-trajectory steps (default: card's or all)"
    )
    parser.add_argument("--non-periodic", action="store_true", help="reference is not periodic")
    parser.add_argument("--symmetry", default=None, help="also write orientations (e.g. cubic)")
    parser.add_argument("--basis", choices=("rogsh", "shsh"), default=None)
    parser.add_argument("--degrees", type=int, nargs="+", default=None, help="SHSH degrees")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per device call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    check_counts(args)
    init_distributed(args)
    from jaxmicro.io import load_npy
    from jaxmicro.lgd import lgd_run
    from jaxmicro.train import save_grid
    from jaxmicro.train.parallel import is_primary, prepare_output_dir_once

    model = model_from_args(args)
    card = model.card.get("lgd", {})
    reference = _reference(args, model, card, load_npy)
    shape = None
    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.split(","))
        except ValueError:
            raise ValueError(
                f"--shape: expected comma-separated integers, got {args.shape!r}"
            ) from None
    symmetry = args.symmetry or card.get("symmetry")
    out = prepare_output_dir_once(args.out, overwrite=args.overwrite, name="--out")
    result = lgd_run(
        model,
        reference,
        args.num_samples,
        seed=args.seed,
        shape=shape,
        t0=args.t0 if args.t0 is not None else card.get("t0", 300),
        renoise=not args.no_renoise,
        strength=args.strength,
        guidance_scale=args.guidance,
        num_steps=args.steps if args.steps is not None else card.get("num_steps"),
        periodic=not args.non_periodic,
        batch_size=args.batch_size,
        symmetry=symmetry,
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
        if x.ndim == 4:  # 2D maps: IPF-Z colours
            _save_ipf(result["orientations"][:16], symmetry, out / "ipf.png")
            written.append("ipf.png")
    print(f"{x.shape[0]} samples {x.shape[1:]} -> {out}: " + ", ".join(written))
    return 0


def _reference(args, model, card: dict, load_npy):
    """The reference field: ``--reference``, else the model's ``reference_field.npy``, else its
    orientations ``reference.npy`` mapped to fields by the card's basis (ROGSH only)."""
    if args.reference:
        return load_npy(args.reference, "--reference")
    path = model.path / "reference_field.npy"
    if path.is_file():
        return load_npy(path, "reference_field.npy")
    quats = model.path / "reference.npy"
    if quats.is_file() and card.get("basis", "rogsh") == "rogsh" and card.get("symmetry"):
        from jaxmicro import harmonics, orientations

        q = load_npy(quats, "reference.npy")
        return harmonics.rogsh(orientations.quat_to_euler(q), card["symmetry"])
    raise ValueError("--reference: this model ships no reference field; pass one")


def _save_ipf(quats, symmetry: str, path) -> None:
    """IPF-Z colour maps of ``(n, H, W, 4)`` orientations as one PNG grid."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxmicro.orientations import ipf_color

    rgb = np.asarray(ipf_color(quats, symmetry))
    n = rgb.shape[0]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.5 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(rgb[i], interpolation="nearest")
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=100)
    plt.close(fig)
