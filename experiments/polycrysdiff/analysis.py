"""PolyCrysDiff structure analysis (§4.2), distribution distances (§4.3, Table 1) and control
accuracy (Fig. 3), as functions of arrays that return plain data; plus the writers of the
experiment's PNGs and report.

The grain pipeline of §4.2 is ``jaxmicro.grains.segment_palette``: colour quantization to the ten
palette colours (mapped ``2p - 1`` into the fields' [-1, 1]), face-connected components (periodic:
the Voronoi training volumes wrap around, and counting wrapped grains once is what makes the
segmented count comparable with the ``n_grains`` condition), absorption of grains under
``min_size`` voxels (200 in the paper) and the h-maxima watershed that splits touching grains of
one colour (``watershed_h``; §4.2 gives no parameters: h = 7 voxels split no grain of 32 smoke-size
Voronoi volumes holding 693 grains, h = 5-6 over-split 6-19 of them). ``grain_properties`` then
gives per grain:

- grain size: the volume in voxels;
- aspect ratio: shortest / longest full axis of the ellipsoid with the grain's second moments,
  in (0, 1] (§4.2 computes "principal axis lengths" without naming the ratio);
- sphericity: ``pi^(1/3) (6 V)^(2/3) / A`` with ``A`` by marching cubes on the binary grain mask
  (the paper's choice; it reads about 0.92 of the true value on balls, see docs/grains.md).

The conditioning label ``mean_sphericity`` of the data is a different estimator (face counts x
2/3, ``jaxmicro.data.grain_sphericity``); the control figures therefore measure the achieved
mean sphericity of a sample with that same estimator on its segmented grains, and Table 1
compares marching-cubes sphericities as the paper does.

References:
    PolyCrysDiff §2.2-2.3 (Table 1, Fig. 3), §4.2 (analysis), §4.3 (KS and normalized EMD).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxmicro import grains, metrics, synth
from jaxmicro.data import grain_sphericity

PROPERTIES = ("grain_size", "aspect_ratio", "sphericity")
PAPER_TABLE1 = {
    "grain_size": {"ks": 0.0662, "emd": 0.0155},
    "aspect_ratio": {"ks": 0.0858, "emd": 0.0176},
    "sphericity": {"ks": 0.0357, "emd": 0.0051},
    "vgg_score": {"ks": 0.0280, "emd": 0.0085},
}
# Fig. 3b: R^2 = 0.995 for the grain count; the abstract: "R^2 over 0.972 on grain attributes
# (e.g., size and sphericity)", the only figure the paper gives for sphericity.
PAPER_R2 = {"n_grains": 0.995, "mean_sphericity": 0.972}
VGG_MISSING = "VGG: weights not installed"


def palette_colors(n_colors: int = 10) -> np.ndarray:
    """The ``(n_colors, 3)`` training colours in the fields' units: ``2 p - 1``."""
    return 2.0 * np.asarray(synth.palette(n_colors), np.float64) - 1.0


def segment(volume, palette, *, min_size: int, periodic: bool, watershed_h) -> np.ndarray:
    """int32 grain labels ``(D, H, W)``, 1..n, of one RGB volume ``(D, H, W, 3)`` (§4.2)."""
    return grains.segment_palette(
        volume, palette, min_size=min_size, periodic=periodic, split_h=watershed_h
    )


def analyze_volume(
    volume, palette, *, min_size: int = 200, periodic: bool = True, watershed_h=7.0
) -> dict:
    """Grain-level analysis of one RGB volume ``(D, H, W, 3)`` in about [-1, 1].

    Returns:
        ``n_grains`` (int), ``mean_sphericity`` (face-count estimator of the conditioning label,
        mean over grains), ``grain_size``, ``aspect_ratio``, ``sphericity`` (per grain, see the
        module docstring) and ``colour_fractions`` ``(P,)`` (voxel fraction per palette colour).
    """
    volume = np.asarray(volume)
    if volume.ndim != 4 or volume.shape[-1] != 3:
        raise ValueError(f"volume: expected (D, H, W, 3) RGB, got shape {volume.shape}")
    labels = segment(volume, palette, min_size=min_size, periodic=periodic, watershed_h=watershed_h)
    props = grains.grain_properties(labels, periodic=periodic)
    index = np.asarray(grains.quantize_palette(volume.astype(np.float32), np.asarray(palette)))
    fractions = np.bincount(index.ravel(), minlength=len(palette)) / index.size
    return {
        "n_grains": int(labels.max()),
        "mean_sphericity": float(np.nanmean(grain_sphericity(labels - 1, periodic=periodic))),
        "grain_size": props["volume"],
        "aspect_ratio": props["aspect_ratio"],
        "sphericity": props["sphericity"],
        "colour_fractions": fractions,
    }


