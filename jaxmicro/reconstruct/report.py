"""What a reconstruction leaves behind: images, loss curves, descriptor maps and ``result.json``.

Shared by ``jaxmicro reconstruct`` and ``experiments/mcr_shsh``. Plotting is host code (NumPy and
matplotlib with the Agg backend, imported on first use); the statistics are pure JAX functions:

- :func:`field_images`: IPF colours (orientations) or phase colours (indicators) of a 2D field,
  or of the three central sections of a 3D one.
- :func:`variogram_comparison`, :func:`two_point_comparison`: the variograms (madograms) and
  auto-correlations of the reference and of the result on a lag window, and the relative error
  of the variogram per lag (Fig. 12 of the SHSH-MCR paper); a 3D result of a 2D reference is
  described by its mean over the three slice directions.
- :func:`boundary_fraction`: share of neighbouring voxel pairs whose misorientation (or phase)
  differs, a measure of grain-boundary density and of orientation noise.
- :func:`save_images`, :func:`save_loss_curve`, :func:`save_maps`, :func:`write_json`,
  :func:`timed_call`, :func:`peak_rss_mb`: figures and records;
  :func:`save_reconstruction_figures`: the four figures of a ``jaxmicro reconstruct`` run.

References:
    SHSH-MCR paper (mcr-shsh), §3.2.1 and Fig. 12 (relative variogram error), Figs. 6-9 and 18-19
    (reconstructions, loss trajectories); Nolze & Hielscher 2016 (IPF colours).
"""

from __future__ import annotations

import functools
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import descriptors as D
from jaxmicro._grid import face_neighbours
from jaxmicro.orientations import IPF_SYMMETRIES, ipf_color, misorientation_angle
from jaxmicro.reconstruct.solve import orientations_of
from jaxmicro.reconstruct.spec import Spec

_PHASE_COLOURS = np.array(
    [
        [0.12, 0.12, 0.16],
        [0.95, 0.78, 0.25],
        [0.25, 0.55, 0.85],
        [0.85, 0.33, 0.30],
        [0.40, 0.75, 0.45],
        [0.65, 0.45, 0.80],
        [0.95, 0.55, 0.15],
        [0.55, 0.80, 0.85],
    ]
)


def phase_labels(field) -> np.ndarray:
    """Integer phase of each voxel of a (*spatial, C) indicator field (phase 0: the remainder).

    Phase k >= 1 has indicator channel k - 1; phase 0 has ``1 - sum(channels)``, so one channel
    thresholds at 0.5 and several take the largest of the C + 1 fractions.
    """
    x = np.asarray(field, dtype=np.float64)
    rest = 1.0 - x.sum(axis=-1, keepdims=True)
    return np.argmax(np.concatenate([rest, x], axis=-1), axis=-1)


