"""The SHSH-MCR studies: each runs its reconstructions, writes its figures, returns its numbers.

All 2D studies reconstruct the same reference with one :class:`jaxmicro.reconstruct.Spec`
(two-point correlations, hybrid three-point variogram, mean variation of the cubic SHSH
features); weights are passed as traced arrays, so the ablation and both weight sweeps are one
compiled solve. Numbers are unweighted relative errors of each descriptor (the loss
terms), the share of face-neighbour pairs misoriented by more than 5 degrees (boundary
fraction: grain-boundary density plus intragranular noise), and the share of variogram lags
whose relative error is below 5%.

References:
    SHSH-MCR paper (mcr-shsh), §3.1 (Figs. 6-9), §3.2.1 (Figs. 12-13), appendices C-D
    (Figs. 18-19).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import descriptors as D
from jaxmicro import synth
from jaxmicro.reconstruct import (
    Spec,
    Target,
    characterize,
    descriptor,
    initial_field,
    loss_terms,
    orthogonal_targets,
    reconstruct,
    reconstruct_ensemble,
    report,
)

NAMES = ("two_point", "three_point_variogram", "mean_variation")
SHORT = {"two_point": "S2", "three_point_variogram": "V3", "mean_variation": "MV"}


@dataclasses.dataclass(frozen=True)
class Setup:
    """The reference fields, specs and targets shared by the studies."""

    config: object
    reference: jax.Array  # (H, W, 4) unit quaternions
    spec: Spec  # single level
    target: Target
    volume: jax.Array  # (D, H, W, 4)


def polycrystal(key: jax.Array, shape, n_grains: int, config) -> jax.Array:
    """Unit quaternions (*shape, 4) of a periodic columnar Voronoi polycrystal."""
    k_cells, k_orient = jax.random.split(key)
    stretch = (config.stretch,) + (1.0,) * (len(shape) - 1)
    ids = synth.voronoi(
        k_cells, tuple(shape), n_grains, regularity=config.regularity, stretch=stretch
    )
    return synth.grain_orientations(k_orient, n_grains)[ids]


def make_spec(config, *, window: int, levels: int = 1) -> Spec:
    """The descriptor set of the paper with the config's baseline weights."""
    w = config.weights
    return Spec(
        (
            descriptor("two_point", w[0], max_lag=window),
            descriptor("three_point_variogram", w[1], max_lag=config.three_point_lag),
            descriptor("mean_variation", w[2]),
        ),
        representation="orientations",
        symmetry=config.symmetry,
        degrees=config.degrees,
        levels=levels,
    )


def setup(config) -> Setup:
    key = jax.random.key(config.seed)
    k2d, k3d = jax.random.split(key)
    reference = polycrystal(k2d, config.shape, config.n_grains, config)
    spec = make_spec(config, window=config.window)
    volume = polycrystal(k3d, config.volume_shape, config.volume_grains, config)
    return Setup(config, reference, spec, characterize(reference, spec), volume)


def _weights(rows) -> jax.Array:
    return jnp.asarray(np.asarray(rows, np.float32))


def _terms(fields, target: Target, spec: Spec) -> np.ndarray:
    """(B, 3) relative errors of each descriptor for a batch of fields."""
    per = jax.jit(jax.vmap(lambda x: jnp.stack(list(loss_terms(x, target, spec).values()))))
    return np.asarray(per(fields))


def _row_metrics(s: Setup, fields, spec: Spec, target: Target) -> list[dict]:
    terms = _terms(fields, target, spec)
    rows = []
    for i, field in enumerate(fields):
        rel = report.variogram_comparison(s.reference, field, spec, max_lag=s.config.window)[2]
        rows.append(
            {
                **{SHORT[n]: float(terms[i, j]) for j, n in enumerate(NAMES)},
                "boundary_fraction": report.boundary_fraction(field, spec),
                "variogram_below_5pct": report.fraction_below(rel),
            }
        )
    return rows


