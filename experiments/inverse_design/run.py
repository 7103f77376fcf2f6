"""Runs the inverse designs of one config variant; writes results.json, report.md and PNGs.

python experiments/inverse_design/run.py --variant smoke --out runs/inverse_design_smoke \\
    [--stages two_phase,polycrystal,guided] [--model lee-yun-fiber]

Each stage writes ``<out>/<stage>.json`` (numbers) and its pictures; ``results.json`` and
``report.md`` gather the stages found in ``<out>``, so stages can run separately.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxmicro._modules import load_file_module

HERE = Path(__file__).parent
_config = load_file_module(HERE / "config.py")
designs = load_file_module(HERE / "designs.py")
get_config, STAGES = _config.get_config, _config.STAGES


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _json(x):
    if isinstance(x, dict):
        return {str(k): _json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json(x.tolist())
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x


def _section(field, shape):
    """A 2D picture of a field: itself, or the central section normal to the last axis."""
    field = np.asarray(field)
    return field if len(shape) == 2 else field[..., shape[-1] // 2]


# ---- stages -------------------------------------------------------------------------------------


def stage_two_phase(cfg, out: Path) -> dict:
    r = designs.two_phase_design(cfg)
    plt = _plt()
    names = list(r["fields"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.4))
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        ax.imshow(_section(r["fields"][name], r["shape"]), cmap="gray", vmin=0, vmax=1)
        row = next((x for x in r["rows"] if x["run"] == name), None)
        ratio = r["family"]["reference_ratio"] if row is None else row["binary"]["ratio"]
        ax.set_title(f"{name}\nk00/k{len(r['shape']) - 1}{len(r['shape']) - 1} = {ratio:.2f}")
        ax.set_xlabel("axis 1")
        ax.set_ylabel("axis 0")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out / "two_phase_fields.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, h in r["histories"].items():
        ax.semilogy(np.maximum(h, 1e-12), label=name)
    ax.set_xlabel("L-BFGS-B iteration (levels concatenated)")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "two_phase_loss.png", dpi=110)
    plt.close(fig)
    np.savez_compressed(
        out / "two_phase_fields.npz", **{k.replace(" ", "_"): v for k, v in r["fields"].items()}
    )
    return {k: v for k, v in r.items() if k not in ("fields", "histories")}


def _ipf_points(q):
    """Stereographic coordinates of the crystal direction along sample z, in the cubic triangle."""
    d = np.abs(np.asarray(designs.quat_to_matrix(q))[..., :, 2])
    d = np.sort(d, axis=-1)  # x <= y <= z: the standard triangle [001]-[101]-[111]
    return d[..., 1] / (1 + d[..., 2]), d[..., 0] / (1 + d[..., 2])


def stage_polycrystal(cfg, out: Path) -> dict:
    r = designs.texture_design(cfg)
    plt = _plt()
    from jaxmicro.orientations import ipf_color

    goals = list(r["q_final"])
    fig, axes = plt.subplots(2, len(goals) + 1, figsize=(3.3 * (len(goals) + 1), 6.4))
    axes = np.asarray(axes).reshape(2, -1)
    ids = r["ids"]
    sets = [("random start", r["q_start"], r["rows"][0]["start"])] + [
        (f"target {g:g} GPa", r["q_final"][g], row["achieved"])
        for g, row in zip(goals, r["rows"], strict=True)
    ]
    edge = np.linspace(0, np.pi / 4, 30)
    tri_x = np.tan(edge / 2)  # [001]-[101] edge, then the [101]-[111] arc, closed
    arc = np.linspace(0, 1, 30)
    d = np.stack([np.ones(30), arc, np.ones(30)], -1) / np.sqrt(2 + arc**2)[:, None]
    arc_x, arc_y = d[:, 0] / (1 + d[:, 2]), d[:, 1] / (1 + d[:, 2])
    for j, (title, q, e) in enumerate(sets):
        colours = np.asarray(ipf_color(q[ids[..., ids.shape[-1] // 2]], "cubic"))
        axes[0, j].imshow(colours)
        axes[0, j].set_title(f"{title}\nE_z = {e:.1f} GPa")
        axes[0, j].set_xticks([])
        axes[0, j].set_yticks([])
        x, y = _ipf_points(q)
        ax = axes[1, j]
        ax.plot(tri_x, 0 * tri_x, "k-", lw=0.8)
        ax.plot(arc_x, arc_y, "k-", lw=0.8)
        ax.plot([0, arc_x[-1]], [0, arc_y[-1]], "k-", lw=0.8)
        ax.scatter(x, y, s=8)
        ax.text(0, -0.03, "001", ha="center", va="top", fontsize=8)
        ax.text(tri_x[-1], -0.03, "101", ha="center", va="top", fontsize=8)
        ax.text(arc_x[-1], arc_y[-1] + 0.01, "111", ha="center", va="bottom", fontsize=8)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title("IPF of sample z (one dot per grain)", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "polycrystal_texture.png", dpi=110)
    plt.close(fig)
    np.savez_compressed(
        out / "polycrystal.npz",
        ids=ids,
        q_start=r["q_start"],
        **{f"q_target_{g:g}": q for g, q in r["q_final"].items()},
    )
    return {k: v for k, v in r.items() if k not in ("ids", "q_start", "q_final")}


def load_guided_model(cfg, out: Path, model_arg: str | None):
    """The model to guide: ``model_arg``, else ``cfg.gd_model``, else train ``cfg.gd_train``."""
    from jaxmicro.train import fit, load_model

    source = model_arg or cfg.gd_model
    if source:
        return load_model(source), source
    folder = out / "tiny_model"
    if not (folder / "config.json").is_file():
        fit(cfg.gd_train, folder, progress=False)
    return load_model(folder), str(folder)


def stage_guided(cfg, out: Path, model_arg: str | None = None) -> dict:
    model, source = load_guided_model(cfg, out, model_arg)
    sample = designs.guided_sampler(model, cfg)
    n_ref = max(cfg.gd_samples, 8)
    reference = designs.reference_images(model, cfg, n_ref)
    ref_s2 = designs.mean_two_point(reference)
    ref_stats = designs.describe_samples(reference, ref_s2, cfg)
    key = jax.random.key(cfg.seed)
    jax.block_until_ready(sample(jax.random.fold_in(key, 10**6), 0.0))  # compile once
    rows, sets = [], {}
    for scale in cfg.gd_scales:
        chunks, seconds = [], 0.0
        for c in range(-(-cfg.gd_samples // cfg.gd_batch)):
            t0 = time.perf_counter()
            x = jax.block_until_ready(sample(jax.random.fold_in(key, c), scale))
            seconds += time.perf_counter() - t0
            chunks.append(np.asarray(x, np.float32))
        x = np.concatenate(chunks)[: cfg.gd_samples]
        binary = (x[..., 0] > 0).astype(np.float64)
        stats = designs.describe_samples(binary, ref_s2, cfg)
        ratio = stats["ratio"]
        rows.append(
            {
                "scale": scale,
                "ratio_mean": float(ratio.mean()),
                "ratio_sd": float(ratio.std(ddof=1)) if len(ratio) > 1 else 0.0,
                "ratio_median": float(np.median(ratio)),
                "share_within_10pct": float(np.mean(np.abs(ratio / cfg.gd_target - 1) <= 0.1)),
                "volume_fraction_mean": float(stats["volume_fraction"].mean()),
                "volume_fraction_sd": float(stats["volume_fraction"].std(ddof=1))
                if len(ratio) > 1
                else 0.0,
                "s2_relative_error": stats["s2_relative_error"],
                "s2_sample_error_median": stats["s2_sample_error_median"],
                "s2_anisotropy": stats["s2_anisotropy"],
                "seconds_per_sample": seconds / cfg.gd_samples,
            }
        )
        sets[scale] = (binary, ratio)
    # S2 floor: the same error between two halves of the reference set.
    half = len(reference) // 2
    floor = designs.describe_samples(
        reference[:half], designs.mean_two_point(reference[half:]), cfg
    )
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    bins = np.linspace(
        min(min(r.min() for _, r in sets.values()), ref_stats["ratio"].min()) * 0.95,
        max(max(r.max() for _, r in sets.values()), cfg.gd_target) * 1.05,
        30,
    )
    ax.hist(ref_stats["ratio"], bins=bins, histtype="step", color="k", label="training images")
    for scale, (_, ratio) in sets.items():
        ax.hist(ratio, bins=bins, histtype="step", label=f"scale {scale:g}")
    ax.axvline(cfg.gd_target, color="r", ls="--", label="target")
    ax.set_xlabel("k_00 / k_11 (contrast 1:10)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "guided_ratio_hist.png", dpi=110)
    plt.close(fig)
    show = min(6, cfg.gd_samples)
    fig, axes = plt.subplots(len(sets), show, figsize=(1.6 * show, 1.7 * len(sets)), squeeze=False)
    for i, (scale, (binary, ratio)) in enumerate(sets.items()):
        for j in range(show):
            axes[i, j].imshow(binary[j], cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            axes[i, j].set_title(f"{ratio[j]:.2f}", fontsize=7)
        axes[i, 0].set_ylabel(f"scale {scale:g}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "guided_samples.png", dpi=110)
    plt.close(fig)
    np.savez_compressed(
        out / "guided_samples.npz", **{f"scale_{s:g}": b for s, (b, _) in sets.items()}
    )
    params = None if model.path is None else model.path / "params.npz"
    return {
        "model": source,
        "params_sha256": hashlib.sha256(params.read_bytes()).hexdigest()[:16]
        if params is not None and params.is_file()
        else None,
        "shape": list(model.sample_shape),
        "target": cfg.gd_target,
        "steps": cfg.gd_steps,
        "eta": designs.guided_eta(model, cfg),
        "samples": cfg.gd_samples,
        "reference": {
            "images": len(reference),
            "ratio_mean": float(ref_stats["ratio"].mean()),
            "ratio_sd": float(ref_stats["ratio"].std(ddof=1)),
            "volume_fraction_mean": float(ref_stats["volume_fraction"].mean()),
            "s2_floor": floor["s2_relative_error"],
            "s2_sample_error_median": floor["s2_sample_error_median"],
            "s2_anisotropy": ref_stats["s2_anisotropy"],
        },
        "rows": rows,
    }


# ---- report -------------------------------------------------------------------------------------


def _f(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def report_markdown(cfg, results: dict) -> str:
    lines = [f"# Inverse design: {cfg.name}", ""]
    lines += [
        "Command: `python experiments/inverse_design/run.py --variant "
        f"{cfg.name.removeprefix('inverse_design_')} --out <out>`; config: "
        "`experiments/inverse_design/config.py`. Pictures next to this file.",
        "",
    ]
    tp = results.get("two_phase")
    if tp:
        f = tp["family"]
        last = len(tp["shape"]) - 1
        lines += [
            "## 1. Two-phase: target conductivity anisotropy (`two_phase_fields.png`)",
            "",
            f"Grid {'x'.join(map(str, tp['shape']))}, contrast {tp['contrast'][0]:g}:"
            f"{tp['contrast'][1]:g}, phase-1 fraction {cfg.tp_fraction}; reference family "
            f"(correlation lengths {cfg.tp_lengths}): k00/k{last}{last} = "
            f"{f['ratio_mean']:.3f} +- {f['ratio_sd']:.3f} over {f['members']} members "
            f"(reference {f['reference_ratio']:.3f}); S2 error of the other members against "
            f"the reference: median {_f(f['s2_error_floor_median'])}, max "
            f"{_f(f['s2_error_floor_max'])}. One solve {1e3 * tp['solve_seconds']:.1f} ms, "
            f"value + gradient {1e3 * tp['value_and_grad_seconds']:.1f} ms.",
            "",
            "| run | target | ratio (thresholded) | error | ratio (soft) | S2 err | MV err "
            "| vol. frac. | grey share | evals | s/design | compile s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in tp["rows"]:
            b, s = row["binary"], row["soft"]
            lines.append(
                f"| {row['run']} | {_f(row['target'])} | {b['ratio']:.3f} | "
                f"{_f(b.get('error'))} | {s['ratio']:.3f} | {b['s2_error']:.4f} | "
                f"{b['mv_error']:.3f} | {b['volume_fraction']:.3f} | {row['grey_fraction']:.2f} | "
                f"{row['evaluations']} | {row['design_seconds']:.1f} | "
                f"{row['compile_seconds']:.1f} |"
            )
        lines.append("")
    pc = results.get("polycrystal")
    if pc:
        sc = pc["single_crystal"]
        lines += [
            "## 2. Polycrystal: texture for a target E_z (`polycrystal_texture.png`)",
            "",
            f"Copper (C11, C12, C44 = {pc['constants_gpa']} GPa; single crystal E<100> = "
            f"{sc['E_100']:.1f}, E<110> = {sc['E_110']:.1f}, E<111> = {sc['E_111']:.1f} GPa), "
            f"{pc['grains']} periodic Voronoi grains on {'x'.join(map(str, pc['shape']))}; "
            f"variables: one quaternion per grain (normalized), L-BFGS from a random texture "
            f"(Voigt/Reuss E_z of the start {pc['start_voigt']:.1f}/{pc['start_reuss']:.1f} "
            f"GPa). One solve (6 loads) {1e3 * pc['solve_seconds']:.0f} ms, value + gradient "
            f"{1e3 * pc['value_and_grad_seconds']:.0f} ms.",
            "",
            "| target GPa | start | achieved | error | iterations (to tol.) | evals | s/design "
            "| mean rotation deg | z to <100> / <111> deg: start -> final |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in pc["rows"]:
            a, b = row["angles_start"], row["angles_final"]
            lines.append(
                f"| {row['target']:g} | {row['start']:.1f} | {row['achieved']:.2f} | "
                f"{row['error']:.1e} | {row['iterations']} ({_f(row['iterations_to_tolerance'])})"
                f" | {row['evaluations']} | {row['design_seconds']:.1f} | "
                f"{row['mean_rotation_deg']:.1f} | {a['to_100']:.1f} / {a['to_111']:.1f} -> "
                f"{b['to_100']:.1f} / {b['to_111']:.1f} |"
            )
        lines.append("")
    gd = results.get("guided")
    if gd:
        ref = gd["reference"]
        lines += [
            "## 3. Property-guided sampling (`guided_ratio_hist.png`, `guided_samples.png`)",
            "",
            f"Model `{gd['model']}` ({'x'.join(map(str, gd['shape']))}), DDIM {gd['steps']} "
            f"steps, eta {gd['eta']:g}, {gd['samples']} samples per scale; target k00/k11 = "
            f"{gd['target']:g} at contrast {cfg.contrast[0]:g}:{cfg.contrast[1]:g}. Training "
            f"images ({ref['images']}): ratio {ref['ratio_mean']:.3f} +- {ref['ratio_sd']:.3f}, "
            f"volume fraction {ref['volume_fraction_mean']:.3f}, S2 anisotropy "
            f"{_f(ref.get('s2_anisotropy'))}; S2 error between two halves of them (floor) "
            f"{ref['s2_floor']:.4f}, per sample (median) {_f(ref.get('s2_sample_error_median'))}.",
            "",
            "| scale | ratio mean +- sd | median | within 10% of target | vol. frac. | "
            "S2 err (mean S2 vs training) | S2 err per sample (median) | S2 anisotropy | "
            "s/sample |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in gd["rows"]:
            lines.append(
                f"| {row['scale']:g} | {row['ratio_mean']:.3f} +- {row['ratio_sd']:.3f} | "
                f"{row['ratio_median']:.3f} | {row['share_within_10pct']:.2f} | "
                f"{row['volume_fraction_mean']:.3f} +- {row['volume_fraction_sd']:.3f} | "
                f"{row['s2_relative_error']:.4f} | {_f(row.get('s2_sample_error_median'))} | "
                f"{_f(row.get('s2_anisotropy'))} | {row['seconds_per_sample']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="smoke")
    parser.add_argument("--out", default=None)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--model", default=None, help="model of the guided stage (name or folder)")
    args = parser.parse_args(argv)
    # float64 solves: in float32 the adjoint CG of effective_stiffness does not reach its
    # tolerance and runs to maxiter (value + gradient 10-30x the forward solve; float64: 2x).
    jax.config.update("jax_enable_x64", True)
    cfg = get_config(args.variant)
    stages = tuple(s for s in args.stages.split(",") if s)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise SystemExit(f"--stages: unknown {unknown}; expected a subset of {list(STAGES)}")
    out = Path(args.out or f"runs/{cfg.name}")
    out.mkdir(parents=True, exist_ok=True)
    runners = {
        "two_phase": lambda: stage_two_phase(cfg, out),
        "polycrystal": lambda: stage_polycrystal(cfg, out),
        "guided": lambda: stage_guided(cfg, out, args.model),
    }
    for stage in stages:
        start = time.perf_counter()
        numbers = runners[stage]()
        numbers["stage_seconds"] = round(time.perf_counter() - start, 1)
        (out / f"{stage}.json").write_text(json.dumps(_json(numbers), indent=1))
        print(f"{stage}: {numbers['stage_seconds']} s", flush=True)
    results = {
        s: json.loads((out / f"{s}.json").read_text())
        for s in STAGES
        if (out / f"{s}.json").is_file()
    }
    results["config"] = _json(dataclasses.asdict(cfg))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "report.md").write_text(report_markdown(cfg, results))
    return results


if __name__ == "__main__":
    main()
