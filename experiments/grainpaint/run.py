"""Runs the GrainPaint experiment in stages (see config.py for the commands).

``data``: Potts training blocks, whole reference volumes of the outpainted size, an independent
volume of that size for the floor, and the volume shipped as ``reference.npy``
(``jaxmicro.data.make_dataset('potts', ...)``). ``train``: one ``jaxmicro.train.fit`` run per
schedule of the study; ``loss.png``. ``study``: ``jaxmicro.outpaint.outpaint`` for every schedule
and sampler, Table 1 against the floor, ``results.json``, ``report.md``, ``slices.png``,
``histograms.png``. ``export``: once the study is complete, the better schedule's model with
the chosen fast sampler in its card, the example STL part and the reference volume, as the
shipped model ``grainpaint-small`` (``jaxmicro.train.export_model``; ``paper`` and ``tiny``
export only to ``--export-to``, never over the registry's model). ``measure`` (only when
asked for): times the exported model's default outpainting of 48^3 on this machine and records
it in the card.

Every stage continues where a previous call stopped: finished datasets (with their
``metadata.json``) are reused, training resumes from its newest checkpoint, finished outpainting
runs (with a ``summary.json``) are kept and interrupted ones resume. ``--time-limit`` stops the
study from starting another outpainting run that many minutes after the command started (the
report says which are missing; a later call runs them); the U = 10 runs come last, and the export
needs every other run (its choices are made on them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from jaxmicro._modules import load_file_module
from jaxmicro.data import Loader, make_dataset
from jaxmicro.outpaint import (
    compare_statistics,
    denoiser_calls_per_block,
    grain_statistics,
    outpaint,
    pooled_statistics,
)
from jaxmicro.train import batch_mesh, fit, load_model, read_metrics

STAGES = ("data", "train", "study", "export")
# Not part of the default run: time the exported model here (e.g. on the 2-core CPU).
EXTRA_STAGES = ("measure",)
# Table 1's statistics (the paper's aspect ratio: see docs/grainpaint.md), then the other two
# aspect ratios of its Fig. 10.
TABLE1 = ("volume", "aspect_ratio", "nearest_neighbour_distance")
EXTRA = ("aspect_ratio_b_a", "aspect_ratio_c_b")
LABELS = {
    "volume": "grain volume",
    "aspect_ratio": "aspect ratio c/a",
    "nearest_neighbour_distance": "NN centroid distance",
    "aspect_ratio_b_a": "aspect ratio b/a",
    "aspect_ratio_c_b": "aspect ratio c/b",
}


# ----------------------------------------------------------------------------------- data


def _dataset(out: Path, *, n: int, size: int, seed: int, **params) -> Path:
    """A Potts dataset folder, generated unless a complete one (with metadata) is there."""
    if not (out / "metadata.json").is_file():
        make_dataset("potts", out, num_samples=n, size=size, seed=seed, overwrite=True, **params)
    return out


def _volumes(folder: Path) -> np.ndarray:
    """All samples of a dataset folder, (N, Z, Y, X) grain IDs."""
    loader = Loader(folder, batch_size=1, key=jax.random.key(0))
    return loader.samples(np.arange(loader.n))


def data(cfg, out: Path, *, progress: bool = True) -> dict[str, Path]:
    """The four Potts datasets (training blocks; reference, floor and shipped volumes)."""
    potts = dict(sweeps=cfg.potts_sweeps, kT=cfg.potts_kT, progress=progress)
    whole = dict(block=0, **potts)
    size = cfg.outpaint_size
    return {
        "blocks": _dataset(
            out / "data" / "blocks",
            n=cfg.potts_volumes,
            size=cfg.potts_size,
            seed=cfg.seed,
            block=cfg.block,
            n_boundary=cfg.boundary_blocks,
            initial_grains=cfg.potts_initial_grains,
            **potts,
        ),
        # Independent seeds: the reference, the floor's second volume and the shipped volume.
        "reference": _dataset(
            out / "data" / "reference",
            n=cfg.reference_volumes,
            size=size,
            seed=cfg.seed + 1,
            initial_grains=cfg.seeds_for(size),
            **whole,
        ),
        "floor": _dataset(
            out / "data" / "floor",
            n=1,
            size=size,
            seed=cfg.seed + 2,
            initial_grains=cfg.seeds_for(size),
            **whole,
        ),
        "shipped": _dataset(
            out / "data" / "shipped",
            n=1,
            size=cfg.shipped_reference_size,
            seed=cfg.seed + 3,
            initial_grains=cfg.seeds_for(cfg.shipped_reference_size),
            **whole,
        ),
    }


# ---------------------------------------------------------------------------------- train


def train_config(cfg, schedule: str, blocks: Path):
    """The ``TrainConfig`` of one schedule of the study (zero-SNR ones predict ``v``)."""
    param = "v" if schedule.endswith("_zero_snr") else cfg.train.parameterization
    return dataclasses.replace(
        cfg.train,
        name=f"{cfg.train.name}_{schedule}",
        schedule=schedule,
        parameterization=param,
        data=dataclasses.replace(cfg.train.data, path=str(blocks)),
    )


def train(cfg, out: Path, *, progress: bool = True) -> None:
    """One ``fit`` run per schedule into ``out/train/<schedule>``, then ``loss.png``."""
    blocks = out / "data" / "blocks"
    for schedule in cfg.schedules:
        run_dir = out / "train" / schedule
        start = time.perf_counter()
        records = fit(train_config(cfg, schedule, blocks), run_dir, resume=True, progress=progress)
        if records:  # steps were taken in this call: keep their wall time
            timing = run_dir / "timing.json"
            before = json.loads(timing.read_text()) if timing.is_file() else []
            entry = {"steps": len(records), "seconds": time.perf_counter() - start}
            entry["last_step"] = records[-1]["step"]
            timing.write_text(json.dumps([*before, entry]))
    save_loss_curves(cfg, out, out / "loss.png")


def save_loss_curves(cfg, out: Path, path: Path) -> None:
    """Training loss (L1 of the network's target) of each schedule against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for schedule in cfg.schedules:
        records = read_metrics(out / "train" / schedule)
        if records:
            steps = np.array([r["step"] for r in records])
            loss = np.array([r["loss"] for r in records])
            target = "v" if schedule.endswith("_zero_snr") else "eps"
            ax.plot(steps, loss, label=f"{schedule} ({target}-prediction)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("L1 loss (logged batches)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------- study


def _tail(cfg, steps: int) -> int:
    """Plain (un-resampled) tail of a sub-trajectory: the full trajectory's fraction, >= 1."""
    return max(1, round(cfg.plain_tail * steps / cfg.train.num_diffusion_steps))


def sampler_runs(cfg) -> dict[str, dict]:
    """Outpainting settings by run name: RePaint at each ``U``, then the fast samplers.

    Ordered cheap first, so that a study stopped by ``--time-limit`` still has the floor, U = 1
    and the fast samplers; the U = 10 runs come last.
    """
    runs = {}
    for steps, u, jump, eta in cfg.fast:
        name = f"steps{steps}_U{u}_j{jump}_eta{eta:g}"
        runs[name] = dict(
            resample=u, jump=jump, plain_tail=_tail(cfg, steps), num_steps=steps, eta=eta
        )
    full = {f"U{u}": dict(resample=u, plain_tail=cfg.plain_tail) for u in cfg.resamplings}
    order = sorted(full, key=lambda name: full[name]["resample"])
    return {order[0]: full[order[0]], **runs, **{name: full[name] for name in order[1:]}}


def _calls(cfg, sampler: dict) -> int:
    return denoiser_calls_per_block(
        cfg.train.num_diffusion_steps,
        resample=sampler["resample"],
        jump=sampler.get("jump", 1),
        plain_tail=sampler["plain_tail"],
        num_steps=sampler.get("num_steps"),
    )


def _kl_row(comparison: dict) -> dict:
    """KL of each statistic; None where a side had no grain (strict JSON)."""
    return {name: _finite(comparison[name]["kl"]) for name in (*TABLE1, *EXTRA)}


def study(
    cfg,
    out: Path,
    *,
    deadline: float = math.inf,
    on_exportable: Callable[[dict], object] | None = None,
    progress: bool = True,
) -> dict:
    """Every schedule x sampler, Table 1 with the floor; writes results.json, report.md, PNGs.

    The files are rewritten after every run, with the choices so far. ``on_exportable(results)``
    is called after every run once the choices are made on all the runs they compare (the U = 10
    runs come last), so an interrupted study has already exported its model.
    """
    datasets = {name: out / "data" / name for name in ("reference", "floor")}
    reference = _volumes(datasets["reference"])
    reference_stats = pooled_statistics(reference)
    floor_volume = _volumes(datasets["floor"])
    floor_stats = pooled_statistics(floor_volume)
    floor = compare_statistics(floor_stats, reference_stats)
    results = {
        "name": cfg.name,
        "outpaint_size": cfg.outpaint_size,
        "block": cfg.block,
        "num_diffusion_steps": cfg.train.num_diffusion_steps,
        "reference_volumes": int(len(reference)),
        "floor": {"kl": _kl_row(floor), "grains_measured": floor["volume"]["n_generated"]},
        "reference_grains_measured": floor["volume"]["n_reference"],
        "training": {},
        "schedules": {},
    }
    mesh = batch_mesh()
    generated = {}
    runs = sampler_runs(cfg)
    for schedule in cfg.schedules:
        run_dir = out / "train" / schedule
        records = read_metrics(run_dir)
        timing = run_dir / "timing.json"
        results["training"][schedule] = {
            "steps": records[-1]["step"] if records else 0,
            "final_loss": float(np.mean([r["loss"] for r in records[-5:]])) if records else None,
            "seconds": sum(e["seconds"] for e in json.loads(timing.read_text()))
            if timing.is_file()
            else None,
            "parameterization": "v" if schedule.endswith("_zero_snr") else "eps",
        }
    # Cheap runs of every schedule first (see ``sampler_runs``), so a time limit cuts U = 10.
    models = {}
    for name, sampler in runs.items():
        for schedule in cfg.schedules:
            rows = results["schedules"].setdefault(schedule, {})
            target = out / "study" / schedule / name
            if (target / "summary.json").is_file():
                summary = json.loads((target / "summary.json").read_text())
            elif time.time() > deadline:
                rows[name] = {"sampler": sampler, "calls": _calls(cfg, sampler), "missing": True}
                continue
            else:
                if schedule not in models:
                    models[schedule] = load_model(out / "train" / schedule, mesh=mesh)
                model = models[schedule]
                summary = outpaint(
                    jax.random.key(cfg.seed),
                    model.eps_fn(mesh=mesh),
                    model.schedule,
                    block=cfg.block,
                    channels=cfg.train.model.in_channels,
                    shape=(cfg.outpaint_size,) * 3,
                    out_dir=target,
                    batch_size=cfg.batch_size,
                    reference=reference_stats,  # measured once, not in every run
                    resume=True,  # a fresh start when nothing is there yet
                    mesh=mesh,
                    progress=progress,
                    **sampler,
                )
            labels = np.load(target / "grain_ids.npy")
            generated[(schedule, name)] = (labels, grain_statistics(labels))
            comparison = summary["statistics"]
            rows[name] = {
                "sampler": sampler,
                "calls": summary["denoiser_calls_per_block"],
                "seconds": summary["seconds_generation"],
                "voxels_per_minute": summary["voxels_per_minute"],
                "grains": summary["grains"],
                "grains_measured": summary["grains_measured"],
                "kl": _kl_row(comparison),
                "ratio_to_floor": {
                    k: _ratio(comparison[k]["kl"], results["floor"]["kl"][k]) for k in TABLE1
                },
                "mean_generated": {k: comparison[k]["mean_generated"] for k in TABLE1},
            }
            snapshot = {**results, "complete": False, **choose(cfg, results)}
            _write_results(
                cfg, out, snapshot, reference, floor_volume, generated, reference_stats, floor_stats
            )
            if on_exportable is not None and snapshot["exportable"]:
                on_exportable(snapshot)
    results["complete"] = all(
        not row.get("missing") for rows in results["schedules"].values() for row in rows.values()
    )
    results.update(choose(cfg, results))
    _write_results(
        cfg, out, results, reference, floor_volume, generated, reference_stats, floor_stats
    )
    if on_exportable is not None and results["exportable"]:
        on_exportable(results)
    return results


def _ratio(kl, floor) -> float | None:
    if kl is None or floor is None or not floor > 0:
        return None
    return float(kl) / float(floor)


def _worst(row: dict) -> float:
    """The largest KL / floor of Table 1's statistics (inf when one is missing)."""
    ratios = list(row.get("ratio_to_floor", {}).values())
    return max((math.inf if r is None else r) for r in ratios) if ratios else math.inf


def choose(cfg, results: dict) -> dict:
    """The default schedule and the fast sampler of each schedule.

    Schedules are compared on the runs measured for all of them: a schedule's score is the mean,
    over those runs, of the largest KL / floor of Table 1's statistics (lower is better). The
    chosen fast sampler has the fewest denoiser calls among the runs at >= 5x fewer calls than
    U = max (counted, so U = max itself need not have run) whose three KLs are all within 2x
    the floor; ``None`` with the evidence (each candidate's worst ratio) when none is.
    ``exportable``: every run but U = max is measured, so both choices are made on all the runs
    they compare.
    """
    top = f"U{max(cfg.resamplings)}"
    top_calls = _calls(cfg, sampler_runs(cfg)[top])
    measured = {
        schedule: {k: r for k, r in rows.items() if not r.get("missing")}
        for schedule, rows in results["schedules"].items()
    }
    common = set.intersection(*(set(rows) for rows in measured.values())) if measured else set()
    scores = {
        schedule: float(np.mean([_worst(rows[name]) for name in sorted(common)]))
        if common
        else math.inf
        for schedule, rows in measured.items()
    }
    chosen = {}
    for schedule, rows in measured.items():
        candidates = {
            name: r for name, r in rows.items() if name != top and 5 * r["calls"] <= top_calls
        }
        good = [name for name, r in candidates.items() if _worst(r) <= 2.0]
        pick = min(
            good, key=lambda n: (candidates[n]["calls"], _worst(candidates[n])), default=None
        )
        chosen[schedule] = {
            "sampler": pick,
            "settings": None if pick is None else candidates[pick]["sampler"],
            "calls": None if pick is None else candidates[pick]["calls"],
            "evidence": {name: _finite(_worst(r)) for name, r in candidates.items()},
        }
    default = min(scores, key=lambda s: scores[s]) if scores else None
    wanted = {name for name in sampler_runs(cfg) if name != top}
    return {
        "top_run": top,
        "top_calls": top_calls,
        "compared_on": sorted(common),
        "default_schedule": default,
        "schedule_scores": {s: _finite(v) for s, v in scores.items()},
        "chosen": chosen,
        "exportable": bool(measured) and all(wanted <= set(rows) for rows in measured.values()),
    }


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _write_results(
    cfg, out, results, reference, floor_volume, generated, reference_stats, floor_stats
):
    """results.json, report.md and the PNGs (``generated``: (labels, statistics) per run)."""
    (out / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False))
    (out / "report.md").write_text(report_markdown(cfg, results))
    save_slices(out / "slices.png", reference[0], floor_volume[0], generated)
    save_histograms(out / "histograms.png", reference_stats, floor_stats, generated, cfg)


# --------------------------------------------------------------------------------- report


def _fmt(value, spec=".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def report_markdown(cfg, results: dict) -> str:
    """Table 1 (with the floor) and Table 2-style throughput, per schedule."""
    floor = results["floor"]["kl"]
    lines = [
        f"# GrainPaint study ({cfg.name})",
        "",
        f"Outpainted {cfg.outpaint_size}^3 volumes of {cfg.block}^3 blocks (T = "
        f"{cfg.train.num_diffusion_steps}); reference: {results['reference_volumes']} whole "
        f"Potts volumes of the same size ({results['reference_grains_measured']} grains "
        "measured); floor: an independent Potts volume of that size against the same reference. "
        "Grains cut by the box faces are left out on both sides. KL(reference || generated), "
        "30 bins. `ratio` = largest KL / floor over Table 1's three statistics.",
        "",
        "Training: "
        + "; ".join(
            f"{s}: {t['steps']} steps ({t['parameterization']}-prediction), final loss "
            f"{_fmt(t['final_loss'], '.4f')}, {_fmt(t['seconds'], '.0f')} s"
            for s, t in results["training"].items()
        )
        + ".",
        "",
        "![training loss](loss.png)",
        "",
        "![central slices of the grains](slices.png)",
        "",
        "![grain statistics](histograms.png)",
        "",
    ]
    header = (
        "| run | calls/block | s | voxels/min | grains (measured) | KL volume | KL c/a "
        "| KL NN | KL b/a | KL c/b | ratio |"
    )
    lines += ["## Table 1 with the floor, Table 2-style throughput", ""]
    for schedule, rows in results["schedules"].items():
        lines += [f"### schedule `{schedule}`", "", header, "|" + "---|" * 11]
        lines.append(
            f"| floor (Potts vs Potts) | | | | ({results['floor']['grains_measured']}) | "
            + " | ".join(_fmt(floor[k]) for k in (*TABLE1, *EXTRA))
            + " | 1 |"
        )
        for name, r in rows.items():
            if r.get("missing"):
                lines.append(f"| {name} | {r['calls']} | not run (time limit) |" + " |" * 9)
                continue
            rate = r["voxels_per_minute"]
            lines.append(
                f"| {name} | {r['calls']} | {r['seconds']:.0f} | "
                f"{'resumed' if rate is None else f'{rate:,.0f}'} | "
                f"{r['grains']} ({r['grains_measured']}) | "
                + " | ".join(_fmt(r["kl"][k]) for k in (*TABLE1, *EXTRA))
                + f" | {_fmt(_finite(_worst(r)), '.2f')} |"
            )
        lines.append("")
    lines += [
        "Paper (Table 1, full scale): U = 1: 0.0827 / 1.421 / 0.127; U = 10: 0.056 / 0.0384 / "
        "0.033 (grain volume / aspect ratio / centroid distance). GrainPaint's Table 2: "
        "23-25k voxels/min on 2 A100s at 2,489 calls per 32^3 block.",
        "",
    ]
    if "chosen" in results:
        lines += [
            "## Choices",
            "",
            f"Default schedule: `{results['default_schedule']}` (mean over "
            f"{', '.join(results['compared_on'])} of the largest KL / floor: "
            + ", ".join(f"{s} {_fmt(v, '.2f')}" for s, v in results["schedule_scores"].items())
            + ").",
            "",
        ]
        for schedule, c in results["chosen"].items():
            if c["sampler"]:
                lines.append(
                    f"- `{schedule}`: fast sampler `{c['sampler']}`, {c['calls']} calls per "
                    f"block against {results['top_calls']} at {results['top_run']}."
                )
            else:
                lines.append(
                    f"- `{schedule}`: no run at >= 5x fewer calls than {results['top_run']} is "
                    "within 2x the floor on all three statistics; worst ratio per candidate: "
                    + ", ".join(f"{n} {_fmt(v, '.2f')}" for n, v in c["evidence"].items())
                    + "."
                )
        lines.append("")
    if not results.get("complete", False):
        lines += ["The study is not complete: run the same command again to finish it.", ""]
    return "\n".join(lines)


def _colours(labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    colours = rng.uniform(0.15, 1.0, (int(labels.max()) + 1, 3))
    colours[0] = 0.0
    return colours[labels]


def save_slices(path: Path, reference, floor_volume, generated: dict) -> None:
    """Central slice of the grains of every volume: two Potts volumes, then each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("Potts reference", reference), ("Potts (floor)", floor_volume)]
    panels += [(f"{s}\n{name}", labels) for (s, name), (labels, _) in generated.items()]
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (title, volume) in zip(axes.flat, panels, strict=False):
        ax.imshow(_colours(np.asarray(volume)[volume.shape[0] // 2]))
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_histograms(path: Path, reference_stats, floor_stats, generated: dict, cfg) -> None:
    """Densities of the five statistics: reference, floor volume and the U runs + best fast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [
        ("Potts reference", reference_stats),
        ("Potts (floor)", floor_stats),
    ]
    for (schedule, name), (_, stats) in generated.items():
        if name.startswith("U") or name == _first_fast(cfg):
            curves.append((f"{schedule} {name}", stats))
    names = (*TABLE1, *EXTRA)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5))
    for ax, stat in zip(axes, names, strict=True):
        pooled = np.concatenate([c[stat][np.isfinite(c[stat])] for _, c in curves])
        if not pooled.size:
            continue
        bins = np.linspace(pooled.min(), pooled.max(), 31)
        for label, c in curves:
            values = c[stat][np.isfinite(c[stat])]
            if not values.size:
                continue
            ax.hist(values, bins=bins, density=True, histtype="step", label=label)
        ax.set_title(LABELS[stat], fontsize=9)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _first_fast(cfg) -> str:
    steps, u, jump, eta = cfg.fast[0]
    return f"steps{steps}_U{u}_j{jump}_eta{eta:g}"


# --------------------------------------------------------------------------------- export


def bracket_mask(voxel_size: int = 4) -> np.ndarray:
    """An L-shaped bracket with a round hole through its base, (Z, Y, X) bool at unit voxels.

    ``voxel_size`` voxels per millimetre of the part (40 x 24 mm base, 4 mm thick, a 24 mm
    upright, an 8 mm hole): the STL is written from this mask's surface, in millimetres.
    """
    s = voxel_size
    z, y, x = np.meshgrid(np.arange(28 * s), np.arange(24 * s), np.arange(40 * s), indexing="ij")
    base = z < 4 * s
    upright = x < 4 * s
    hole = (x + 0.5 - 24 * s) ** 2 + (y + 0.5 - 12 * s) ** 2 < (4 * s) ** 2
    return (base | upright) & ~(base & hole)


def write_example_stl(path: Path) -> None:
    """The example part's closed surface as a binary STL in millimetres."""
    from jaxmicro.outpaint import mask_surface, write_stl

    write_stl(path, mask_surface(bracket_mask(1), voxel=1.0))


def export(cfg, out: Path, dest: Path, results: dict) -> Path:
    """The shipped model folder from the default schedule's run, with the chosen sampler."""
    from jaxmicro.train import export_model

    if not results.get("exportable"):
        raise ValueError("export: the study has not measured every run yet; run --stage study")
    schedule = results["default_schedule"]
    chosen = results["chosen"][schedule]
    settings = chosen["settings"] or sampler_runs(cfg)[results["top_run"]]
    parts = out / "export_files"
    parts.mkdir(exist_ok=True)
    shipped = _volumes(out / "data" / "shipped")[0]
    assert shipped.max() < 2**16
    np.save(parts / "reference.npy", shipped.astype(np.uint16))
    write_example_stl(parts / "example.stl")
    rows = results["schedules"][schedule]
    card = {
        "name": dest.name,
        "paper": "Hoffman et al., GrainPaint: multi-scale diffusion for large-scale "
        "microstructure (2025)",
        "generates": f"3D grain-value fields of {cfg.block}^3 blocks (Potts grain growth), "
        "outpainted to any box or STL part with RePaint and segmented into grains",
        "metrics": {
            "floor_kl": results["floor"]["kl"],
            "runs": {
                name: {k: r.get(k) for k in ("calls", "kl", "voxels_per_minute", "seconds")}
                for name, r in rows.items()
            },
            "outpaint_size": cfg.outpaint_size,
            "training": results["training"][schedule],
            "study_complete": bool(results.get("complete")),
        },
        "data_command": "python experiments/grainpaint/run.py --variant smoke --out DIR "
        "--stage data",
        "train_command": "python experiments/grainpaint/run.py --variant smoke --out DIR",
        "schedule": schedule,
        "outpaint": {
            **{k: v for k, v in settings.items()},
            "batch_size": cfg.batch_size,
            "chosen": chosen["sampler"] or results["top_run"],
        },
        "example": {"stl": "example.stl", "voxel": 0.5, "units": "mm"},
        "reference": "reference.npy: uint16 Potts grain IDs "
        f"{cfg.shipped_reference_size}^3 of the training data's grain law",
    }
    return export_model(
        out / "train" / schedule,
        dest,
        card=card,
        files=(parts / "reference.npy", parts / "example.stl"),
        overwrite=True,
    )


def measure(model_dir: Path, out: Path, *, size: int = 48, progress: bool = True) -> dict:
    """Times the shipped model's default outpainting here; records it in its card.

    Runs what ``jaxmicro outpaint --model grainpaint-small --shape 48,48,48`` runs (the card's
    sampler, one volume of ``size``^3 against the shipped ``reference.npy``) and stores the
    seconds, voxels per minute, device and KLs under ``card["measured"]``.
    """
    import platform

    from jaxmicro.train.model import CARD_FILE

    model = load_model(model_dir, mesh=(mesh := batch_mesh()))
    card = dict(model.card)
    settings = {k: v for k, v in card["outpaint"].items() if k != "chosen"}
    summary = outpaint(
        jax.random.key(0),
        model.eps_fn(mesh=mesh),
        model.schedule,
        block=model.config.data.shape[0],
        shape=(size,) * 3,
        out_dir=out / f"measure_{size}",
        reference=np.load(model_dir / "reference.npy").astype(np.int32),
        overwrite=True,
        mesh=mesh,
        progress=progress,
        **settings,
    )
    card["measured"] = {
        "command": f"jaxmicro outpaint --model {model_dir.name} --shape {size},{size},{size}",
        "device": f"{jax.devices()[0].device_kind} x {mesh.size} ({platform.processor() or 'cpu'})",
        "seconds_generation": summary["seconds_generation"],
        "seconds_total": summary["seconds_total"],
        "voxels_per_minute": summary["voxels_per_minute"],
        "kl_vs_reference_npy": {k: v["kl"] for k, v in summary["statistics"].items()},
    }
    (model_dir / CARD_FILE).write_text(json.dumps(card, indent=1))
    return card["measured"]


# ----------------------------------------------------------------------------------- main


def run(
    cfg,
    out: str | Path,
    *,
    stages=STAGES,
    export_to: str | Path | None = None,
    time_limit: float | None = None,
    progress: bool = True,
) -> dict:
    """The requested stages in order into ``out``; returns ``results.json``'s content."""
    from jaxmicro.pretrained import MODELS_DIR

    # Only smoke has a registry model; paper and tiny export where they are told, or not at all.
    registry = MODELS_DIR / cfg.export_name if cfg.export_name else None
    dest = Path(export_to) if export_to else registry
    if dest is None and "measure" in stages:
        raise ValueError(f"export_to: the {cfg.name} variant has no registry model to measure")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = math.inf if time_limit is None else time.time() + 60 * time_limit
    results = {}
    if "data" in stages:
        data(cfg, out, progress=progress)
    if "train" in stages:
        train(cfg, out, progress=progress)

    def on_exportable(results):
        return export(cfg, out, dest, results)

    hook = on_exportable if "export" in stages and dest is not None else None
    if "study" in stages:  # exports as soon as it can (before the U = 10 runs), then at the end
        results = study(cfg, out, deadline=deadline, on_exportable=hook, progress=progress)
    elif (out / "results.json").is_file():
        results = json.loads((out / "results.json").read_text())
        if hook is not None and results.get("exportable"):
            hook(results)
    if "measure" in stages:
        measure(dest, out, progress=progress)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="smoke")
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--stage",
        action="append",
        choices=STAGES + EXTRA_STAGES,
        help="run only these stages (repeatable); 'measure' times the exported model here",
    )
    parser.add_argument("--time-limit", type=float, help="minutes before the study stops")
    parser.add_argument(
        "--export-to",
        help="model folder (default: the package's registry for smoke; paper and tiny export "
        "only to this folder)",
    )
    args = parser.parse_args(argv)
    cfg = load_file_module(Path(__file__).with_name("config.py")).get_config(args.variant)
    stages = tuple(args.stage) if args.stage else STAGES
    run(cfg, args.out, stages=stages, export_to=args.export_to, time_limit=args.time_limit)
    report = Path(args.out) / "report.md"
    if report.is_file():
        print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