def _sections(field) -> list[tuple[str, np.ndarray]]:
    """A 2D field as is; a 3D field as its central sections normal to axes 0, 1, 2."""
    x = np.asarray(field)
    if x.ndim == 3:
        return [("", x)]
    return [(f"axis {a} section", np.take(x, x.shape[a] // 2, axis=a)) for a in range(3)]


def field_images(field, spec: Spec) -> list[tuple[str, np.ndarray]]:
    """RGB images in [0, 1] of a field: ``[(caption, (H, W, 3))]``, three for a 3D field.

    Orientations get IPF colours of the sample z direction (``ipf_color``) where the symmetry
    has a colour key, else their Bunge angles scaled to [0, 1]; indicator fields get one colour
    per phase (:func:`phase_labels`).
    """
    images = []
    for caption, x in _sections(field):
        if spec.representation == "orientations":
            q, euler = orientations_of(jnp.asarray(x), spec.symmetry)
            if spec.symmetry in IPF_SYMMETRIES:
                rgb = np.asarray(ipf_color(q, spec.symmetry))
            else:
                rgb = np.asarray(euler) / np.array([2 * np.pi, np.pi, 2 * np.pi])
        else:
            rgb = _PHASE_COLOURS[phase_labels(x) % len(_PHASE_COLOURS)]
        images.append((caption, np.clip(rgb, 0.0, 1.0)))
    return images


def _describe(kind: str, m, spec: Spec, max_lag: int):
    if kind == "two_point":
        return D.two_point(m, max_lag=max_lag, periodic=spec.periodic, pairs="auto")
    return D.variogram(m, max_lag=max_lag, periodic=spec.periodic)


@functools.partial(jax.jit, static_argnames=("spec", "kinds", "max_lag", "channels"))
def _described(reference, result, *, spec: Spec, kinds: tuple, max_lag: int, channels):
    """``(d(reference), d(result))`` per descriptor kind of ``kinds`` of the features of
    reference and result (a 3D result of a 2D reference: the mean over its three slice
    directions), one compiled function per setting: eager SHSH features and descriptors would
    compile dozens of small executables, and a closure jitted per call compiles every call."""
    ref, res = spec.features(reference), spec.features(result)
    if channels is not None:
        ref, res = ref[..., list(channels)], res[..., list(channels)]
    out = []
    for kind in kinds:

        def fn(m, kind=kind):
            return _describe(kind, m, spec, max_lag)

        if ref.ndim == 3 and res.ndim == 4:
            out.append((fn(ref), D.slice_descriptors(res, fn).mean(axis=0)))
        else:
            out.append((fn(ref), fn(res)))
    return tuple(out)


def _comparisons(reference, result, spec, kinds, max_lag, channels):
    channels = None if channels is None else tuple(int(c) for c in channels)
    return _described(
        jnp.asarray(reference),
        jnp.asarray(result),
        spec=spec,
        kinds=kinds,
        max_lag=int(max_lag),
        channels=channels,
    )


def _relative_error(g_ref, g_res, max_lag: int):
    rel = jnp.abs(g_res - g_ref) / g_ref
    origin = (slice(None),) + (max_lag,) * (g_ref.ndim - 1)
    return rel.at[origin].set(jnp.nan)


def two_point_comparison(
    reference, result, spec: Spec, *, max_lag: int, channels: Sequence[int] | None = None
) -> tuple[jax.Array, jax.Array]:
    """Auto-correlations of the features of reference and result, each (C', *(2L + 1,) * ndim).

    Arguments as in :func:`variogram_comparison`.

    References:
        SHSH-MCR paper (mcr-shsh), eq. 19 and Fig. 3.
    """
    return _comparisons(reference, result, spec, ("two_point",), max_lag, channels)[0]


def variogram_comparison(
    reference, result, spec: Spec, *, max_lag: int, channels: Sequence[int] | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Variograms of reference and result on a lag window, and their relative error per lag.

    Args:
        reference: (*spatial, C) reference field (indicators or unit quaternions).
        result: (*spatial', C) reconstruction variables (same representation); a 3D result of
            a 2D reference is described by the mean over its three slice directions.
        spec: gives the features (SHSH for orientations) and periodicity.
        max_lag: half-width L of the lag window (voxels).
        channels: feature channels to keep (default all).

    Returns:
        ``(g_ref, g_res, rel)``, each (C', *(2L + 1,) * ndim): madograms ``mean |m(s + r) -
        m(s)|`` and ``|g_res - g_ref| / g_ref``; the origin, where both vanish, is NaN.

    References:
        SHSH-MCR paper (mcr-shsh), eq. 20 and Fig. 12.
    """
    g_ref, g_res = _comparisons(reference, result, spec, ("variogram",), max_lag, channels)[0]
    return g_ref, g_res, _relative_error(g_ref, g_res, max_lag)


def fraction_below(rel, threshold: float = 0.05) -> float:
    """Share of the finite entries of ``rel`` that lie below ``threshold``."""
    rel = np.asarray(rel)
    finite = rel[np.isfinite(rel)]
    return float(np.mean(finite < threshold)) if finite.size else float("nan")


def boundary_fraction(field, spec: Spec, *, threshold_deg: float = 5.0) -> float:
    """Share of face-neighbour voxel pairs (periodic) across a boundary.

    Orientations: pairs whose misorientation exceeds ``threshold_deg`` under the crystal
    symmetry; indicators: pairs whose :func:`phase_labels` differ. A reference grain map has
    few such pairs; orientation noise inside grains raises the share.
    """
    x = jnp.asarray(field)
    nd = x.ndim - 1
    if spec.representation == "orientations":
        q, _ = orientations_of(x, spec.symmetry)
        pairs = [face_neighbours(q, a, True) for a in range(nd)]
        angles = [misorientation_angle(*pair, spec.symmetry) for pair in pairs]
        return float(np.mean([np.mean(np.asarray(a) > np.deg2rad(threshold_deg)) for a in angles]))
    labels = phase_labels(x)
    differs = [np.not_equal(*face_neighbours(labels, a, True)) for a in range(nd)]
    return float(np.mean([np.mean(d) for d in differs]))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_images(path, panels: Sequence[tuple[str, np.ndarray]], *, size: float = 3.0) -> None:
    """One row of RGB images with captions, e.g. reference and result side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size + 0.4))
    for ax, (caption, image) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(caption, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_loss_curve(
    path,
    histories: dict[str, np.ndarray],
    *,
    iterations_per_level: int | None = None,
    x_label: str = "iteration",
) -> None:
    """Loss against iteration (log scale): one line per label, each (T,) or (K, T) for K runs.

    ``iterations_per_level`` marks the multigrid level changes with dotted lines.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for i, (label, h) in enumerate(histories.items()):
        h = np.atleast_2d(np.asarray(h, dtype=np.float64))
        for k, row in enumerate(h):
            ax.plot(
                np.arange(1, row.size + 1),
                row,
                color=f"C{i % 10}",
                lw=1.0 if h.shape[0] > 1 else 1.5,
                alpha=0.7 if h.shape[0] > 1 else 1.0,
                label=label if k == 0 else None,
            )
    if iterations_per_level:
        total = max(np.atleast_2d(h).shape[-1] for h in histories.values())
        for x in range(iterations_per_level, total, iterations_per_level):
            ax.axvline(x + 0.5, color="0.6", ls=":", lw=1)
    ax.set(xlabel=x_label, ylabel="loss", yscale="log")
    if len(histories) > 1 or any(lbl for lbl in histories):
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _map2d(m: np.ndarray) -> np.ndarray:
    """A lag map for display: 2D as is, 3D its central section normal to axis 0."""
    return m if m.ndim == 2 else m[m.shape[0] // 2]


def save_maps(
    path,
    rows: Sequence[tuple[str, np.ndarray]],
    *,
    column_titles: Sequence[str] = (),
    error_rows: Sequence[str] = (),
    error_max: float = 0.15,
) -> None:
    """A grid of lag maps: each row ``(label, (k, *lags))`` shares one colour scale.

    Rows named in ``error_rows`` are relative errors, drawn in ``[0, error_max]`` with their own
    colour bar (Fig. 12 uses 0-15%). 3D maps show their central section.
    """
    plt = _pyplot()
    k = max(np.asarray(m).shape[0] for _, m in rows)
    fig, axes = plt.subplots(len(rows), k, figsize=(2.3 * k + 0.8, 2.2 * len(rows)), squeeze=False)
    for r, (label, maps) in enumerate(rows):
        maps = np.asarray(maps, dtype=np.float64)
        error = label in error_rows
        finite = maps[np.isfinite(maps)]
        vmin, vmax = (0.0, error_max) if error else (finite.min(), finite.max())
        image = None
        for c in range(k):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= maps.shape[0]:
                ax.set_axis_off()
                continue
            image = ax.imshow(
                _map2d(maps[c]),
                cmap="magma" if error else "viridis",
                vmin=vmin,
                vmax=vmax,
                interpolation="nearest",
            )
            if r == 0 and c < len(column_titles):
                ax.set_title(column_titles[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
        fig.colorbar(image, ax=list(axes[r]), shrink=0.8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def save_reconstruction_figures(
    out, reference, field, spec: Spec, histories: dict, *, window: int, max_iter=None
) -> np.ndarray:
    """The figures of a reconstruction run, written into the folder ``out``.

    ``fields.png`` (reference and result, :func:`field_images`), ``loss.png``
    (:func:`save_loss_curve` of ``histories``, levels marked every ``max_iter`` iterations),
    ``two_point.png`` (reference and result auto-correlations) and ``variogram.png`` (reference
    and result variograms and their relative error per lag, as in Fig. 12), both on a lag
    window of half-width ``window`` and for SHSH features 0, 1, 2 (orientations) or every
    channel (phases).

    Returns:
        The relative variogram error (C, *lags) of every feature channel (NaN at the origin).

    References:
        SHSH-MCR paper (mcr-shsh), Fig. 12.
    """
    out = Path(out)
    panels = [(f"reference {c}".strip(), im) for c, im in field_images(reference, spec)]
    panels += [(f"result {c}".strip(), im) for c, im in field_images(field, spec)]
    save_images(out / "fields.png", panels)
    save_loss_curve(out / "loss.png", histories, iterations_per_level=max_iter)
    shown = (0, 1, 2) if spec.representation == "orientations" else None
    titles = [f"feature {c}" for c in (shown or range(np.shape(reference)[-1]))]
    (s_ref, s_res), (g_ref, g_res) = jax.tree.map(
        np.asarray, _comparisons(reference, field, spec, ("two_point", "variogram"), window, None)
    )
    pick = slice(None) if shown is None else list(shown)
    save_maps(
        out / "two_point.png",
        [("reference", s_ref[pick]), ("result", s_res[pick])],
        column_titles=titles,
    )
    rel = np.asarray(_relative_error(g_ref, g_res, window))
    save_maps(
        out / "variogram.png",
        [("reference", g_ref[pick]), ("result", g_res[pick]), ("relative error", rel[pick])],
        column_titles=titles,
        error_rows=("relative error",),
    )
    return rel


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, jax.Array | np.ndarray | np.generic):
        value = np.asarray(value)
        return _jsonable(value.tolist()) if value.ndim else _jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN or infinity
    return value


def write_json(path, record: dict) -> None:
    """Writes ``record`` as indented JSON (arrays as lists, NaN and infinity as null)."""
    Path(path).write_text(json.dumps(_jsonable(record), indent=2) + "\n")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (``resource.getrusage``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def timed_call(jitted: Callable, *args) -> tuple[object, float, float]:
    """Compiles ``jitted`` for ``args`` ahead of time, then runs it once.

    Args:
        jitted: a ``jax.jit`` function whose arguments are all arrays or pytrees (bind static
            choices with ``functools.partial`` before jitting).
        args: its arguments.

    Returns:
        ``(output, compile_seconds, run_seconds)``; the run excludes compilation and blocks until
        the output is ready.
    """
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compiled_at = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return out, compiled_at - start, time.perf_counter() - compiled_at
