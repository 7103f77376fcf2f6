"""After outpainting: grains of the generated volume and their statistics against a reference.

References:
    GrainPaint §2.6 (segmentation), §3.2 and Table 1 (grain volume, aspect ratio and
    nearest-centroid distance distributions compared by KL divergence).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STATISTICS = ("volume", "aspect_ratio", "nearest_neighbor_distance")


def _aspect(props: dict) -> np.ndarray:
    """One aspect ratio per grain: shortest over longest principal axis (in (0, 1])."""
    ratio = np.asarray(props["aspect_ratio"], dtype=np.float64)
    return ratio.min(axis=1) if ratio.ndim == 2 else ratio


def grain_statistics(labels: np.ndarray, *, periodic: bool = False) -> dict[str, np.ndarray]:
    """Per-grain volume, aspect ratio and nearest-centroid distance of a labelled volume."""
    from jaxmicro.grains import grain_properties

    props = grain_properties(labels, periodic=periodic)
    return {
        "volume": np.asarray(props["volume"], np.float64),
        "aspect_ratio": _aspect(props),
        "nearest_neighbor_distance": np.asarray(props["nearest_neighbor_distance"], np.float64),
    }


def compare_statistics(
    generated: dict[str, np.ndarray], reference: dict[str, np.ndarray], *, bins: int = 30
) -> dict[str, dict[str, float]]:
    """KL divergence (reference || generated) and KS distance of each grain statistic."""
    from jaxmicro.metrics import kl_divergence, ks_distance

    table = {}
    for name in STATISTICS:
        a = reference[name][np.isfinite(reference[name])]
        b = generated[name][np.isfinite(generated[name])]
        if a.size == 0 or b.size == 0:  # e.g. one grain: no nearest-neighbour distance
            table[name] = dict.fromkeys(("kl", "ks", "mean_reference", "mean_generated"), np.nan)
            continue
        table[name] = {
            "kl": float(kl_divergence(a, b, bins=bins)),
            "ks": float(ks_distance(a, b)),
            "mean_reference": float(a.mean()),
            "mean_generated": float(b.mean()),
        }
    return table


def statistics_markdown(
    generated: dict[str, np.ndarray], comparison: dict[str, dict[str, float]] | None
) -> str:
    """A markdown table of the grain statistics (and their comparison, when given)."""
    lines = [f"grains: {len(generated['volume'])}", ""]
    if comparison is None:
        lines += ["| statistic | mean | median |", "|---|---|---|"]
        for name in STATISTICS:
            v = generated[name][np.isfinite(generated[name])]
            mean, median = (v.mean(), np.median(v)) if v.size else (np.nan, np.nan)
            lines.append(f"| {name} | {mean:.4g} | {median:.4g} |")
    else:
        lines += [
            "| statistic | KL(ref || gen) | KS | mean (reference) | mean (generated) |",
            "|---|---|---|---|---|",
        ]
        for name, row in comparison.items():
            lines.append(
                f"| {name} | {row['kl']:.4f} | {row['ks']:.4f} | {row['mean_reference']:.4g} "
                f"| {row['mean_generated']:.4g} |"
            )
    return "\n".join(lines) + "\n"


def save_slices(volume: np.ndarray, labels: np.ndarray, path: str | Path) -> None:
    """PNG of the three central orthogonal slices of the field and of its grain labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    colours = rng.uniform(0.15, 1.0, (int(labels.max()) + 1, 3))
    colours[0] = 0.0
    fig, axes = plt.subplots(2, 3, figsize=(9, 6))
    for axis in range(3):
        index = volume.shape[axis] // 2
        axes[0, axis].imshow(np.take(volume, index, axis=axis), cmap="viridis")
        axes[1, axis].imshow(colours[np.take(labels, index, axis=axis)])
        axes[0, axis].set_title(f"field, slice {index} normal to axis {axis}", fontsize=8)
        axes[1, axis].set_title(f"grains, slice {index} normal to axis {axis}", fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
