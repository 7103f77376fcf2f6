"""``jaxmicro reconstruct``: a microstructure whose descriptors match a reference (MCR).

    jaxmicro reconstruct --reference REF --shape 64,64[,64] --out DIR
        [--descriptors two_point:1:max_lag=7,mean_variation:0.1] [--max-iter 200]
        [--symmetry cubic] [--optimizer lbfgsb] [--levels 1] [--seeds 1]
    jaxmicro reconstruct --example --out DIR      # built-in synthetic polycrystal, < 2 min on CPU

REF (``--kind auto`` decides by file type, dtype and trailing axis):

- ``.npy`` of floats with a trailing axis of 3: Bunge Euler angles (phi1, Phi, phi2), radians;
  trailing axis 4: unit quaternions (scalar first, P = -1). Both become an orientation field,
  described through its symmetrized hyperspherical harmonics (SHSH, ``--symmetry``,
  ``--degrees``).
- ``.npy`` of integers: phase labels 0..K-1, reconstructed as the indicators of phases 1..K-1
  (two phases: one channel). ``.npy`` of floats otherwise: indicators in [0, 1], one channel
  (2D (H, W) or 3D (D, H, W)) or ``--kind phases`` with channels last.
- ``.png``/``.jpg``/``.tif``: grey levels; at most 8 distinct levels are phases in order of
  brightness, more are thresholded (Otsu) into two phases.
- ``.ang``/``.ctf`` EBSD maps (``jaxmicro.io``): their orientations; the symmetry of the first
  phase unless ``--symmetry`` is given.

A 2D reference with a 3D ``--shape`` drives the volume through its slices (slice loss).

``--descriptors`` is a comma-separated list of ``name[:weight][:option=value]...``, names as in
``jaxmicro.reconstruct.DESCRIPTORS``. Defaults (W: lag window, ``--window``; by default
``min(8, smallest size // 4)``):

- orientations: ``two_point:1:max_lag=W,three_point_variogram:1:max_lag=3,mean_variation:0.1``
  (SHSH cubic degree 8: 9 features; all auto- and cross-correlations);
- phases: ``two_point:1:max_lag=W,mean_variation:0.1``.

DIR receives ``field.npy`` (the optimized variables), ``quats.npy`` and ``euler.npy`` in the
fundamental zone (orientations) or ``phases.npy`` (labels), ``fields.png`` (reference and result),
``loss.png``, ``two_point.png`` and ``variogram.png`` (reference and result descriptor maps and the
relative error of the variogram, as in Fig. 12 of the SHSH-MCR paper), and ``result.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import pathlib
import threading

EXAMPLE_SHAPE = (48, 48)
EULER_LIMIT = 2 * 3.141592653589793 + 1e-3


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
        "--example",
        action="store_true",
        help="use a built-in 48x48 columnar cubic polycrystal (under a minute on 2 idle CPU cores)",
    )
    p.add_argument("--out", required=True, type=pathlib.Path, help="output directory")
    p.add_argument("--shape", help="reconstruction size, e.g. 64,64 or 64,64,64 (default: REF's)")
    p.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "euler", "quaternions", "phases"),
        help="how to read REF",
    )
    p.add_argument("--descriptors", help="loss terms, e.g. two_point:1:max_lag=7,mean_variation:1")
    p.add_argument("--window", type=int, help="lag window W of the default descriptors")
    p.add_argument("--symmetry", help="crystal symmetry of orientations (default: cubic)")
    p.add_argument("--degrees", default="8", help="SHSH degrees, e.g. 4,6,8 (default: 8)")
    p.add_argument(
        "--max-iter", type=int, help="iterations per multigrid level (default 200; example 300)"
    )
    p.add_argument(
        "--optimizer",
        default="lbfgsb",
        help="lbfgsb (jaxmicro's L-BFGS-B), jaxopt (jaxopt's L-BFGS-B), lbfgs, adam or sgd",
    )
    p.add_argument("--learning-rate", type=float, default=1e-2, help="for adam and sgd")
    p.add_argument("--levels", type=int, help="multigrid levels (default 1: none; example 2)")
    p.add_argument(
        "--seeds",
        type=int,
        help="ensemble size in one vmap; the best is kept (default 1; example 4)",
    )
    p.add_argument("--seed", type=int, default=0, help="PRNG seed")
    p.add_argument(
        "--non-periodic", action="store_true", help="non-periodic descriptors (default periodic)"
    )
    p.set_defaults(func=run)


def parse_descriptors(text: str):
    """``'two_point:1:max_lag=7,mean_variation:0.1'`` -> a tuple of ``Descriptor``.

    Each comma-separated entry is ``name``, then optionally a weight, then ``option=value``
    items, separated by colons. Values are read as int, float, ``none`` or text.
    """
    from jaxmicro.reconstruct import descriptor

    out = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, *rest = entry.split(":")
        weight, options = 1.0, {}
        for i, item in enumerate(rest):
            if "=" in item:
                key, value = item.split("=", 1)
                options[key.strip()] = _value(value.strip())
            elif i == 0:
                try:
                    weight = float(item)
                except ValueError:
                    raise ValueError(
                        f"--descriptors: {entry!r}: expected a weight after the name, got {item!r}"
                    ) from None
            else:
                raise ValueError(f"--descriptors: {entry!r}: expected option=value, got {item!r}")
        out.append(descriptor(name.strip(), weight, **options))
    if not out:
        raise ValueError("--descriptors: no descriptor given")
    return tuple(out)


def _value(text: str):
    if text.lower() == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def default_descriptors(representation: str, window: int):
    """The default loss terms of a representation (see the module docstring)."""
    terms = f"two_point:1:max_lag={window},"
    if representation == "orientations":
        return parse_descriptors(terms + "three_point_variogram:0.1:max_lag=3,mean_variation:0.01")
    return parse_descriptors(terms + "mean_variation:0.1")


def _image_labels(path: pathlib.Path):
    import numpy as np
    from skimage import color, filters, io

    image = np.asarray(io.imread(path))
    if image.ndim == 3:
        image = color.rgb2gray(image[..., :3]) if image.shape[-1] in (3, 4) else image[..., 0]
    levels = np.unique(image)
    if levels.size > 8:
        return (image > filters.threshold_otsu(image)).astype(np.int64)
    return np.searchsorted(levels, image)


def load_reference(path, kind: str = "auto", symmetry: str | None = None):
    """Reads a reference file into a field for :func:`jaxmicro.reconstruct.characterize`.

    Args:
        path: ``.npy``, image, ``.ang`` or ``.ctf`` file (see the module docstring).
        kind: ``'auto'``, ``'euler'``, ``'quaternions'`` or ``'phases'``.
        symmetry: crystal symmetry of orientations (None: the EBSD file's, else cubic).

    Returns:
        ``(field, representation, symmetry)``: a float (*spatial, C) array (unit quaternions with
        C = 4, or indicators in [0, 1]), ``'orientations'`` or ``'phases'``, and the symmetry.

    Raises:
        ValueError: naming ``--reference`` (or ``--symmetry``) for unreadable files, wrong
            trailing axes, NaN, non-unit quaternions, angles outside radians' range, labels
            with a single phase, or an unknown symmetry.
    """
    import numpy as np

    from jaxmicro import io
    from jaxmicro.orientations import SYMMETRIES, euler_to_quat

    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"--reference: {path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".ang", ".ctf"):
        ebsd = (io.read_ang if suffix == ".ang" else io.read_ctf)(path)
        if symmetry is None:
            phase = next(iter(ebsd.phases.values()), None)
            symmetry = phase.symmetry if phase is not None and phase.symmetry else "cubic"
        array, kind = np.asarray(ebsd.quats), "quaternions"
    elif suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"--reference: {path}: not a readable .npy file ({err})") from None
    elif suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        array = _image_labels(path)
    else:
        raise ValueError(f"--reference: {path}: expected .npy, .png/.tif, .ang or .ctf")
    symmetry = symmetry or "cubic"
    if symmetry not in SYMMETRIES:
        raise ValueError(f"--symmetry: unknown value {symmetry!r}; expected one of {SYMMETRIES}")

    floating = np.issubdtype(array.dtype, np.floating)
    if kind == "auto":
        if floating and array.ndim in (3, 4) and array.shape[-1] in (3, 4):
            kind = "euler" if array.shape[-1] == 3 else "quaternions"
        else:
            kind = "phases"
    if floating and not np.all(np.isfinite(array)):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"--reference: {path}: contains {bad} NaN or infinite value(s)")
    if kind in ("euler", "quaternions"):
        want = 3 if kind == "euler" else 4
        if array.ndim not in (3, 4) or array.shape[-1] != want:
            raise ValueError(
                f"--reference: {path}: {kind} need shape (*spatial, {want}) with 2 or 3 spatial "
                f"axes, got {array.shape}"
            )
        array = array.astype(np.float64)
        if kind == "euler":
            if np.abs(array).max() > EULER_LIMIT:
                raise ValueError(
                    f"--reference: {path}: Euler angles must be in radians; values reach "
                    f"{np.abs(array).max():.4g} (degrees?)"
                )
            array = np.asarray(euler_to_quat(array))
        norms = np.linalg.norm(array, axis=-1)
        worst = float(np.max(np.abs(norms - 1.0)))
        if worst > 1e-3:
            raise ValueError(
                f"--reference: {path}: quaternions must have unit norm; the worst deviates by "
                f"{worst:.3g}"
            )
        return (array / norms[..., None]).astype(np.float32), "orientations", symmetry
    return _phase_field(array, path), "phases", symmetry


def _phase_field(array, path):
    import numpy as np

    if np.issubdtype(array.dtype, np.bool_):
        array = array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        if array.ndim not in (2, 3):
            raise ValueError(
                f"--reference: {path}: phase labels need 2 or 3 spatial axes, got {array.shape}"
            )
        if array.min() < 0:
            raise ValueError(f"--reference: {path}: phase labels must be >= 0")
        k = int(array.max()) + 1
        if k < 2:
            raise ValueError(f"--reference: {path}: the labels hold a single phase")
        return (array[..., None] == np.arange(1, k)).astype(np.float32)
    field = array[..., None] if array.ndim in (2, 3) else array
    if field.ndim not in (3, 4):
        raise ValueError(
            f"--reference: {path}: expected (H, W), (D, H, W) or channels last, got {array.shape}"
        )
    if field.min() < 0 or field.max() > 1:
        raise ValueError(
            f"--reference: {path}: phase indicators must lie in [0, 1], got "
            f"[{field.min():.4g}, {field.max():.4g}]"
        )
    return field.astype(np.float32)


def example_reference():
    """The built-in reference: a periodic 48x48 cubic polycrystal, grains 3x taller than wide."""
    import jax

    from jaxmicro import synth

    ids = synth.voronoi(jax.random.key(0), EXAMPLE_SHAPE, 16, regularity=0.5, stretch=(3.0, 1.0))
    quats = synth.grain_orientations(jax.random.key(1), 16)
    return quats[ids]


def _shape(text: str | None, reference_spatial: tuple[int, ...]) -> tuple[int, ...]:
    if text is None:
        return reference_spatial
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise ValueError(f"--shape: expected sizes like 64,64 or 64,64,64, got {text!r}") from None
    if len(shape) not in (2, 3) or min(shape) < 4:
        raise ValueError(f"--shape: expected 2 or 3 sizes of at least 4, got {text!r}")
    if len(shape) < len(reference_spatial):
        raise ValueError(f"--shape: a 3D reference cannot drive a {len(shape)}D reconstruction")
    return shape


@contextlib.contextmanager
def _phase(description: str):
    """Shows a spinner (tqdm, on a terminal) while a blocking call runs, then its duration."""
    import time

    from tqdm import tqdm

    bar = tqdm(total=None, desc=description, bar_format="{desc} [{elapsed}]", disable=None)
    stop = threading.Event()

    def spin():
        for glyph in itertools.cycle("|/-\\"):
            if stop.wait(0.2):
                return
            bar.set_description_str(f"{description} {glyph}")

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.close()
    print(f"{description}: {time.perf_counter() - start:.1f} s")


def save_figures(out, reference, field, spec, histories, *, window: int, max_iter=None):
    """``fields.png``, ``loss.png``, ``two_point.png`` and ``variogram.png``; returns the
    relative variogram error (C, *lags) of all feature channels."""
    import numpy as np

    from jaxmicro.reconstruct import report

    out = pathlib.Path(out)
    panels = [(f"reference {c}".strip(), im) for c, im in report.field_images(reference, spec)]
    panels += [(f"result {c}".strip(), im) for c, im in report.field_images(field, spec)]
    report.save_images(out / "fields.png", panels)
    report.save_loss_curve(out / "loss.png", histories, iterations_per_level=max_iter)
    shown = (0, 1, 2) if spec.representation == "orientations" else None
    titles = [f"feature {c}" for c in (shown or range(reference.shape[-1]))]
    s_ref, s_res = report.two_point_comparison(
        reference, field, spec, max_lag=window, channels=shown
    )
    report.save_maps(
        out / "two_point.png", [("reference", s_ref), ("result", s_res)], column_titles=titles
    )
    g_ref, g_res, rel = (
        np.asarray(a) for a in report.variogram_comparison(reference, field, spec, max_lag=window)
    )
    pick = slice(None) if shown is None else list(shown)
    report.save_maps(
        out / "variogram.png",
        [("reference", g_ref[pick]), ("result", g_res[pick]), ("relative error", rel[pick])],
        column_titles=titles,
        error_rows=("relative error",),
    )
    return rel


def run(args) -> int:
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxmicro.reconstruct import (
        OPTIMIZERS,
        Spec,
        characterize,
        loss_terms,
        orientations_of,
        reconstruct,
        reconstruct_ensemble,
        report,
    )

    started = time.perf_counter()
    if args.levels is None:
        args.levels = 2 if args.example else 1
    if args.max_iter is None:
        args.max_iter = 300 if args.example else 200
    if args.seeds is None:  # the example's loss varies 7x between starts: show the best of 4
        args.seeds = 4 if args.example else 1
    if args.optimizer not in OPTIMIZERS:
        raise ValueError(f"--optimizer: unknown value {args.optimizer!r}; expected {OPTIMIZERS}")
    for name in ("max_iter", "levels", "seeds"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: must be >= 1")
    if args.example:
        reference = np.asarray(example_reference())
        representation, symmetry = "orientations", args.symmetry or "cubic"
    else:
        reference, representation, symmetry = load_reference(
            args.reference, args.kind, args.symmetry
        )
    spatial = reference.shape[:-1]
    shape = _shape(args.shape, spatial)
    window = args.window or max(1, min(8, min(spatial + shape) // 4))
    terms = (
        parse_descriptors(args.descriptors)
        if args.descriptors
        else default_descriptors(representation, window)
    )
    try:
        degrees = tuple(int(d) for d in args.degrees.split(","))
    except ValueError:
        raise ValueError(
            f"--degrees: expected even integers like 4,6,8, got {args.degrees!r}"
        ) from None
    spec = Spec(
        terms,
        representation=representation,
        symmetry=symmetry,
        degrees=degrees,
        periodic=not args.non_periodic,
        levels=args.levels,
    )
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"reference {tuple(reference.shape)} ({representation}"
        + (f", {symmetry}" if representation == "orientations" else "")
        + f") -> {shape}; descriptors: "
        + ", ".join(f"{d.name} x{d.weight:g}" for d in spec.descriptors)
    )

    with _phase("characterize"):
        target = jax.block_until_ready(characterize(reference, spec))
    kwargs = dict(
        shape=shape,
        spec=spec,
        optimizer=args.optimizer,
        max_iter=args.max_iter,
        learning_rate=args.learning_rate,
    )
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    if args.seeds == 1:
        solve = jax.jit(lambda k, t: reconstruct(k[0], t, **kwargs))
    else:
        solve = jax.jit(lambda k, t: reconstruct_ensemble(k, t, **kwargs)[0])
    with _phase("compile"):
        compile_start = time.perf_counter()
        compiled = solve.lower(keys, target).compile()
        compile_seconds = time.perf_counter() - compile_start
    with _phase(f"solve ({args.seeds} x {args.levels} x {args.max_iter} iterations)"):
        solve_start = time.perf_counter()
        results = jax.block_until_ready(compiled(keys, target))
        solve_seconds = time.perf_counter() - solve_start

    finals = np.atleast_1d(np.asarray(results.final_loss))
    best = int(np.nanargmin(finals))
    pick = (lambda x: x) if args.seeds == 1 else (lambda x: x[best])
    result = jax.tree.map(pick, results)
    history = np.asarray(result.loss_history)
    level_shapes = [tuple(n // 2**k for n in shape) for k in reversed(range(args.levels))]
    print(f"initial loss {float(result.initial_loss):.4g}")
    for i, level_shape in enumerate(level_shapes):
        first, last = history[i * args.max_iter], history[(i + 1) * args.max_iter - 1]
        size = "x".join(map(str, level_shape))
        print(
            f"level {i + 1}/{args.levels} ({size}): loss {first:.4g} after its first iteration, "
            f"{last:.4g} after {args.max_iter}"
        )
    best_of = f" (best of {args.seeds} seeds)" if args.seeds > 1 else ""
    print(f"final loss {float(result.final_loss):.4g}{best_of}")

    field = np.asarray(result.field)
    np.save(out / "field.npy", field)
    if representation == "orientations":
        quats, euler = orientations_of(jnp.asarray(field), symmetry)
        np.save(out / "quats.npy", np.asarray(quats))
        np.save(out / "euler.npy", np.asarray(euler))
    else:
        np.save(out / "phases.npy", report.phase_labels(field))

    histories = (
        {"loss": history}
        if args.seeds == 1
        else {
            f"{args.seeds} seeds": np.asarray(results.loss_history),
            f"best (seed {best})": history,
        }
    )
    rel = save_figures(
        out, reference, field, spec, histories, window=window, max_iter=args.max_iter
    )
    n_evaluations = int(np.sum(np.asarray(results.n_evaluations)))
    record = {
        "reference": "example" if args.example else str(args.reference),
        "reference_shape": list(reference.shape),
        "shape": list(shape),
        "representation": representation,
        "symmetry": symmetry if representation == "orientations" else None,
        "descriptors": [
            {"name": d.name, "weight": d.weight, **dict(d.options)} for d in spec.descriptors
        ],
        "optimizer": args.optimizer,
        "max_iter": args.max_iter,
        "levels": args.levels,
        "seeds": args.seeds,
        "best_seed": best,
        "seed_final_losses": finals,
        "initial_loss": result.initial_loss,
        "final_loss": result.final_loss,
        "loss_terms": loss_terms(jnp.asarray(field), target, spec),
        "loss_history": history,
        "n_evaluations": n_evaluations,
        "compile_seconds": compile_seconds,
        "solve_seconds": solve_seconds,
        "seconds_per_evaluation": solve_seconds / max(n_evaluations, 1),
        "variogram_fraction_below_5pct": report.fraction_below(rel, 0.05),
        "boundary_fraction": {
            "reference": report.boundary_fraction(reference, spec),
            "result": report.boundary_fraction(field, spec),
        },
        "peak_rss_mb": report.peak_rss_mb(),
        "device": str(jax.devices()[0]),
        "jax_version": jax.__version__,
    }
    report.write_json(out / "result.json", record)
    total = time.perf_counter() - started
    print(
        f"{n_evaluations} evaluations, {1e3 * record['seconds_per_evaluation']:.2f} ms each "
        f"(compiled); peak RSS {record['peak_rss_mb']:.0f} MiB; {total:.0f} s in all -> {out}"
    )
    return 0
