"""The report of an evaluation: ``report.md`` with tables, and PNG figures, in a fresh folder.

:func:`write_report` takes the dict of ``jaxmicro.metrics.evaluate`` and writes it; it computes
nothing new, so the numbers in the report are the numbers in the dict.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from ._evaluate import PROPERTIES


def _fmt(x) -> str:
    return "n/a" if x is None else f"{float(x):.4g}"


def _figures(out: pathlib.Path, results: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for p, row in results["properties"].items():
        a, b = row["values_reference"], row["values_generated"]
        if a.size == 0 or b.size == 0:
            continue
        fig, (h, c) = plt.subplots(1, 2, figsize=(9, 3.5))
        bins = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 31)
        h.hist(a, bins, density=True, alpha=0.5, label="reference")
        h.hist(b, bins, density=True, alpha=0.5, label="generated")
        for x, name in ((a, "reference"), (b, "generated")):
            c.step(np.sort(x), np.arange(1, x.size + 1) / x.size, where="post", label=name)
        h.set_xlabel(p), c.set_xlabel(p), h.set_ylabel("density"), c.set_ylabel("CDF")
        h.legend()
        fig.tight_layout()
        fig.savefig(out / f"hist_{p}.png", dpi=100)
        plt.close(fig)
        files.append(f"hist_{p}.png")
    for stat, label in (("s2", "S2"), ("lineal", "lineal path (axis 0)")):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for name in ("reference", "generated"):
            curves = results[f"{stat}_{name}"]
            r = np.arange(curves.shape[1])
            line = ax.plot(r, curves.mean(0), label=name)[0]
            ax.fill_between(r, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2)
        ax.set_xlabel("|r| (voxels)" if stat == "s2" else "z (voxels)"), ax.set_ylabel(label)
        ax.set_title(results["phase_description"], fontsize=8)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{stat}.png", dpi=100)
        plt.close(fig)
        files.append(f"{stat}.png")
    rows = [(results[f"example_slices_{n}"], n) for n in ("reference", "generated")]
    cols = max(len(images) for images, _ in rows)
    fig, axes = plt.subplots(2, cols, figsize=(3 * cols, 6), squeeze=False)
    for row, (images, name) in enumerate(rows):
        for col in range(cols):
            axes[row, col].axis("off")
            if col < len(images):
                axes[row, col].imshow(images[col].squeeze(), cmap="gray", vmin=0, vmax=1)
                axes[row, col].set_title(f"{name} slice {col}")
    fig.tight_layout()
    fig.savefig(out / "slices.png", dpi=100)
    plt.close(fig)
    files.append("slices.png")
    return files


def report_markdown(results: dict, *, sources: dict | None = None, vgg_note: str | None = None):
    """The lines of ``report.md`` (without the figure links) for an ``evaluate`` dict."""
    sources = sources or {}
    kinds = f"`{results['kind_reference']}`"
    if results["kind_generated"] != results["kind_reference"]:
        kinds = f"{kinds} (reference), `{results['kind_generated']}` (generated)"
    lines = [
        "# jaxmicro evaluate",
        "",
        f"- kind: {kinds}, {results['dim']}-D, periodic: {results['periodic']}",
    ]
    for name in ("reference", "generated"):
        where = f" from `{sources[name]}`" if name in sources else ""
        lines.append(f"- {name}: {results[f'n_{name}']} samples{where}")
    if "binary" in (results["kind_reference"], results["kind_generated"]):
        lines.append("- `binary` fields were thresholded at 0: phase 1 = values > 0")
    lines.append("")
    if results["properties"]:
        lines += [
            "## Grain properties",
            "",
            "KS: two-sample Kolmogorov-Smirnov statistic. EMD: W1 / pooled range. "
            f"KL: KL(reference || generated), {results['bins']} bins on the pooled range, "
            "pseudocount 0.5 per bin.",
            "",
            "| property | n ref | n gen | mean ref | mean gen | KS | EMD | KL |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in PROPERTIES:
            row = results["properties"][p]
            cells = [row[k] for k in ("mean_reference", "mean_generated", "ks", "emd", "kl")]
            lines.append(
                f"| {p} | {row['n_reference']} | {row['n_generated']} | "
                + " | ".join(_fmt(c) for c in cells)
                + " |"
            )
        lines.append("")
    per_s2 = ", ".join(_fmt(e) for e in results["s2_discrepancy_per_channel"])
    per_lp = ", ".join(_fmt(e) for e in results["lineal_discrepancy_per_channel"])
    lines += [
        "## Spatial statistics",
        "",
        f"Indicator channels: {results['channels']}. Phase of interest: "
        f"**{results['phase_description']}**. Discrepancy eps = 100 A_c / A_ori (Lee & Yun "
        "eq. 23) between the set-mean curves of the phase of interest.",
        "",
        "| statistic | value |",
        "|---|---|",
        f"| volume fraction, reference / generated | {_fmt(results['volume_fraction_reference'])}"
        f" / {_fmt(results['volume_fraction_generated'])} |",
        f"| S2 discrepancy (%) | {_fmt(results['s2_discrepancy'])} |",
        f"| lineal-path discrepancy, axis 0 (%) | {_fmt(results['lineal_discrepancy'])} |",
        f"| S2 discrepancy per channel (%) | {per_s2} |",
        f"| lineal-path discrepancy per channel (%) | {per_lp} |",
        "| S2 / lineal-path discrepancy of volume-fraction-weighted curves (%) | "
        f"{_fmt(results['s2_discrepancy_weighted'])} / "
        f"{_fmt(results['lineal_discrepancy_weighted'])} |",
        f"| chord-length EMD (axis 0) | {_fmt(results['chord_emd'])} |",
    ]
    if results["odf_mse"] is not None:
        lines.append(
            "| ODF: MSE of mean SHSH coefficients (degrees of `metrics.ODF_DEGREES`) | "
            f"{_fmt(results['odf_mse'])} |"
        )
    lines += ["", "## Sample sets", "", "| features | Fréchet | precision | recall |"]
    lines.append("|---|---|---|---|")
    for key, label in (("pca_s2", None), ("vgg", "VGG-19 slice embedding")):
        m = results[key]
        if m is not None:
            label = label or f"PCA({m['n_components']}) of S2 curves"
            lines.append(
                f"| {label} | {_fmt(m['frechet'])} | {_fmt(m['precision'])} | {_fmt(m['recall'])} |"
            )
    note = vgg_note or ("computed" if results["vgg"] is not None else "skipped (no weights)")
    lines += ["", f"VGG-19: {note}.", ""]
    if results["vgg"] is not None:
        v = results["vgg"]
        lines += [
            "| score | KS | EMD |",
            "|---|---|---|",
            f"| VGG slice score (Gram distance to reference mean) | {_fmt(v['score_ks'])} | "
            f"{_fmt(v['score_emd'])} |",
            "",
        ]
    copying = results["data_copying"]
    if copying is not None:
        closest = int(copying["nearest"][int(np.argmin(copying["mse"]))])
        lines += [
            "## Data copying",
            "",
            "Pixel MSE of each generated sample to its nearest reference sample (Lee & Yun eq. 24,"
            f" on the analysed fields): min {_fmt(copying['min'])}, median "
            f"{_fmt(copying['median'])} (nearest of the closest: reference #{closest}).",
            "",
        ]
    return lines


def write_report(
    results: dict,
    out_dir: str | os.PathLike,
    *,
    sources: dict | None = None,
    vgg_note: str | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Writes ``report.md`` and PNG figures of an ``evaluate`` result into a fresh folder.

    Figures: per grain property a histogram + CDF overlay (``hist_<property>.png``), the S2 and
    lineal-path curves of the phase of interest (set mean and range, ``s2.png``,
    ``lineal.png``), and example slices (``slices.png``).

    Args:
        results: the dict returned by ``jaxmicro.metrics.evaluate``.
        out_dir: the folder; it must be new or empty unless ``overwrite``.
        sources: optional ``{'reference': str, 'generated': str}`` named in the report.
        vgg_note: what the VGG-19 weights were (default: computed / skipped).
        overwrite: empty an existing non-empty folder first.

    Returns:
        The path of ``report.md``.

    Raises:
        ValueError: ``out_dir`` is a file, holds files (without ``overwrite``) or is not
            writable (``jaxmicro._outdir.prepare_output_dir``).
    """
    from .._outdir import prepare_output_dir

    lines = report_markdown(results, sources=sources, vgg_note=vgg_note)
    out = prepare_output_dir(out_dir, overwrite=overwrite, name="out_dir")
    files = _figures(out, results)
    lines += ["## Figures", "", *[f"![{f}]({f})" for f in files], ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
