"""Evaluation of a generated set of microstructures against a reference set, as data.

:func:`load_samples` reads the arrays of ``.npy``/``.npz`` files or folders; :func:`evaluate`
turns two sets of arrays into one dict of plain numbers and curves (keys on the function);
``write_report`` (``_report.py``) writes that dict as ``report.md`` and PNGs. Each array is one
sample or a batch (leading axis) of samples of one kind:

- ``ids``: integer grain labels ``(*spatial)`` (used as given; label 0 is unassigned);
- ``phase``: integer phase labels ``(*spatial)`` with few values (no grains);
- ``binary``: float two-phase fields in about [-1, 1], ``(*spatial)`` or ``(*spatial, 1)`` (what
  ``jaxmicro sample`` writes for a two-phase model): thresholded at 0 into phases 0 (<= 0) and
  1 (> 0), then treated as ``phase``;
- ``rgb``: colours ``(*spatial, 3)``, segmented on a palette;
- ``quat``: unit quaternions ``(*spatial, 4)``, segmented at a misorientation threshold;
- ``continuous``: float grain-ID fields ``(*spatial)`` or ``(*spatial, 1)``, segmented by
  statistical region merging.

The statistics follow Lee & Yun (ddpm-ddim-mcr) §2.3: S2 (eq. 21) and the lineal path (eq. 22)
of the *phase of interest*, and the discrepancy of eq. 23 between the set-mean curves. Grain
properties follow PolyCrysDiff §4.2 (KS, normalized EMD) and GrainPaint Table 1 (KL).
"""

from __future__ import annotations

import functools
import os
import pathlib
import zipfile
from dataclasses import dataclass

import numpy as np

from .._grid import boundary_mask

KINDS = ("auto", "ids", "phase", "binary", "rgb", "quat", "continuous")
PROPERTIES = (
    "volume",
    "equivalent_diameter",
    "aspect_ratio",
    "sphericity",
    "nearest_neighbour_distance",
    "neighbour_count",
)
_PHASE_KINDS = ("phase", "binary")
# sampler outputs may overshoot [-1, 1] a little
_BINARY_BOUND = 1.1
_GRAIN_KINDS = ("ids", "quat", "continuous")