def analyze(volumes, palette, **options) -> dict:
    """:func:`analyze_volume` over a set ``(N, D, H, W, 3)``: per-volume values ``(N,)``
    (``n_grains``, ``mean_sphericity``), ``colour_fractions`` ``(N, P)`` and the per-grain
    properties pooled over the set (``grain_size``, ``aspect_ratio``, ``sphericity``)."""
    rows = [analyze_volume(v, palette, **options) for v in volumes]
    if not rows:
        raise ValueError("volumes: expected at least one volume")
    out = {
        "n_grains": np.asarray([r["n_grains"] for r in rows]),
        "mean_sphericity": np.asarray([r["mean_sphericity"] for r in rows]),
        "colour_fractions": np.stack([r["colour_fractions"] for r in rows]),
    }
    for name in PROPERTIES:
        out[name] = np.concatenate([r[name] for r in rows])
    return out


def vgg_slices(volumes, palette, *, seed: int) -> np.ndarray:
    """One random slice per principal axis of each volume, quantized colours in [0, 1] (§4.2):
    ``(3 N, S, S, 3)`` for cubic volumes of edge ``S``."""
    rng = np.random.default_rng(seed)
    palette01 = (np.asarray(palette) + 1.0) / 2.0
    out = []
    for v in volumes:
        index = np.asarray(grains.quantize_palette(np.asarray(v, np.float32), np.asarray(palette)))
        for axis in range(3):
            out.append(palette01[np.take(index, rng.integers(index.shape[axis]), axis=axis)])
    return np.stack(out).astype(np.float32)


def load_vgg():
    """``(params, None)`` or ``(None, reason)`` when ``jaxmicro.metrics.load_vgg19`` fails."""
    try:
        return metrics.load_vgg19(), None
    except FileNotFoundError:
        return None, VGG_MISSING
    except ValueError as err:
        return None, f"VGG: weights unreadable ({err})"


def vgg_scores(params, slices, anchor_slices) -> np.ndarray:
    """Per-slice VGG (Gram) scores against the mean Gram matrices of ``anchor_slices``."""
    return np.asarray(metrics.vgg_slice_scores(params, slices, anchor_slices))


