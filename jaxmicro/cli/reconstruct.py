"""``jaxmicro reconstruct``: a microstructure whose descriptors match a reference (MCR).

    jaxmicro reconstruct --reference REF --shape 64,64[,64] --out DIR [--overwrite]
        [--descriptors two_point:1:max_lag=7,mean_variation:0.1] [--max-iter 200]
        [--symmetry cubic] [--optimizer lbfgsb] [--levels 1] [--seeds 1]
    jaxmicro reconstruct --example --out DIR      # built-in synthetic polycrystal, < 2 min on CPU

REF: .npy float (*spatial, 3) Bunge Euler angles in radians or (*spatial, 4) unit quaternions;
.npy integer phase labels 0..K-1; .npy float indicators in [0, 1]; a grey-level image (.png,
.tif, ...); an .ang/.ctf EBSD map (see jaxmicro.reconstruct.reference). A 2D reference with a 3D
--shape drives the volume through its slices. --descriptors: name[:weight][:option=value]...,
comma-separated (jaxmicro.reconstruct.parse); defaults: two_point (lag window --window, default
min(8, smallest size // 4)) and mean_variation, plus three_point_variogram for orientations.

DIR (new or empty, or --overwrite) receives field.npy, quats.npy and euler.npy (orientations) or
phases.npy, fields.png, loss.png, two_point.png, variogram.png and result.json.
"""

from __future__ import annotations

import argparse
import pathlib