def load_samples(path: str | os.PathLike, *, name: str = "path") -> list[np.ndarray]:
    """The arrays of a ``.npy``/``.npz`` file or of a folder of them (sorted by file name).

    A ``.npz`` holding an array ``x`` (a ``jaxmicro data make`` shard: ``x`` plus label columns)
    gives only ``x``; any other ``.npz`` gives all its arrays. Nothing is unpickled
    (``allow_pickle=False``).

    Args:
        path: a file or a folder.
        name: the argument's name in error messages (e.g. ``'--generated'``).

    Returns:
        A list of arrays, each one sample or a batch (see :func:`evaluate`).

    Raises:
        ValueError: the path does not exist; a folder holds no ``.npy``/``.npz``; a file is
            empty, is not a NumPy file, or holds object arrays. The message names ``name`` and
            the path.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise ValueError(f"{name}: {path} does not exist")
    files = sorted(path.glob("*.np[yz]")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{name}: no .npy or .npz files in the folder {path}")
    arrays = []
    for f in files:
        if f.stat().st_size == 0:
            raise ValueError(f"{name}: {f} is empty (0 bytes)")
        try:
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded:
                    keys = ["x"] if "x" in loaded.files else loaded.files
                    arrays.extend(loaded[k] for k in keys)
            else:
                arrays.append(loaded)
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{name}: {f} is not a NumPy .npy/.npz file of plain arrays ({err})"
            ) from None
    return arrays


def _as_arrays(x, name: str) -> list[np.ndarray]:
    arrays = [np.asarray(a) for a in x] if isinstance(x, list | tuple) else [np.asarray(x)]
    if not arrays:
        raise ValueError(f"{name}: no arrays given")
    for a in arrays:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            if a.dtype != bool:
                raise ValueError(f"{name}: expected numeric arrays, got dtype {a.dtype}")
        if a.size == 0 or a.ndim < 2:
            raise ValueError(f"{name}: expected fields of 2 or 3 spatial axes, got shape {a.shape}")
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            raise ValueError(f"{name}: contains {bad} non-finite value(s) (NaN or inf)")
    return arrays


def _detect_kind(a: np.ndarray, dim: int | None) -> str:
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        return "phase" if np.unique(a).size <= 8 else "ids"
    channel = a.ndim > (dim if dim is not None else 2)
    if channel and a.shape[-1] in (3, 4):
        return "rgb" if a.shape[-1] == 3 else "quat"
    in_range = np.abs(a).max() <= _BINARY_BOUND
    if in_range and ((channel and a.shape[-1] == 1) or np.unique(a).size <= 2):
        return "binary"
    return "continuous"


def _has_channel(a: np.ndarray, kind: str) -> bool:
    if kind in ("rgb", "quat"):
        return True
    return a.ndim >= 3 and a.shape[-1] == 1


def _infer_dim(sets) -> int:
    """2 or 3 from the shapes: see :func:`evaluate` (``dim``)."""
    strong, weak, shapes = set(), set(), []
    for name, kind, arrays in sets:
        for a in arrays:
            m = a.ndim - _has_channel(a, kind)
            shapes.append(a.shape)
            if m == 2:
                strong.add(2)
            elif m == 4:
                strong.add(3)
            elif m == 3 and _has_channel(a, kind):
                weak.add(2)
            elif m != 3:
                raise ValueError(f"{name}: a {kind} array of shape {a.shape} is no 2-D/3-D field")
    if len(strong) > 1:
        raise ValueError(f"dim: the arrays mix 2-D and 3-D samples (shapes {sorted(set(shapes))})")
    if strong or weak:
        return (strong or weak).pop()
    raise ValueError(
        f"dim: arrays of shape {shapes[0]} are either a batch of 2-D images or one 3-D volume; "
        "pass dim=2 or dim=3 (--dim)"
    )


def _split(arrays, kind: str, dim: int, name: str) -> list[np.ndarray]:
    """Samples ``(*spatial[, C])``; a trailing size-1 channel of one-channel kinds is dropped."""
    samples = []
    for a in arrays:
        if kind not in ("rgb", "quat") and a.ndim > dim and a.shape[-1] == 1:
            a = a[..., 0]
        sample_ndim = dim + (kind in ("rgb", "quat"))
        if a.ndim == sample_ndim:
            samples.append(a)
        elif a.ndim == sample_ndim + 1:
            samples.extend(list(a))
        else:
            raise ValueError(
                f"{name}: a {kind} sample has {sample_ndim} axes (dim={dim}), got shape {a.shape}"
            )
        if kind in ("rgb", "quat") and a.shape[-1] != (3 if kind == "rgb" else 4):
            raise ValueError(f"{name}: {kind} fields need a trailing axis of 3 or 4, got {a.shape}")
    if kind == "binary":
        samples = [(s > 0).astype(np.int8) for s in samples]
    return samples


def _family(kind: str) -> str:
    return "phase" if kind in _PHASE_KINDS else "grains" if kind in _GRAIN_KINDS else kind


@dataclass(frozen=True)
class _Options:
    dim: int
    periodic: bool
    symmetry: str
    threshold_deg: float
    min_size: int
    palette: np.ndarray | None
    n_phases: int


def _labels(sample, kind: str, o: _Options):
    from .. import grains

    if kind == "ids":
        return sample.astype(np.int64)
    if kind == "rgb":
        return grains.segment_palette(sample, o.palette, min_size=o.min_size, periodic=o.periodic)
    if kind == "quat":
        return grains.segment_orientations(
            sample,
            o.symmetry,
            threshold_deg=o.threshold_deg,
            periodic=o.periodic,
            min_size=o.min_size,
        )
    return grains.segment_continuous(sample, min_size=o.min_size, periodic=o.periodic)


def _indicators(sample, labels, kind: str, o: _Options) -> np.ndarray:
    """Channels for S2: phases, palette colours, or the grain-boundary indicator."""
    from .. import grains
    from ._statistics import phase_indicators

    if kind in _PHASE_KINDS:
        return phase_indicators(sample, o.n_phases)
    if kind == "rgb":
        return phase_indicators(
            np.asarray(grains.quantize_palette(sample, o.palette)), len(o.palette)
        )
    return boundary_mask(labels, o.periodic)[..., None].astype(np.float32)


def _image(sample, labels, kind: str, o: _Options, value_range) -> np.ndarray:
    """Field as an image in [0, 1], ``(*spatial, 1 or 3)``."""
    from .. import orientations

    if kind == "rgb":
        lo, hi = float(o.palette.min()), float(o.palette.max())
        return np.clip((sample - lo) / max(hi - lo, 1e-12), 0, 1)
    if kind == "quat":
        return np.asarray(orientations.ipf_color(sample, o.symmetry))
    if kind in _PHASE_KINDS:
        return (sample / max(o.n_phases - 1, 1))[..., None].astype(np.float32)
    if kind == "continuous":
        lo, hi = value_range
        return np.clip((sample - lo) / max(hi - lo, 1e-12), 0, 1)[..., None]
    return boundary_mask(labels, o.periodic)[..., None].astype(np.float32)


def _slices(image, dim: int) -> list[np.ndarray]:
    """The middle slice along each axis (3-D) or the image itself (2-D)."""
    if dim == 2:
        return [image]
    return [np.take(image, image.shape[a] // 2, axis=a) for a in range(3)]


@functools.cache
def _statistics_fn(dim: int):
    """Jitted: radial S2, volume fractions, lineal path and chord counts (axis 0) of indicators."""
    import jax

    from .. import descriptors
    from ._statistics import radial_average

    @jax.jit
    def stats(ind):
        auto = descriptors.two_point(ind, periodic=True, pairs="auto")
        return (
            radial_average(auto, ndim=dim),
            ind.reshape(-1, ind.shape[-1]).mean(axis=0),
            descriptors.lineal_path(ind, axis=0, max_length=ind.shape[0] // 2, periodic=True),
            descriptors.chord_length_distribution(ind, axis=0, normalization="count"),
        )

    return stats


def _crop_stack(curves) -> np.ndarray:
    """Arrays ``(..., L_i)`` cropped to the shortest ``L`` and stacked."""
    n = min(c.shape[-1] for c in curves)
    return np.stack([c[..., :n] for c in curves])


def _summaries(samples, kind: str, o: _Options, *, with_slices: bool) -> dict:
    from .. import grains

    value_range = None
    if kind == "continuous":
        value_range = (min(float(s.min()) for s in samples), max(float(s.max()) for s in samples))
    out = {"props": {p: [] for p in PROPERTIES}, "s2": [], "vf": [], "lineal": [], "chords": []}
    out["slices"] = []
    for sample in samples:
        labels = None if kind in _PHASE_KINDS else _labels(sample, kind, o)
        if labels is not None:
            props = grains.grain_properties(labels, periodic=o.periodic)
            for p in PROPERTIES:
                out["props"][p].append(props[p][np.isfinite(props[p])])
        s2, vf, lineal, chords = _statistics_fn(o.dim)(_indicators(sample, labels, kind, o))
        for key, value in (("s2", s2), ("vf", vf), ("lineal", lineal), ("chords", chords)):
            out[key].append(np.asarray(value, np.float64))
        if with_slices or len(out["slices"]) < 3:
            out["slices"].extend(_slices(_image(sample, labels, kind, o, value_range), o.dim))
    out["props"] = {p: np.concatenate(v) if v else np.zeros(0) for p, v in out["props"].items()}
    for key in ("s2", "lineal", "chords"):
        out[key] = _crop_stack(out[key])
    out["vf"] = np.stack(out["vf"])
    return out


def _num(x) -> float | None:
    """A finite float, or None (never NaN in the results)."""
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def _eq23(ref_curves: np.ndarray, gen_curves: np.ndarray) -> np.ndarray:
    """Eq. 23 between set means of ``(n, ..., L)`` curves over their common length: ``(...)``."""
    from ._statistics import correlation_discrepancy

    n = min(ref_curves.shape[-1], gen_curves.shape[-1])
    ref, gen = ref_curves.mean(0)[..., :n], gen_curves.mean(0)[..., :n]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(correlation_discrepancy(ref, gen), np.float64)


def _weighted(curves: np.ndarray, vf: np.ndarray) -> np.ndarray:
    """Volume-fraction-weighted average over channels (PolyCrysDiff §4.2), ``(n, L)``."""
    w = vf / np.maximum(vf.sum(axis=1, keepdims=True), 1e-12)
    return np.einsum("nc,ncl->nl", w, curves)


def _set_metrics(feat_ref, feat_gen) -> dict:
    """Fréchet distance and precision/recall (None where the sets are too small)."""
    from ._samples import frechet_distance, precision_recall

    n = min(len(feat_ref), len(feat_gen))
    fd = _num(frechet_distance(feat_ref, feat_gen)) if n >= 2 else None
    prec = rec = None
    if n >= 3:
        prec, rec = (_num(v) for v in precision_recall(feat_ref, feat_gen, k=min(3, n - 1)))
    return {"frechet": fd, "precision": prec, "recall": rec}


def _crop_images(slices) -> np.ndarray:
    """Slices of possibly different shapes, cropped to the smallest, ``(n, H, W, C)``."""
    h = min(s.shape[0] for s in slices)
    w = min(s.shape[1] for s in slices)
    return np.stack([s[:h, :w] for s in slices]).astype(np.float32)


def _vgg_metrics(params, ref_slices, gen_slices) -> dict:
    from ._distributions import emd_normalized, ks_distance
    from ._vgg import vgg19_embedding, vgg_slice_scores

    s_ref, s_gen = _crop_images(ref_slices), _crop_images(gen_slices)
    h, w = min(s_ref.shape[1], s_gen.shape[1]), min(s_ref.shape[2], s_gen.shape[2])
    s_ref, s_gen = s_ref[:, :h, :w], s_gen[:, :h, :w]
    out = _set_metrics(
        np.asarray(vgg19_embedding(params, s_ref)), np.asarray(vgg19_embedding(params, s_gen))
    )
    score_ref = vgg_slice_scores(params, s_ref, s_ref)
    score_gen = vgg_slice_scores(params, s_gen, s_ref)
    out["score_ks"] = _num(ks_distance(score_ref, score_gen))
    out["score_emd"] = _num(emd_normalized(score_ref, score_gen))
    return out


def _resolve_phase(phase, family: str, n_channels: int):
    if phase is None:
        return {"phase": 1, "rgb": "weighted"}.get(family, 0)
    if phase == "weighted":
        return phase
    if isinstance(phase, bool) or not isinstance(phase, int | np.integer):
        raise ValueError(f"phase: expected an integer channel or 'weighted', got {phase!r}")
    if not 0 <= phase < n_channels:
        raise ValueError(f"phase: expected 0 <= phase < {n_channels} (channels), got {phase}")
    return int(phase)


def _phase_description(phase, family: str, binary: bool) -> str:
    if phase == "weighted":
        return "all channels, weighted by volume fraction (PolyCrysDiff §4.2)"
    if family == "phase":
        suffix = " (values > 0 of the [-1, 1] fields)" if binary and phase == 1 else ""
        return f"phase {phase}{suffix}"
    if family == "rgb":
        return f"palette colour {phase}"
    return "grain-boundary voxels"


def _spatial(r: dict, g: dict, phase, description: str) -> dict:
    """Eq. 23 per channel, weighted, and for the phase of interest; chord EMD; curves."""
    from ._distributions import histogram_emd

    s2_per = _eq23(r["s2"], g["s2"])
    lp_per = _eq23(r["lineal"], g["lineal"])
    s2_w = _eq23(_weighted(r["s2"], r["vf"]), _weighted(g["s2"], g["vf"]))
    lp_w = _eq23(_weighted(r["lineal"], r["vf"]), _weighted(g["lineal"], g["vf"]))
    chord_ref, chord_gen = r["chords"].sum(0)[:, 1:], g["chords"].sum(0)[:, 1:]
    n_len = min(chord_ref.shape[-1], chord_gen.shape[-1])
    chord_ref, chord_gen = chord_ref[:, :n_len], chord_gen[:, :n_len]
    present = (chord_ref.sum(1) > 0) & (chord_gen.sum(1) > 0)
    if phase == "weighted":
        if r["vf"].mean(0).max() <= 0:
            raise ValueError("reference: every indicator channel is empty")
        s2_eps, lp_eps = s2_w, lp_w
        s2_ref, s2_gen = _weighted(r["s2"], r["vf"]), _weighted(g["s2"], g["vf"])
        lp_ref, lp_gen = _weighted(r["lineal"], r["vf"]), _weighted(g["lineal"], g["vf"])
        vf_ref = vf_gen = None
        chord = None
        if present.any():
            emd = np.asarray(histogram_emd(chord_ref[present], chord_gen[present]))
            weights = r["vf"].mean(0)[present]
            chord = np.sum(weights * emd) / max(weights.sum(), 1e-12)
    else:
        vf_ref, vf_gen = r["vf"][:, phase].mean(), g["vf"][:, phase].mean()
        if vf_ref <= 0:
            raise ValueError(
                f"phase: {description} is absent from the reference "
                "(volume fraction 0), so eq. 23 is undefined; choose another phase"
            )
        s2_eps, lp_eps = s2_per[phase], lp_per[phase]
        s2_ref, s2_gen = r["s2"][:, phase], g["s2"][:, phase]
        lp_ref, lp_gen = r["lineal"][:, phase], g["lineal"][:, phase]
        chord = None
        if present[phase]:
            chord = histogram_emd(chord_ref[phase], chord_gen[phase])

    def per_channel(eps):
        return [_num(e) for e in np.atleast_1d(eps)]

    return {
        "volume_fraction_reference": _num(vf_ref),
        "volume_fraction_generated": _num(vf_gen),
        "s2_discrepancy": _num(s2_eps),
        "lineal_discrepancy": _num(lp_eps),
        "s2_discrepancy_weighted": _num(s2_w),
        "lineal_discrepancy_weighted": _num(lp_w),
        "s2_discrepancy_per_channel": per_channel(s2_per),
        "lineal_discrepancy_per_channel": per_channel(lp_per),
        "chord_emd": _num(chord),
        "s2_reference": s2_ref,
        "s2_generated": s2_gen,
        "lineal_reference": lp_ref,
        "lineal_generated": lp_gen,
    }


def _properties(r: dict, g: dict, bins: int) -> dict:
    """KS, normalized EMD and KL per grain property (PolyCrysDiff eqs. 2-4, GrainPaint)."""
    from ._distributions import emd_normalized, kl_divergence, ks_distance

    properties = {}
    for p in PROPERTIES:
        a, b = r["props"][p], g["props"][p]
        row = {"n_reference": int(a.size), "n_generated": int(b.size)}
        row.update(values_reference=a, values_generated=b)
        both = a.size > 0 and b.size > 0
        row["mean_reference"] = _num(a.mean()) if a.size else None
        row["mean_generated"] = _num(b.mean()) if b.size else None
        row["ks"] = _num(ks_distance(a, b)) if both else None
        row["emd"] = _num(emd_normalized(a, b)) if both else None
        row["kl"] = _num(kl_divergence(a, b, bins=int(bins))) if both else None
        properties[p] = row
    return properties


def evaluate(
    generated,
    reference,
    *,
    kind: str = "auto",
    dim: int | None = None,
    periodic: bool = False,
    phase: int | str | None = None,
    palette=None,
    symmetry: str = "cubic",
    threshold_deg: float = 5.0,
    min_size: int = 1,
    bins: int = 30,
    vgg_params: dict | None = None,
) -> dict:
    """Compares a generated set of microstructures with a reference set.

    Args:
        generated: an array (one sample or a batch, leading axis) or a list of such arrays.
        reference: the same for the reference (e.g. training) set.
        kind: one of ``KINDS`` for both sets (module docstring). ``'auto'`` detects each set
            from its first array: integers with <= 8 values -> ``phase``, other integers ->
            ``ids``; floats with a trailing channel of 3 -> ``rgb``, of 4 -> ``quat``; floats in
            [-1.1, 1.1] with a trailing channel of 1 or at most 2 distinct values -> ``binary``;
            other floats -> ``continuous``. The two sets must then agree: both ``phase``/
            ``binary``, both among ``ids``/``quat``/``continuous``, or both ``rgb``.
        dim: spatial axes (2 or 3). None infers it: arrays of 2 spatial axes (after a
            channel) are 2-D samples, of 4 are batches of 3-D samples; arrays of 3 spatial
            axes with a channel axis are batches of 2-D samples (``jaxmicro sample`` and
            ``jaxmicro data`` write batch-leading arrays); 3 axes without a channel are
            ambiguous (a ``ValueError`` asks for ``dim``).
        periodic: fields are periodic (grain segmentation and boundaries; S2 and the lineal
            path are always computed periodically).
        phase: the indicator channel of interest for eq. 23: a phase label for phase kinds
            (default 1: the white phase of {0, 1} images, the positive phase of [-1, 1]
            fields); a palette index for ``rgb`` (default ``'weighted'``: colours are
            interchangeable grain labels); 0 for grain kinds (grain-boundary voxels, the only
            channel). ``'weighted'`` averages all channels' curves weighted by volume fraction
            before eq. 23 (PolyCrysDiff §4.2).
        palette: ``rgb`` only: ``(P, 3)`` colours (default: the reference's distinct colours).
        symmetry, threshold_deg: ``quat`` only: crystal symmetry and grain threshold.
        min_size: smallest grain kept by segmentation (voxels).
        bins: histogram bins of the KL divergence.
        vgg_params: VGG-19 parameters (``load_vgg19``) for slice features; None skips them.

    Returns:
        A dict (floats are finite or None, never NaN):

        - ``kind_reference``, ``kind_generated`` (str), ``dim``, ``periodic``, ``n_reference``,
          ``n_generated``; ``channels``: what the indicator channels are (``'phases'``,
          ``'palette colours'``, ``'grain-boundary voxels'``);
        - ``phase`` (int or ``'weighted'``) and ``phase_description`` (str);
        - ``volume_fraction_reference``, ``volume_fraction_generated``: mean volume fraction
          of the phase of interest (None when weighted);
        - ``s2_discrepancy``, ``lineal_discrepancy``: eq. 23 in percent between the set-mean
          radial S2 curves / lineal-path curves (along axis 0) of the phase of interest;
        - ``s2_discrepancy_weighted``, ``lineal_discrepancy_weighted``: the same on curves
          averaged over channels weighted by volume fraction;
        - ``s2_discrepancy_per_channel``, ``lineal_discrepancy_per_channel``: lists, one value
          per channel (None for a channel absent from the reference);
        - ``chord_emd``: ``histogram_emd`` of the chord-length distributions (axis 0) of the
          phase of interest (volume-fraction weighted over channels when weighted), or None;
        - ``s2_reference``, ``s2_generated`` ``(n, L)``; ``lineal_reference``,
          ``lineal_generated`` ``(n, L')``: per-sample curves of the phase of interest;
        - ``properties``: ``{}`` for phase kinds, else per grain property (``PROPERTIES``) a
          dict with ``n_reference``, ``n_generated``, ``mean_reference``, ``mean_generated``,
          ``ks``, ``emd``, ``kl`` and the pooled values ``values_reference``,
          ``values_generated``;
        - ``odf_mse``: MSE of mean SHSH coefficients when both sets are ``quat``, else None;
        - ``pca_s2``: ``{n_components, frechet, precision, recall}`` on PCA (fit on the
          reference) of the per-sample S2 curves, or None (fewer than 2 reference samples);
        - ``vgg``: ``{frechet, precision, recall, score_ks, score_emd}`` on VGG-19 slice
          embeddings and slice scores, or None without ``vgg_params``;
        - ``data_copying``: ``{mse (n_gen,), nearest (n_gen,), min, median}`` (Lee & Yun eq.
          24 on the analysed fields: phase labels for two-phase data) when all samples share
          one shape, else None;
        - ``example_slices_reference``, ``example_slices_generated``: up to 3 images
          ``(H, W, 1 or 3)`` in [0, 1] for figures.

    Raises:
        ValueError: inputs that are not numeric, finite fields of a detectable, compatible
            kind and dimension; a ``phase`` out of range or absent from the reference.

    References:
        Lee & Yun (ddpm-ddim-mcr) §2.3, eqs. 21-24 (per phase of interest); PolyCrysDiff §4.2,
        eqs. 2-4; GrainPaint Table 1.
    """
    from ._samples import nearest_training_mse, principal_components
    from ._statistics import odf_mse

    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if dim not in (None, 2, 3):
        raise ValueError(f"dim: expected 2, 3 or None, got {dim!r}")
    if int(bins) < 1:
        raise ValueError(f"bins: expected a positive number of bins, got {bins}")
    ref_arrays, gen_arrays = _as_arrays(reference, "reference"), _as_arrays(generated, "generated")
    ref_kind = kind if kind != "auto" else _detect_kind(ref_arrays[0], dim)
    gen_kind = kind if kind != "auto" else _detect_kind(gen_arrays[0], dim)
    family = _family(ref_kind)
    if _family(gen_kind) != family:
        raise ValueError(
            f"generated: holds {gen_kind} fields but reference holds {ref_kind} fields; "
            "pass kind= (--kind) if the detection is wrong"
        )
    if dim is None:
        dim = _infer_dim([("reference", ref_kind, ref_arrays), ("generated", gen_kind, gen_arrays)])
    ref = _split(ref_arrays, ref_kind, dim, "reference")
    gen = _split(gen_arrays, gen_kind, dim, "generated")

    if family == "rgb" and palette is None:
        colours = np.concatenate([np.reshape(s, (-1, 3)) for s in ref])
        palette = np.unique(np.round(colours, 3), axis=0)
        if len(palette) > 64:
            raise ValueError(
                f"palette: the reference has {len(palette)} distinct colours; pass the palette"
            )
    elif palette is not None:
        palette = np.asarray(palette, np.float64)
        if palette.ndim != 2 or palette.shape[1] != 3:
            raise ValueError(f"palette: expected (P, 3) colours, got shape {palette.shape}")
    n_phases = 0
    if family == "phase":
        for name, samples in (("reference", ref), ("generated", gen)):
            if min(int(s.min()) for s in samples) < 0:
                raise ValueError(f"{name}: phase labels must be >= 0")
        n_phases = max(int(s.max()) for s in ref + gen) + 1
    n_channels = {"phase": n_phases, "rgb": len(palette) if palette is not None else 0}
    phase = _resolve_phase(phase, family, n_channels.get(family, 1))
    binary = "binary" in (ref_kind, gen_kind)
    description = _phase_description(phase, family, binary)
    if family == "phase" and phase != "weighted" and not any((s == phase).any() for s in ref):
        # checked again (for every kind) on the volume fractions; this one saves the work
        raise ValueError(f"phase: {description} is absent from the reference; choose another")
    opts = _Options(dim, bool(periodic), symmetry, threshold_deg, int(min_size), palette, n_phases)
    with_slices = vgg_params is not None
    r = _summaries(ref, ref_kind, opts, with_slices=with_slices)
    g = _summaries(gen, gen_kind, opts, with_slices=with_slices)

    spatial = _spatial(r, g, phase, description)
    properties = _properties(r, g, int(bins)) if family != "phase" else {}

    odf = None
    if ref_kind == gen_kind == "quat":
        odf = _num(odf_mse(np.stack(ref), np.stack(gen), symmetry))

    s2_ref, s2_gen = spatial["s2_reference"], spatial["s2_generated"]
    n_len = min(s2_ref.shape[1], s2_gen.shape[1])
    f_ref, f_gen = s2_ref[:, :n_len], s2_gen[:, :n_len]
    pca = None
    if len(ref) >= 2:
        n_comp = max(1, min(8, len(ref) - 1, n_len))
        mean, basis = principal_components(f_ref, n_components=n_comp)
        mean, basis = np.asarray(mean), np.asarray(basis)
        pca = {"n_components": n_comp}
        pca.update(_set_metrics((f_ref - mean) @ basis.T, (f_gen - mean) @ basis.T))

    vgg = _vgg_metrics(vgg_params, r["slices"], g["slices"]) if with_slices else None

    copying = None
    if len({np.shape(s) for s in ref + gen}) == 1:
        mse, idx = nearest_training_mse(
            np.stack(gen).astype(np.float32), np.stack(ref).astype(np.float32)
        )
        mse, idx = np.asarray(mse, np.float64), np.asarray(idx)
        copying = {
            "mse": mse,
            "nearest": idx,
            "min": _num(mse.min()),
            "median": _num(np.median(mse)),
        }

    return {
        "kind_reference": ref_kind,
        "kind_generated": gen_kind,
        "dim": dim,
        "periodic": bool(periodic),
        "n_reference": len(ref),
        "n_generated": len(gen),
        "channels": {"phase": "phases", "rgb": "palette colours"}.get(
            family, "grain-boundary voxels"
        ),
        "phase": phase,
        "phase_description": description,
        **spatial,
        "properties": properties,
        "odf_mse": odf,
        "pca_s2": pca,
        "vgg": vgg,
        "data_copying": copying,
        "bins": int(bins),
        "example_slices_reference": r["slices"][:3],
        "example_slices_generated": g["slices"][:3],
    }