def _solve(s: Setup, keys, weights, *, spec=None, target=None, shape=None, **options):
    """Runs rows of (key, weights) through one compiled solve; returns (results, timing).

    Rows run one after another: a ``vmap`` over L-BFGS-B runs is slower than the loop on CPU,
    because the batched line searches advance in lockstep (measured 162 s vs about 40 s for 12
    rows at 32x32), and the weights, being traced, need no recompilation.
    """
    spec, target = spec or s.spec, target or s.target
    shape = tuple(shape or s.config.shape)
    solve = jax.jit(lambda k, w, t: reconstruct(k, t, shape, spec, weights=w, **options))
    start = time.perf_counter()
    compiled = solve.lower(keys[0], weights[0], target).compile()
    compile_s = time.perf_counter() - start
    rows = [
        jax.block_until_ready(compiled(k, w, target)) for k, w in zip(keys, weights, strict=True)
    ]
    run_s = time.perf_counter() - start - compile_s
    results = jax.tree.map(lambda *xs: jnp.stack(xs), *rows)
    n_evals = int(np.sum(np.asarray(results.n_evaluations)))
    return results, {"compile_s": compile_s, "run_s": run_s, "evaluations": n_evals}


def _panels(s: Setup, fields, captions, spec=None) -> list:
    spec = spec or s.spec
    panels = [("reference", report.field_images(s.reference, spec)[0][1])]
    for caption, field in zip(captions, fields, strict=True):
        panels.append((caption, report.field_images(field, spec)[0][1]))
    return panels


def ablation_and_weights(s: Setup, out: Path) -> dict:
    """Figs. 6-8: single descriptors, S2 : V3 ratios, mean-variation weights (one compile)."""
    c = s.config
    w0, w1, _ = c.weights
    groups = {
        "ablation": [tuple(float(i == j) for j in range(3)) for i in (2, 0, 1)],
        "ratios": [(1.0, r, 0.0) for r in c.ratios],
        "variation": [(w0, w1, m) for m in c.variation_weights],
    }
    rows = [w for g in groups.values() for w in g]
    keys = jnp.stack([jax.random.key(c.seed + 1)] * len(rows))
    results, timing = _solve(s, keys, _weights(rows), max_iter=c.max_iter)
    metrics = _row_metrics(s, results.field, s.spec, s.target)
    numbers, start = {"timing": timing}, 0
    captions = {
        "ablation": ["MV only", "S2 only", "V3 only"],
        "ratios": [f"S2 : V3 = 1 : {r:g}" for r in c.ratios],
        "variation": [f"MV weight {m:g}" for m in c.variation_weights],
    }
    for name, group in groups.items():
        stop = start + len(group)
        numbers[name] = [
            {"weights": list(w), "label": label, **m}
            for w, label, m in zip(group, captions[name], metrics[start:stop], strict=True)
        ]
        report.save_images(
            out / f"{name}.png", _panels(s, results.field[start:stop], captions[name]), size=2.4
        )
        start = stop
    numbers["reference_boundary_fraction"] = report.boundary_fraction(s.reference, s.spec)
    return numbers


