"""Lee & Yun evaluation (Tables 2-4, Fig. 4, eq. 24) as functions of image arrays that return
plain data, and the writers of the experiment's PNGs.

Images are binary ``(n, H, W)`` int8 with 1 on the phase of interest; every statistic is periodic
(the materials wrap around). ``row`` is one Tables 2-4 row: eq. 23 of the phase of interest for S2
and the lineal path, Fréchet distance and precision / recall on VGG-19 embeddings (not
Inception); ``copying`` the data-copying check of eq. 24; ``component_sizes`` Fig. 4's grain sizes
(and the fibres' sizes).

References:
    Lee & Yun, eq. 23 (discrepancy of a curve), eq. 24 (data copying), Fig. 4 (grain sizes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxmicro._modules import load_file_module

materials = load_file_module(Path(__file__).with_name("materials.py"))


def binary(samples: np.ndarray) -> np.ndarray:
    """Samples ``(n, H, W[, 1])`` in [-1, 1] -> int8 phases (1 where > 0)."""
    x = np.asarray(samples)
    x = x[..., 0] if x.ndim == 4 else x
    return (x > 0).astype(np.int8)


def s2_at_volume_fraction(s2: np.ndarray, volume_fraction: float) -> np.ndarray:
    """The radial S2 curve ``s2`` (``s2[0]`` = its volume fraction phi) carried to another
    volume fraction with its scaled autocovariance ``(S2 - phi^2) / (phi - phi^2)`` kept: the
    curve of a set that differs from ``s2``'s only in volume fraction. Eq. 23 between it and
    ``s2`` is the part of an S2 row that the volume-fraction error alone explains."""
    s2 = np.asarray(s2, np.float64)
    phi, v = s2[0], float(volume_fraction)
    return v**2 + (v - v**2) * (s2 - phi**2) / (phi - phi**2)


def seam_mismatch(images: np.ndarray) -> dict:
    """Fraction of 4-neighbour pixel pairs of binary ``images (n, H, W)`` whose phases differ,
    inside the images and across their periodic seams (last row or column against the first).
    Periodic images give the same fraction for both; images whose opposite edges are independent
    give about ``2 phi (1 - phi)`` across the seams."""
    x = np.asarray(images)
    inside = [(x[:, 1:] != x[:, :-1]).ravel(), (x[:, :, 1:] != x[:, :, :-1]).ravel()]
    seam = [(x[:, 0] != x[:, -1]).ravel(), (x[:, :, 0] != x[:, :, -1]).ravel()]
    inside, seam = np.concatenate(inside), np.concatenate(seam)
    return {"interior": float(inside.mean()), "seam": float(seam.mean())}


def row(generated: np.ndarray, reference: np.ndarray, vgg_params) -> dict:
    """Tables 2-4 numbers of one set against the reference: eq. 23 of the phase of interest
    for S2 and the lineal path (percent), the S2 part due to the volume fraction alone
    (``s2_volume_fraction``: eq. 23 of ``s2_at_volume_fraction``), volume fractions, and
    Fréchet distance / precision / recall on VGG-19 embeddings (None without weights)."""
    from jaxmicro import metrics

    r = metrics.evaluate(
        generated, reference, kind="phase", dim=2, periodic=True, phase=1, vgg_params=vgg_params
    )
    vgg = r["vgg"] or {}
    curves = {
        k: np.asarray(r[k]).mean(0)
        for k in ("s2_reference", "s2_generated", "lineal_reference", "lineal_generated")
    }
    s2_ref = curves["s2_reference"]
    vf_only = s2_at_volume_fraction(s2_ref, curves["s2_generated"][0])
    return {
        "s2": r["s2_discrepancy"],
        "s2_volume_fraction": float(metrics.correlation_discrepancy(s2_ref, vf_only)),
        "lineal": r["lineal_discrepancy"],
        "s2_weighted": r["s2_discrepancy_weighted"],
        "volume_fraction": r["volume_fraction_generated"],
        "volume_fraction_reference": r["volume_fraction_reference"],
        "frechet_vgg19": vgg.get("frechet"),
        "precision_vgg19": vgg.get("precision"),
        "recall_vgg19": vgg.get("recall"),
        "phase": r["phase_description"],
        "seam_mismatch": seam_mismatch(binary(generated)),
        "curves": {k: c.tolist() for k, c in curves.items()},
    }


def copying(generated: np.ndarray, train: np.ndarray, held_out: np.ndarray) -> dict:
    """Data copying (eq. 24): nearest-training pixel MSE of each sample (phases as -1/+1)
    against the same for held-out images of the generator (the baseline), and the
    Mann-Whitney ``z`` of the two sets of distances (``jaxmicro.metrics.copying_z``: about
    standard normal without copying, far below 0 with it)."""
    from jaxmicro.metrics import copying_z, nearest_training_mse

    def signed(x):
        return (2.0 * x - 1.0).astype(np.float32)

    mse, idx = (np.asarray(a) for a in nearest_training_mse(signed(generated), signed(train)))
    base, _ = nearest_training_mse(signed(held_out), signed(train))
    base = np.asarray(base, np.float64)
    return {
        "mse": mse.astype(np.float64),
        "nearest": idx,
        "min": float(mse.min()),
        "median": float(np.median(mse)),
        "baseline_min": float(base.min()),
        "baseline_median": float(np.median(base)),
        "below_baseline_min": int(np.sum(mse < base.min())),
        "z": float(copying_z(mse, base)),
        "n": int(mse.size),
    }


def component_sizes(
    generated: np.ndarray, reference: np.ndarray, floor_set: np.ndarray, phase: int
) -> dict:
    """Equivalent diameters (pixels) of the 4-connected regions of ``phase`` (joined across the
    periodic edges) in the generated and reference sets, their moments and KS distance;
    ``ks_floor`` is the KS distance of ``floor_set`` (other images of the generator) to the
    reference. Phase 0 of the alloy: Fig. 4's grain sizes."""
    from jaxmicro.metrics import ks_distance

    def diameters(images):
        return np.concatenate(
            [materials.grain_diameters(x if phase == 0 else 1 - x) for x in images]
        )

    g, r, f = diameters(generated), diameters(reference), diameters(floor_set)
    return {
        "generated": g,
        "reference": r,
        "mean_generated": float(g.mean()) if g.size else None,
        "std_generated": float(g.std()) if g.size else None,
        "mean_reference": float(r.mean()) if r.size else None,
        "std_reference": float(r.std()) if r.size else None,
        "ks": float(ks_distance(g, r)) if g.size and r.size else None,
        "ks_floor": float(ks_distance(f, r)) if f.size and r.size else None,
    }


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pairs(path: Path, generated, train, cp: dict, count: int = 8) -> None:
    """The ``count`` samples closest to a training image, each above its nearest neighbour."""
    plt = _plt()
    order = np.argsort(cp["mse"])[:count]
    fig, axes = plt.subplots(2, len(order), figsize=(1.6 * len(order), 3.6), squeeze=False)
    for c, i in enumerate(order):
        for r, (img, title) in enumerate(
            ((generated[i], f"sample {i}"), (train[cp["nearest"][i]], f"train {cp['nearest'][i]}"))
        ):
            axes[r, c].imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[r, c].set_title(title if r else f"{title}\nMSE {cp['mse'][i]:.3f}", fontsize=7)
            axes[r, c].axis("off")
    fig.suptitle(f"closest pairs (held-out baseline min MSE {cp['baseline_min']:.3f})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(path: Path, gen_row: dict, floor_row: dict) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, stat, label in ((axes[0], "s2", "S2"), (axes[1], "lineal", "lineal path (axis 0)")):
        c = gen_row["curves"]
        ax.plot(c[f"{stat}_reference"], label="training")
        ax.plot(c[f"{stat}_generated"], "--", label=f"generated ({gen_row[stat]:.2f} %)")
        ax.plot(
            floor_row["curves"][f"{stat}_generated"],
            ":",
            label=f"held-out images ({floor_row[stat]:.2f} %)",
        )
        ax.set(xlabel="r (pixels)", ylabel=label, title=gen_row["phase"])
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sizes(path: Path, gs: dict) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharex=True, sharey=True)
    hi = max(gs["reference"].max(initial=1), gs["generated"].max(initial=1))
    bins = np.linspace(0, hi, 30)
    for ax, name in zip(axes, ("reference", "generated"), strict=True):
        v = gs[name]
        ax.hist(v, bins, density=True)
        mean, std = gs[f"mean_{name}"], gs[f"std_{name}"]
        stats = "n/a" if mean is None else f"mean {mean:.2f}, std {std:.2f}"
        ax.set(title=f"{name}: {stats}", xlabel="equivalent diameter (pixels)")
    axes[0].set_ylabel("density")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sweep(path: Path, result: dict) -> None:
    plt = _plt()
    rows = result["rows"]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    panels = (
        ("discrepancy (%)", (("s2", "S2"), ("lineal", "lineal path"))),
        ("Fréchet distance (VGG-19, not Inception)", (("frechet_vgg19", "Fréchet"),)),
        (
            "precision / recall (VGG-19, not Inception)",
            (("precision_vgg19", "precision"), ("recall_vgg19", "recall")),
        ),
        ("seconds per 1,000 images", (("seconds_per_1000", "time"),)),
    )
    for ax, (ylabel, series) in zip(axes, panels, strict=True):
        for key, label in series:
            for eta in sorted({r["eta"] for r in rows if r["sampler"] == "ddim"}):
                pts = [
                    (r["steps"], r[key])
                    for r in rows
                    if r["sampler"] == "ddim" and r["eta"] == eta and r[key] is not None
                ]
                if pts:
                    ax.plot(*zip(*pts, strict=True), "o-", label=f"{label} (DDIM, eta {eta:g})")
            for r in rows:
                if r["sampler"] == "ddpm" and r[key] is not None:
                    ax.plot(r["steps"], r[key], "s", label=f"{label} (DDPM)")
            floor = result["floor"].get(key)
            if floor is not None:
                ax.axhline(floor, ls=":", color="gray")
        ax.set(xscale="log", xlabel="sampling steps", ylabel=ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, "n/a (no VGG-19 weights)", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