from jaxmicro.cli._model_args import add_distributed_args, init_distributed


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reconstruct",
        help="reconstruct a microstructure from the descriptors of a reference (MCR)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--reference", type=pathlib.Path, help="reference file (see above)")
    source.add_argument(
        "--example", action="store_true", help="built-in 48x48 columnar cubic polycrystal"
    )
    p.add_argument("--out", required=True, type=pathlib.Path, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace the files already in --out")
    p.add_argument("--shape", help="reconstruction size, e.g. 64,64 or 64,64,64 (default: REF's)")
    p.add_argument("--kind", default="auto", choices=("auto", "euler", "quaternions", "phases"))
    p.add_argument("--descriptors", help="loss terms, e.g. two_point:1:max_lag=7,mean_variation:1")
    p.add_argument("--window", type=int, help="lag window W (>= 1) of the default descriptors")
    p.add_argument("--symmetry", help="crystal symmetry of orientations (default: cubic)")
    p.add_argument("--degrees", default="8", help="SHSH degrees, e.g. 4,6,8 (default: 8)")
    p.add_argument("--max-iter", type=int, help="iterations per level (default 200; example 300)")
    p.add_argument("--optimizer", default="lbfgsb", help="lbfgsb, jaxopt, lbfgs, adam or sgd")
    p.add_argument("--learning-rate", type=float, default=1e-2, help="for adam and sgd")
    p.add_argument("--levels", type=int, help="multigrid levels (default 1; example 2)")
    p.add_argument("--seeds", type=int, help="starts in one vmap, best kept (default 1; example 4)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed")
    p.add_argument("--non-periodic", action="store_true", help="non-periodic descriptors")
    add_distributed_args(p)
    p.set_defaults(func=run)


def _options(args) -> None:
    """Fills the defaults that depend on --example and checks the counts."""
    from jaxmicro.orientations import SYMMETRIES
    from jaxmicro.reconstruct import OPTIMIZERS

    example = {"levels": 2, "max_iter": 300, "seeds": 4}  # the example's loss varies 7x by start
    for name, value in example.items():
        if getattr(args, name) is None:
            setattr(args, name, value if args.example else 1 if name != "max_iter" else 200)
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: must be >= 1")
    if args.optimizer not in OPTIMIZERS:
        raise ValueError(f"--optimizer: unknown value {args.optimizer!r}; expected {OPTIMIZERS}")
    if args.symmetry is not None and args.symmetry not in SYMMETRIES:
        raise ValueError(f"--symmetry: unknown value {args.symmetry!r}; expected {SYMMETRIES}")
    if not 0 < args.learning_rate < float("inf"):
        raise ValueError(f"--learning-rate: expected a number > 0, got {args.learning_rate}")
    if args.window is not None and args.window < 1:
        raise ValueError(f"--window: the lag window must be >= 1, got {args.window}")
    try:
        args.degrees = tuple(int(d) for d in args.degrees.split(","))
    except ValueError:
        raise ValueError(f"--degrees: expected integers like 4,6,8, got {args.degrees!r}") from None


def run(args) -> int:
    import jax
    import numpy as np

    several = init_distributed(args)
    from jaxmicro import reconstruct as R
    from jaxmicro.reconstruct import report
    from jaxmicro.train.parallel import batch_mesh, is_primary, prepare_output_dir_once

    _options(args)
    if args.example:
        reference, representation = np.asarray(R.example_reference()), "orientations"
        symmetry = args.symmetry or "cubic"
    else:
        reference, representation, symmetry = R.load_reference(
            args.reference, args.kind, args.symmetry, name="--reference"
        )
    shape = R.parse_shape(args.shape, reference.shape[:-1], name="--shape")
    window = args.window or R.default_window(reference.shape[:-1], shape)
    if args.descriptors:
        terms = R.parse_descriptors(args.descriptors, name="--descriptors")
    else:
        terms = R.default_descriptors(representation, window, name="--window")
    periodic = not args.non_periodic
    try:
        spec = R.Spec(terms, representation, symmetry, args.degrees, periodic, args.levels)
    except ValueError as err:  # --levels >= 1 holds: SHSH degrees without invariants
        raise ValueError(f"--degrees: {err}") from None
    channels, seeds = reference.shape[-1], args.seeds
    R.check_memory(shape, spec, channels, seeds=seeds, optimizer=args.optimizer, name="--shape")
    if args.reference and args.out.resolve() in args.reference.resolve().parents:
        raise ValueError(f"--out: {args.out} holds the reference {args.reference}; choose another")
    out = prepare_output_dir_once(args.out, overwrite=args.overwrite, name="--out")
    shown = f", {symmetry}" if representation == "orientations" else ""
    names = ", ".join(f"{d.name} x{d.weight:g}" for d in spec.descriptors)
    print(f"reference {reference.shape} ({representation}{shown}) -> {shape}; descriptors: {names}")

    # Reading the reference dispatched dozens of operations eagerly, each a compiled program of
    # 1.5-4 MiB kept in JAX's caches: dropped before the solve's compilation, the run's peak.
    jax.clear_caches()
    solve = dict(optimizer=args.optimizer, max_iter=args.max_iter, learning_rate=args.learning_rate)
    solve["mesh"] = batch_mesh() if several else None  # starts split over the processes
    run = R.run_reconstruction(
        jax.random.key(args.seed), reference, shape, spec, seeds=seeds, progress=R.spinner, **solve
    )
    final = float(run.result.final_loss)
    if not np.isfinite(final):
        raise ValueError(
            f"--optimizer: the solve diverged (final loss {final} for every start); try lbfgsb, "
            "a smaller --learning-rate or other --descriptors"
        )
    print(f"initial loss {float(run.result.initial_loss):.4g}")
    for i, (level_shape, first, last) in enumerate(R.level_losses(run)):
        print(
            f"level {i + 1}/{args.levels} ({'x'.join(map(str, level_shape))}): loss {first:.4g} "
            f"after its first iteration, {last:.4g} after {args.max_iter}"
        )
    print(f"final loss {final:.4g}" + (f" (best of {seeds} seeds)" if seeds > 1 else ""))
    arrays = R.output_arrays(run)  # checked (on every process) before any is written
    if not is_primary():
        return 0
    for name, array in arrays.items():
        np.save(out / f"{name}.npy", array)
    rel = report.save_reconstruction_figures(
        out,
        reference,
        np.asarray(run.result.field),
        spec,
        R.loss_histories(run),
        window=window,
        max_iter=args.max_iter,
    )
    record = R.run_record(run, reference, variogram_error=rel)
    record = {"reference": "example" if args.example else str(args.reference), **record}
    report.write_json(out / "result.json", record)
    print(
        f"{record['n_evaluations']} evaluations, {1e3 * record['seconds_per_evaluation']:.2f} ms "
        f"each (compiled); peak RSS {record['peak_rss_mb']:.0f} MiB -> {out}"
    )
    return 0