def convergence(s: Setup, out: Path) -> dict:
    """Fig. 9: snapshots after equal segments of one optimization.

    The segments are chained through ``init`` (one compilation), so the L-BFGS-B memory and
    loss scaling restart at each snapshot.
    """
    c = s.config
    per = max(1, c.max_iter // c.segments)
    weights = jnp.asarray(c.weights, jnp.float32)

    def segment(x, target):
        r = reconstruct(
            jax.random.key(0), target, c.shape, s.spec, max_iter=per, init=x, weights=weights
        )
        return r.field, r.loss_history, r.n_evaluations

    x = initial_field(jax.random.key(c.seed + 1), c.shape, s.spec, 4, jnp.float32)
    start = time.perf_counter()
    solve = jax.jit(segment).lower(x, s.target).compile()
    compile_s = time.perf_counter() - start
    history, snapshots = [], []
    for _ in range(c.segments):
        x, h, _ = jax.block_until_ready(solve(x, s.target))
        history.append(np.asarray(h))
        snapshots.append(x)
    run_s = time.perf_counter() - start - compile_s
    history = np.concatenate(history)
    ends = [(i + 1) * per for i in range(c.segments)]
    captions = [f"iteration {e}: loss {history[e - 1]:.2g}" for e in ends]
    report.save_images(out / "convergence.png", _panels(s, snapshots, captions), size=2.4)
    report.save_loss_curve(
        out / "convergence_loss.png", {"loss": history}, iterations_per_level=per
    )
    return {
        "iterations": ends,
        "loss": [float(history[e - 1]) for e in ends],
        "boundary_fraction": [report.boundary_fraction(x, s.spec) for x in snapshots],
        "timing": {"compile_s": compile_s, "run_s": run_s},
    }


def variogram(s: Setup, out: Path) -> dict:
    """Fig. 12: multigrid 2D reconstruction, relative variogram error per lag."""
    c = s.config
    spec = make_spec(c, window=c.window, levels=c.levels)
    target = characterize(s.reference, spec)
    keys = jnp.stack([jax.random.key(c.seed + 1)])
    results, timing = _solve(
        s, keys, _weights([c.weights]), spec=spec, target=target, max_iter=c.max_iter
    )
    field = results.field[0]
    g_ref, g_res, rel = (
        np.asarray(a)
        for a in report.variogram_comparison(s.reference, field, spec, max_lag=c.window)
    )
    shown = [0, 4, 8]
    report.save_images(out / "reconstruction_2d.png", _panels(s, [field], ["reconstruction"]))
    report.save_maps(
        out / "variogram_error.png",
        [("reference", g_ref[shown]), ("result", g_res[shown]), ("relative error", rel[shown])],
        column_titles=[f"SHSH feature {k}" for k in shown],
        error_rows=("relative error",),
    )
    report.save_loss_curve(
        out / "reconstruction_2d_loss.png",
        {"loss": results.loss_history[0]},
        iterations_per_level=c.max_iter,
    )
    finite = rel[np.isfinite(rel)]
    return {
        "levels": c.levels,
        "final_loss": float(results.final_loss[0]),
        "variogram_below_5pct": report.fraction_below(rel),
        "variogram_below_5pct_shown": report.fraction_below(rel[shown]),
        "variogram_below_15pct": report.fraction_below(rel, 0.15),
        "median_relative_error": float(np.median(finite)),
        "boundary_fraction": report.boundary_fraction(field, spec),
        "timing": timing,
    }


def _sections(volume) -> list:
    """Central sections normal to axes 0, 1, 2 (the other axes in order)."""
    return [jnp.take(volume, volume.shape[a] // 2, axis=a) for a in range(3)]


def _axis_madogram(field, spec: Spec, lag: int) -> np.ndarray:
    """Mean over features of the madogram at ``lag`` voxels along each spatial axis."""
    g = D.variogram(spec.features(jnp.asarray(field)), max_lag=lag, periodic=True)
    centre = (lag,) * (g.ndim - 1)
    values = []
    for a in range(g.ndim - 1):
        index = list(centre)
        index[a] = 2 * lag
        values.append(float(jnp.mean(g[(slice(None), *index)])))
    return np.asarray(values)


def volume(s: Setup, out: Path) -> dict:
    """Fig. 13: 3D from three orthogonal 2D sections; compared with the source volume in 3D."""
    c = s.config
    spec = make_spec(c, window=c.volume_window)
    target = orthogonal_targets([characterize(x, spec) for x in _sections(s.volume)])
    keys = jnp.stack([jax.random.key(c.seed + 1)])
    results, timing = _solve(
        s,
        keys,
        _weights([c.weights]),
        spec=spec,
        target=target,
        shape=c.volume_shape,
        max_iter=c.volume_iter,
    )
    field = results.field[0]
    rel = report.variogram_comparison(s.volume, field, spec, max_lag=c.volume_window)[2]
    panels = [(f"source {t}", im) for t, im in report.field_images(s.volume, spec)]
    panels += [(f"result {t}", im) for t, im in report.field_images(field, spec)]
    report.save_images(out / "volume_3d.png", panels, size=2.4)
    lag = c.volume_window
    return {
        "shape": list(c.volume_shape),
        "final_loss": float(results.final_loss[0]),
        "initial_loss": float(results.initial_loss[0]),
        "variogram_3d_below_5pct": report.fraction_below(rel),
        "variogram_3d_below_15pct": report.fraction_below(rel, 0.15),
        "madogram_per_axis_source": _axis_madogram(s.volume, spec, lag).tolist(),
        "madogram_per_axis_result": _axis_madogram(field, spec, lag).tolist(),
        "boundary_fraction_source": report.boundary_fraction(s.volume, spec),
        "boundary_fraction_result": report.boundary_fraction(field, spec),
        "timing": timing,
    }


def optimizers(s: Setup, out: Path) -> dict:
    """Fig. 18: the same reconstruction with each optimizer."""
    c = s.config
    rates = dict(c.learning_rates)
    keys = jnp.stack([jax.random.key(c.seed + 1)])
    numbers, curves = {}, {}
    for name in c.optimizers:
        results, timing = _solve(
            s,
            keys,
            _weights([c.weights]),
            optimizer=name,
            max_iter=c.optimizer_iter,
            learning_rate=rates.get(name, 1e-2),
        )
        h = np.asarray(results.loss_history[0])
        curves[name] = h
        numbers[name] = {
            "final_loss": float(results.final_loss[0]),
            "loss_at_10pct": float(h[max(0, len(h) // 10 - 1)]),
            "evaluations": timing["evaluations"],
            "ms_per_iteration": 1e3 * timing["run_s"] / c.optimizer_iter,
            "learning_rate": rates.get(name),
            "compile_s": timing["compile_s"],
        }
    report.save_loss_curve(out / "optimizers.png", curves)
    return numbers


def seeds(s: Setup, out: Path) -> dict:
    """Fig. 19: ``reconstruct_ensemble`` over ``n_seeds`` random starts."""
    c = s.config
    keys = jax.random.split(jax.random.key(c.seed + 2), c.n_seeds)

    def ensemble(k, target, weights):
        return reconstruct_ensemble(
            k, target, c.shape, s.spec, max_iter=c.max_iter, weights=weights
        )

    (results, best), compile_s, run_s = report.timed_call(
        jax.jit(ensemble), keys, s.target, jnp.asarray(c.weights, jnp.float32)
    )
    finals = np.asarray(results.final_loss)
    history = np.asarray(results.loss_history)
    spread = history.max(axis=0) / history.min(axis=0)
    report.save_loss_curve(out / "seeds.png", {f"{c.n_seeds} seeds": history})
    report.save_images(
        out / "seeds_best_worst.png",
        _panels(
            s,
            [results.field[int(best)], results.field[int(np.argmax(finals))]],
            [f"best: {finals.min():.2g}", f"worst: {finals.max():.2g}"],
        ),
    )
    return {
        "final_losses": finals.tolist(),
        "min": float(finals.min()),
        "median": float(np.median(finals)),
        "max": float(finals.max()),
        "max_over_min": float(finals.max() / finals.min()),
        "spread_at_iterations": {
            str(i): float(spread[i - 1]) for i in (10, c.max_iter // 2, c.max_iter)
        },
        "best": int(best),
        "timing": {"compile_s": compile_s, "run_s": run_s},
    }


STUDIES = {
    "weights": ablation_and_weights,
    "convergence": convergence,
    "variogram": variogram,
    "volume": volume,
    "optimizers": optimizers,
    "seeds": seeds,
}


def _g(x) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_g(v) for v in row) + " |" for row in rows]


def summary_markdown(config, numbers: dict) -> str:
    """The measured numbers of every study that ran, as markdown tables."""
    c = config
    lines = [
        f"# SHSH-MCR studies: `{c.name}`",
        "",
        f"Reference: {c.shape[0]}x{c.shape[1]} periodic Voronoi polycrystal, {c.n_grains} grains "
        f"{c.stretch:g}x longer along axis 0, uniform cubic orientations; SHSH degrees "
        f"{c.degrees}, S2 window |r| <= {c.window}, V3 window |r| <= {c.three_point_lag}, "
        f"baseline weights (S2, V3, MV) = {c.weights}, L-BFGS-B, {c.max_iter} iterations per "
        "level. Terms are unweighted relative errors; 'boundary' is the share of neighbour "
        "pairs misoriented by > 5 degrees; 'var<5%' the share of variogram lags (9 features) "
        "within 5% of the reference.",
        "",
    ]
    cols = ["S2", "V3", "MV", "boundary_fraction", "variogram_below_5pct"]
    header = ["S2 err", "V3 err", "MV err", "boundary", "var<5%"]
    if "weights" in numbers:
        w = numbers["weights"]
        lines += [
            f"Reference boundary fraction: {w['reference_boundary_fraction']:.3f}.",
            "",
            "## Fig. 6: one descriptor at a time",
            "",
        ]
        lines += _table(
            ["run", *header], [[r["label"], *(r[k] for k in cols)] for r in w["ablation"]]
        )
        lines += ["", "## Fig. 7: S2 : V3 weight ratio (no MV)", ""]
        lines += _table(
            ["run", *header], [[r["label"], *(r[k] for k in cols)] for r in w["ratios"]]
        )
        lines += ["", "## Fig. 8: mean-variation weight (S2, V3 at baseline)", ""]
        lines += _table(
            ["run", *header], [[r["label"], *(r[k] for k in cols)] for r in w["variation"]]
        )
        lines += ["", f"All rows share one compiled solve: {_timing(w['timing'])}.", ""]
    if "convergence" in numbers:
        v = numbers["convergence"]
        lines += ["## Fig. 9: convergence (segments chained through `init`)", ""]
        lines += _table(
            ["iteration", "loss", "boundary"],
            [list(r) for r in zip(v["iterations"], v["loss"], v["boundary_fraction"], strict=True)],
        )
        lines += [""]
    if "variogram" in numbers:
        v = numbers["variogram"]
        lines += [
            "## Fig. 12: 2D reconstruction, relative variogram error",
            "",
            f"{v['levels']} multigrid levels; final loss {v['final_loss']:.3g}; lags with relative "
            f"error below 5%: {100 * v['variogram_below_5pct']:.0f}% (features 0, 4, 8: "
            f"{100 * v['variogram_below_5pct_shown']:.0f}%), below 15%: "
            f"{100 * v['variogram_below_15pct']:.0f}%; median relative error "
            f"{100 * v['median_relative_error']:.1f}%; boundary fraction "
            f"{v['boundary_fraction']:.3f}. {_timing(v['timing'])}.",
            "",
        ]
    if "volume" in numbers:
        v = numbers["volume"]
        lines += [
            "## Fig. 13: 3D from three orthogonal sections",
            "",
            f"{'x'.join(map(str, v['shape']))} volume, slice loss {v['initial_loss']:.3g} -> "
            f"{v['final_loss']:.3g}. Against the 3D variogram of the source volume (never seen by "
            f"the loss): {100 * v['variogram_3d_below_5pct']:.0f}% of lags within 5%, "
            f"{100 * v['variogram_3d_below_15pct']:.0f}% within 15%. Madogram at the window edge "
            f"along axes (0, 1, 2): source {_vec(v['madogram_per_axis_source'])}, result "
            f"{_vec(v['madogram_per_axis_result'])} (columns: smallest along axis 0). Boundary "
            f"fraction source {v['boundary_fraction_source']:.3f}, result "
            f"{v['boundary_fraction_result']:.3f}. {_timing(v['timing'])}.",
            "",
        ]
    if "optimizers" in numbers:
        v = numbers["optimizers"]
        lines += [f"## Fig. 18: optimizers, {c.optimizer_iter} iterations", ""]
        lines += _table(
            ["optimizer", "final loss", "loss at 10%", "evaluations", "ms / iteration", "lr"],
            [
                [
                    k,
                    r["final_loss"],
                    r["loss_at_10pct"],
                    r["evaluations"],
                    r["ms_per_iteration"],
                    r["learning_rate"] or "-",
                ]
                for k, r in v.items()
            ],
        )
        lines += [""]
    if "seeds" in numbers:
        v = numbers["seeds"]
        spread = ", ".join(f"{k}: {x:.2f}x" for k, x in v["spread_at_iterations"].items())
        lines += [
            f"## Fig. 19: {len(v['final_losses'])} seeds (`reconstruct_ensemble`)",
            "",
            f"Final loss min {v['min']:.3g}, median {v['median']:.3g}, max {v['max']:.3g} "
            f"(max/min {v['max_over_min']:.2f}); max/min of the loss across seeds at iterations "
            f"{spread}. {_timing(v['timing'])}.",
            "",
        ]
    return "\n".join(lines)


def _vec(v) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in v) + ")"


def _timing(t: dict) -> str:
    return f"compile {t['compile_s']:.0f} s, run {t['run_s']:.1f} s"