def distances(a, b) -> dict:
    """``{'ks', 'emd'}``: KS statistic and range-normalized EMD of two samples (§4.3).

    Non-finite values are left out (a grain without a measurable surface); both are None when
    either sample has no finite value left.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return {"ks": None, "emd": None}
    return {
        "ks": float(metrics.ks_distance(a, b)),
        "emd": float(metrics.emd_normalized(a, b)),
    }


def table1(generated: dict, reference: dict) -> dict:
    """Table 1: KS and normalized EMD per property between two :func:`analyze` results.

    A ``vgg_score`` entry (per-slice scores) is compared when both dicts hold one.
    """
    names = list(PROPERTIES)
    if "vgg_score" in generated and "vgg_score" in reference:
        names.append("vgg_score")
    return {name: distances(generated[name], reference[name]) for name in names}


def control(targets, achieved, *, bins: int = 5) -> dict:
    """Control accuracy (Fig. 3b/e): R^2 of achieved vs target, and the binned mean +- SE.

    Bins are equal-width over the target range; a bin's ``sem`` is ``std / sqrt(n)`` (0 for one
    sample); empty bins are dropped. Samples without a finite achieved value (e.g. a volume that
    is one grain, whose sphericity is undefined) are left out and counted in ``unmeasured``;
    ``r2`` is None when fewer than two remain.
    """
    targets = np.asarray(targets, np.float64)
    achieved = np.asarray(achieved, np.float64)
    if targets.shape != achieved.shape or targets.ndim != 1 or targets.size < 2:
        raise ValueError(
            f"achieved: expected one value per target (>= 2), got {targets.shape}, {achieved.shape}"
        )
    finite = np.isfinite(achieved)
    unmeasured = int(np.sum(~finite))
    targets, achieved = targets[finite], achieved[finite]
    if targets.size < 2:
        empty = {"centre": [], "mean": [], "sem": [], "count": []}
        return {
            "r2": None,
            "targets": targets.tolist(),
            "achieved": achieved.tolist(),
            "unmeasured": unmeasured,
            "binned": empty,
        }
    edges = np.linspace(targets.min(), targets.max(), bins + 1)
    which = np.clip(np.searchsorted(edges, targets, side="right") - 1, 0, bins - 1)
    binned = {"centre": [], "mean": [], "sem": [], "count": []}
    for b in range(bins):
        vals = achieved[which == b]
        if vals.size == 0:
            continue
        binned["centre"].append(float((edges[b] + edges[b + 1]) / 2))
        binned["mean"].append(float(vals.mean()))
        binned["sem"].append(float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else 0.0)
        binned["count"].append(int(vals.size))
    return {
        "r2": float(metrics.r2_score(targets, achieved)),
        "targets": targets.tolist(),
        "achieved": achieved.tolist(),
        "unmeasured": unmeasured,
        "binned": binned,
    }


def repeatability(targets, achieved) -> dict:
    """Fig. 3c/f: per fixed target, the achieved values ``(repeats,)``, their mean and std."""
    achieved = np.asarray(achieved, np.float64)
    if achieved.ndim != 2 or achieved.shape[0] != len(targets):
        raise ValueError(
            f"achieved: expected ({len(targets)}, repeats) values, got shape {achieved.shape}"
        )

    def stat(fn, row):
        row = row[np.isfinite(row)]
        return float(fn(row)) if row.size else None

    return {
        "targets": [float(t) for t in targets],
        "achieved": [[float(v) if np.isfinite(v) else None for v in row] for row in achieved],
        "mean": [stat(np.mean, row) for row in achieved],
        "std": [stat(lambda r: r.std(ddof=1) if r.size > 1 else 0.0, row) for row in achieved],
    }


# ---- CPFEM hand-off (§2.5) ----------------------------------------------------------------------


def colour_orientations(n_colors: int, seed: int) -> np.ndarray:
    """One fixed orientation per palette colour: ``(n_colors, 4)`` unit quaternions drawn
    uniformly on SO(3) from ``jax.random.key(seed)`` (the paper's ten orientations are not given;
    the colours stand for "discrete crystallographic directions", §4.1)."""
    import jax

    from jaxmicro import orientations

    q = np.asarray(orientations.random_quats(jax.random.key(seed), (n_colors,)), np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def cpfem_grid(volume, palette, quats, *, min_size: int, periodic: bool, watershed_h) -> dict:
    """Segmented grains of one volume with one orientation per grain, from its colour.

    Returns:
        ``labels`` ``(D, H, W)`` 0-based grain ids, ``colour`` ``(n,)`` the majority palette
        index of each grain (absorbed specks may leave a few voxels of other colours inside a
        grain), ``quats`` ``(n, 4)`` the grains' orientations, ``index`` ``(D, H, W)`` the
        quantized colour of each voxel.
    """
    volume = np.asarray(volume, np.float32)
    labels = segment(volume, palette, min_size=min_size, periodic=periodic, watershed_h=watershed_h)
    index = np.asarray(grains.quantize_palette(volume, np.asarray(palette)))
    n, p = int(labels.max()), len(palette)
    votes = np.bincount((labels.ravel() - 1) * p + index.ravel(), minlength=n * p).reshape(n, p)
    colour = votes.argmax(axis=1)
    return {
        "labels": labels - 1,
        "colour": colour,
        "quats": np.asarray(quats)[colour],
        "index": index,
    }


# Al7075-T6 cubic elastic constants of §4.4 (Pa), so the DAMASK phase entry is not empty.
AL7075_PHASE = {
    "Al7075": {
        "lattice": "cF",
        "mechanical": {
            "output": ["F", "P"],
            "elastic": {"type": "Hooke", "C_11": 107.3e9, "C_12": 60.9e9, "C_44": 28.3e9},
        },
    }
}


def write_cpfem(folder, volume, palette, quats, **segment_options) -> dict:
    """Writes one generated volume for CPFEM: a DAMASK grid (``grid.vti`` + ``material.yaml``,
    one material per grain, orientation from its colour, phase ``Al7075`` with the elastic
    constants of §4.4 and no plasticity) and ``volume.vti`` (RGB, colour index, grain id).

    Returns:
        paths (``damask_grid``, ``damask_material``, ``vti``) and ``n_grains``.
    """
    from jaxmicro import io

    folder = Path(folder)
    grid = cpfem_grid(volume, palette, quats, **segment_options)
    n = len(grid["colour"])
    grid_path, material_path = io.write_damask(
        folder / "damask",
        grid["labels"],
        grid["quats"],
        np.zeros(n, np.int64),
        phase_names={0: "Al7075"},
        phase_config=AL7075_PHASE,
    )
    vti = folder / "volume.vti"
    io.write_vti(
        vti,
        {
            "rgb": ((np.asarray(volume, np.float32) + 1.0) / 2.0).clip(0.0, 1.0),
            "colour": grid["index"].astype(np.int32),
            "grain": grid["labels"].astype(np.int32),
        },
        ndim=3,
    )
    return {
        "damask_grid": str(grid_path),
        "damask_material": str(material_path),
        "vti": str(vti),
        "n_grains": n,
    }


# ---- figures and report -------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_slices(path, volumes, titles) -> Path:
    """Middle z-slices of a few volumes side by side, one panel each, titled."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(volumes), figsize=(3 * len(volumes), 3.2), squeeze=False)
    for ax, v, title in zip(axes[0], volumes, titles, strict=True):
        v = np.asarray(v)
        ax.imshow(((v[v.shape[0] // 2] + 1.0) / 2.0).clip(0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_histograms(path, generated: dict, reference: dict, floor: dict | None = None) -> Path:
    """Fig. 2c-f: per-property histograms of generated and reference sets (density)."""
    plt = _pyplot()
    names = [n for n in (*PROPERTIES, "vgg_score") if n in generated and n in reference]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        g, r = np.asarray(generated[name]), np.asarray(reference[name])
        bins = np.linspace(min(g.min(), r.min()), max(g.max(), r.max()), 25)
        ax.hist(r, bins, density=True, alpha=0.5, label="reference")
        ax.hist(g, bins, density=True, alpha=0.5, label="generated")
        if floor is not None and name in floor:
            ax.hist(floor[name], bins, density=True, histtype="step", color="k", label="ref. B")
        ax.set_title(name.replace("_", " "), fontsize=10)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_control(path, result: dict, name: str, repeat: dict | None = None) -> Path:
    """Fig. 3b/c (or e/f): achieved vs target with the identity line and binned mean +- SE, and
    the repeatability at the fixed targets."""
    plt = _pyplot()
    ncols = 2 if repeat is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols, 3.8), squeeze=False)
    ax = axes[0][0]
    t, a = np.asarray(result["targets"], float), np.asarray(result["achieved"], float)
    if t.size == 0:
        t = a = np.zeros(1)
    lo, hi = min(t.min(), a.min()), max(t.max(), a.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.scatter(t, a, s=12, alpha=0.7)
    b = result["binned"]
    ax.errorbar(b["centre"], b["mean"], yerr=b["sem"], fmt="o-", color="C3", capsize=3)
    ax.set_xlabel(f"target {name}")
    ax.set_ylabel(f"segmented {name}")
    ax.set_title(f"R^2 = {_fmt(result['r2'], 3)}", fontsize=10)
    if repeat is not None:
        ax = axes[0][1]
        for i, (target, vals) in enumerate(zip(repeat["targets"], repeat["achieved"], strict=True)):
            vals = np.asarray([np.nan if v is None else v for v in vals], float)
            ax.scatter(np.full(len(vals), i), vals, s=14)
            ax.hlines(target, i - 0.3, i + 0.3, color="k")
        ax.set_xticks(range(len(repeat["targets"])))
        ax.set_xticklabels([f"{t:.3g}" for t in repeat["targets"]])
        ax.set_xlabel(f"target {name} (line)")
        ax.set_title("repeatability", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _fmt(x, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _table(rows: dict, names) -> list[str]:
    lines = ["| | " + " | ".join(n.replace("_", " ") for n in names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for label, table in rows.items():
        for metric in ("ks", "emd"):
            cells = [_fmt(table.get(n, {}).get(metric)) for n in names]
            lines.append(f"| {label} {metric.upper()} | " + " | ".join(cells) + " |")
    return lines


def report_markdown(results: dict) -> str:
    """``report.md`` from the ``results.json`` dict that ``run.py`` writes."""
    names = [*PROPERTIES, "vgg_score"]
    lines = [f"# PolyCrysDiff evaluation: {results.get('name', '')}", ""]
    lines += [results.get("note", ""), ""] if results.get("note") else []
    lines += ["## Table 1 (unconditional samples vs reference set A)", ""]
    t1 = results["table1"]
    rows = {"paper": PAPER_TABLE1, "ours": t1["generated"], "ref B vs ref A (floor)": t1["floor"]}
    lines += _table(rows, names)
    lines += ["", f"VGG score: {results.get('vgg', VGG_MISSING)}.", ""]
    lines += [
        f"Sets: {t1['num_generated']} generated, {t1['num_reference']} per reference set; grains "
        f"pooled: {t1['grains_generated']} generated, {t1['grains_reference']} reference.",
        "",
        "![histograms](histograms.png)",
        "",
        "## Fig. 3: control",
        "",
        "| condition | R^2 (ours) | R^2 (paper) | repeatability: target -> mean +- std |",
        "|---|---|---|---|",
    ]
    for name in ("n_grains", "mean_sphericity"):
        c = results["control"][name]
        rep = c["repeatability"]
        reps = "; ".join(
            f"{t:.3g} -> {_fmt(m, 3)} +- {_fmt(s, 3)}"
            for t, m, s in zip(rep["targets"], rep["mean"], rep["std"], strict=True)
        )
        paper = "0.995" if name == "n_grains" else ">= 0.972 (abstract)"
        r2 = _fmt(c["random"]["r2"], 3)
        if c["random"]["unmeasured"]:
            r2 += f" ({c['random']['unmeasured']} samples unmeasurable)"
        lines.append(f"| {name} | {r2} | {paper} | {reps} |")
    lines += [
        "",
        f"Guidance scale {results['control']['guidance_scale']}; the other condition held at the "
        "dataset mean. ![grain count](control_n_grains.png) "
        "![sphericity](control_mean_sphericity.png)",
        "",
        "![targets](slices_n_grains.png)",
        "",
        "![targets](slices_mean_sphericity.png)",
        "",
        "## Classifier-free guidance sweep",
        "",
        "Conditions: the labels of reference set A; scale 0 is the unconditional model.",
        "",
        "| scale | R^2 n_grains | R^2 mean_sphericity | KS size / aspect / sphericity | "
        "EMD size / aspect / sphericity |",
        "|---|---|---|---|---|",
    ]
    for row in results["guidance"]:
        t = row["table1"]
        ks = " / ".join(_fmt(t[n]["ks"]) for n in PROPERTIES)
        emd = " / ".join(_fmt(t[n]["emd"]) for n in PROPERTIES)
        lines.append(
            f"| {row['scale']} | {_fmt(row['r2_n_grains'], 3)} | "
            f"{_fmt(row['r2_mean_sphericity'], 3)} | "
            f"{ks} | {emd} |"
        )
    if "cpfem" in results:
        c = results["cpfem"]
        lines += [
            "",
            "## CPFEM hand-off (§2.5)",
            "",
            f"One unconditional sample, {c['n_grains']} grains: DAMASK grid `{c['damask_grid']}` "
            f"with `{c['damask_material']}` (one material per grain; orientation = one of "
            f"{c['orientations']}), and `{c['vti']}`.",
        ]
    lines += [
        "",
        "Aspect ratio: shortest / longest axis of the second-moment ellipsoid. Sphericity: "
        "marching cubes on the binary grain mask. Grain size: voxels.",
        "",
    ]
    return "\n".join(lines)


def write_report(out, results: dict) -> tuple[Path, Path]:
    """Writes ``results.json`` and ``report.md`` into ``out``; returns their paths."""
    out = Path(out)
    path_json = out / "results.json"
    path_json.write_text(json.dumps(results, indent=1))
    path_md = out / "report.md"
    path_md.write_text(report_markdown(results))
    return path_json, path_md
