"""Representations, comparison metrics, the first-order baseline and the figures of ROGSH-LGD.

Representations (what the diffusion model sees per pixel):

- ``'rogsh'``: the three ROGSH coefficients (``jaxmicro.harmonics.rogsh``), inverted with
  ``rogsh_to_euler`` (one preimage of several, docs/orientations.md);
- ``'euler'``: Bunge angles of the fundamental-zone quaternion scaled to [-1, 1]
  (``phi1 / pi - 1``, ``2 Phi / pi - 1``, ``phi2 / pi - 1``), clipped back into range to invert
  (the paper's EULER-LGD).

Comparison (Table 1): both statistics in a full symmetrized harmonic expansion, not in ROGSH:
every SHSH function of the crystal symmetry up to GSH order l = 6 (hyperspherical degree 12),
for both symmetries (``HARMONIC_DEGREES``):
hexagonal 5 + 9 + 26 = 40 functions (l = 2, 4, 6; the l = 2 and 4 ones see only the c-axis,
l = 6 fixes the rotation about it), cubic 9 + 13 = 22 (l = 4, 6). This is the space
spanned by Bunge's symmetrized GSH of those orders (triclinic sample symmetry), i.e. the paper's
43-term GSH expansion up to its truncation (the paper does not list its terms).

- ODF error: per generated map, the mean over the functions of (map mean - reference mean)^2;
  averaged over the maps.
- 2-point error: per map, the auto-correlation of each function on the lag window
  ``|r_i| <= max_lag`` (non-periodic estimator, so maps of any size and the reference's halves
  compare alike), the mean squared difference to the reference's; averaged over the maps.
- Floor: the same two numbers between the reference's top and bottom halves.
- Ideal (synthetic references, ``references.realizations``): the same for crops of
  independent maps of the reference's own generator, what a perfect generator would score.

All numbers are symmetry-invariant per pixel (the SHSH functions are), so no fundamental-zone
choice enters.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HARMONIC_DEGREES = {"hexagonal": (4, 8, 12), "cubic": (8, 12)}
REPRESENTATIONS = ("rogsh", "euler")
_EULER_RANGE = np.array([2 * np.pi, np.pi, 2 * np.pi])


# ---- representations ---------------------------------------------------------------------------


def encode(q, symmetry: str, representation: str) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` -> ``(..., 3)`` float32 training channels."""
    from jaxmicro import harmonics, orientations

    q = jnp.asarray(q, jnp.float32)
    if representation == "rogsh":
        return np.asarray(harmonics.rogsh(orientations.quat_to_euler(q), symmetry), np.float32)
    if representation == "euler":
        e = orientations.quat_to_euler(orientations.to_fundamental_zone(q, symmetry))
        return np.asarray(2.0 * e / _EULER_RANGE - 1.0, np.float32)
    raise ValueError(f"representation: expected one of {REPRESENTATIONS}, got {representation!r}")


def decode(x, symmetry: str, representation: str) -> np.ndarray:
    """Training channels ``(..., 3)`` -> unit quaternions ``(..., 4)`` float32."""
    from jaxmicro import harmonics, orientations

    x = jnp.asarray(x, jnp.float32)
    if representation == "rogsh":
        e = harmonics.rogsh_to_euler(x, symmetry)
    elif representation == "euler":
        e = (jnp.clip(x, -1.0, 1.0) + 1.0) * _EULER_RANGE / 2.0
    else:
        raise ValueError(
            f"representation: expected one of {REPRESENTATIONS}, got {representation!r}"
        )
    return np.asarray(orientations.euler_to_quat(e), np.float32)


# ---- harmonic-space statistics -----------------------------------------------------------------


def harmonic_count(symmetry: str) -> int:
    """Number of SHSH functions of the comparison (40 hexagonal, 22 cubic)."""
    from jaxmicro import harmonics

    return sum(harmonics.shsh_dim(symmetry, d) for d in HARMONIC_DEGREES[symmetry])


_CHUNK = 8192
_NUMPY_ROWS = 1 << 16


@functools.cache
def _shsh_kernel(symmetry: str):
    from jaxmicro import harmonics

    degrees = HARMONIC_DEGREES[symmetry]
    return jax.jit(lambda q: harmonics.shsh(q, symmetry, degrees=degrees).astype(jnp.float32))


def features(q, symmetry: str) -> np.ndarray:
    """SHSH functions ``(*spatial, K)`` float32 of one orientation map ``(*spatial, 4)``.

    Maps of up to 2^16 pixels are evaluated in NumPy (float64, no compilation: the degree-12
    kernel takes seconds to compile); larger ones by a jitted kernel over fixed chunks of 8,192
    rows, so one compilation serves every size.
    """
    from jaxmicro.harmonics.shsh import shsh_features

    q = np.asarray(q)
    flat = q.reshape(-1, 4)
    n = flat.shape[0]
    if n <= _NUMPY_ROWS:
        f = shsh_features(flat.astype(np.float64), symmetry, HARMONIC_DEGREES[symmetry], xp=np)
    else:
        pad = np.tile(np.float32([1, 0, 0, 0]), (-n % _CHUNK, 1))  # identity rows
        rows = np.concatenate([flat.astype(np.float32), pad])
        kernel = _shsh_kernel(symmetry)
        f = np.concatenate(
            [np.asarray(kernel(rows[i : i + _CHUNK])) for i in range(0, len(rows), _CHUNK)]
        )[:n]
    return np.asarray(f, np.float32).reshape(*q.shape[:-1], -1)


def auto_correlations(f: np.ndarray, max_lag: int, periodic: bool = False) -> np.ndarray:
    """Auto-correlations ``(K, 2L+1, 2L+1)`` of a map ``(H, W, K)`` (NumPy FFT).

    Entry ``[k, L + r0, L + r1]`` is the mean of ``f[s, k] f[s + r, k]`` over the pixel pairs
    inside the map (or over all pixels, wrapping around, with ``periodic``), as
    ``descriptors.two_point(f, periodic=..., max_lag=L, pairs='auto')``.

    Raises:
        ValueError: ``max_lag`` not below the map's sides (lags with no pixel pair inside it).
    """
    h, w, _ = f.shape
    if not periodic and max_lag >= min(h, w):
        raise ValueError(f"max_lag: expected below the map's sides {(h, w)}, got {max_lag}")
    size = (h, w) if periodic else (h + max_lag, w + max_lag)
    spec = np.fft.rfft2(f.astype(np.float64), s=size, axes=(0, 1))
    corr = np.fft.irfft2(np.abs(spec) ** 2, s=size, axes=(0, 1))
    ones = np.fft.rfft2(np.ones((h, w)), s=size)
    count = np.fft.irfft2(np.abs(ones) ** 2, s=size)
    index = np.arange(-max_lag, max_lag + 1)
    window = (
        corr[np.ix_(index % size[0], index % size[1])]
        / np.round(count[np.ix_(index % size[0], index % size[1])])[..., None]
    )
    return np.moveaxis(window, -1, 0)


def statistics(q, symmetry: str, max_lag: int) -> dict:
    """``{'odf': (K,), 'two_point': (K, 2L+1, 2L+1)}`` of one map in the harmonic expansion."""
    f = features(q, symmetry)
    return {"odf": f.mean(axis=(0, 1)), "two_point": auto_correlations(f, max_lag)}


def errors(maps, reference, symmetry: str, max_lag: int) -> dict:
    """Table 1 numbers of a set of maps ``(n, *spatial, 4)`` against one reference map.

    Returns:
        ``{'odf_mse', 'two_point_mse'}`` (means over the maps of the per-map errors), their
        per-map values, and ``*_pooled``: the error of the set's mean statistics (the bias
        left once the per-map sampling noise of the grains averages out).
    """
    ref = statistics(reference, symmetry, max_lag)
    odf, tp, pooled = [], [], {"odf": 0.0, "two_point": 0.0}
    for q in maps:
        s = statistics(q, symmetry, max_lag)
        odf.append(float(np.mean((s["odf"] - ref["odf"]) ** 2)))
        tp.append(float(np.mean((s["two_point"] - ref["two_point"]) ** 2)))
        pooled = {k: pooled[k] + s[k] / len(maps) for k in pooled}
    return {
        "odf_mse": float(np.mean(odf)),
        "two_point_mse": float(np.mean(tp)),
        "odf_mse_pooled": float(np.mean((pooled["odf"] - ref["odf"]) ** 2)),
        "two_point_mse_pooled": float(np.mean((pooled["two_point"] - ref["two_point"]) ** 2)),
        "odf_per_map": odf,
        "two_point_per_map": tp,
    }


def floor(reference, symmetry: str, max_lag: int) -> dict:
    """The reference against itself: its bottom half compared with its top half."""
    h = reference.shape[0] // 2
    return errors(reference[None, h : 2 * h], reference[:h], symmetry, max_lag)


# ---- grains and chords -------------------------------------------------------------------------


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Quaternion product ``a * b`` with P = -1 (``orientations.quat_multiply`` in NumPy)."""
    a0, av, b0, bv = a[..., :1], a[..., 1:], b[..., :1], b[..., 1:]
    scalar = a0 * b0 - np.sum(av * bv, axis=-1, keepdims=True)
    return np.concatenate([scalar, a0 * bv + b0 * av - np.cross(av, bv)], axis=-1)


def _disorientation(q1: np.ndarray, q2: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """Disorientation angle (radians) of ``q1`` to ``q2``: ``2 acos max_s |<s q2, q1>|``.

    The scalar part of ``s q2 conj(q1)`` is the 4-D dot product; conjugating a rotation keeps
    its angle, so one-sided symmetry ``S_a dq S_b^-1 -> S_c dq`` already finds the minimum.
    """
    best = np.zeros(q1.shape[:-1])
    for s in ops:
        best = np.maximum(best, np.abs(np.sum(_multiply(s, q2) * q1, axis=-1)))
    return 2 * np.arccos(np.clip(best, 0.0, 1.0))


def boundaries(q, symmetry: str, threshold_deg: float = 5.0) -> np.ndarray:
    """``(2, ny, nx)`` bool: disorientation to the next pixel along axis 0 / 1 above threshold."""
    from jaxmicro import orientations

    q = np.asarray(q, np.float64)
    ops = np.asarray(orientations.symmetry_quats(symmetry), np.float64)
    angle = np.stack([_disorientation(q, np.roll(q, -1, axis=a), ops) for a in range(q.ndim - 1)])
    return angle > np.deg2rad(threshold_deg)


def chord_lengths(q, symmetry: str, threshold_deg: float = 5.0) -> dict:
    """Chord lengths (pixels) between grain boundaries along axis 0 and 1 of one map.

    Chords that touch the map's edge are dropped (their length is unknown).
    """
    b = boundaries(q, symmetry, threshold_deg)
    out = {}
    for axis in (0, 1):
        edges = np.moveaxis(b[axis], axis, -1)[..., :-1]  # boundary after pixel i (no wrap)
        lengths = []
        for line in edges.reshape(-1, edges.shape[-1]):
            pos = np.flatnonzero(line)
            lengths.append(np.diff(pos))
        out[axis] = np.concatenate(lengths) if lengths else np.zeros(0)
    return out


def pooled_chord_lengths(maps, symmetry: str) -> dict:
    """``chord_lengths`` of every map in ``maps``, pooled per axis."""
    per_map = [chord_lengths(q, symmetry) for q in maps]
    return {axis: np.concatenate([c[axis] for c in per_map]) for axis in (0, 1)}


def grain_areas(q, symmetry: str, periodic: bool, threshold_deg: float = 5.0) -> np.ndarray:
    """Areas (pixels) of the grains of one map: connected components of face neighbours closer
    than ``threshold_deg`` (as ``jaxmicro.grains.segment_orientations``, in NumPy/SciPy)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    b = boundaries(q, symmetry, threshold_deg)
    shape = b.shape[1:]
    index = np.arange(np.prod(shape)).reshape(shape)
    rows, cols = [], []
    for axis in (0, 1):
        keep = ~b[axis]
        if not periodic:
            last = [slice(None)] * 2
            last[axis] = -1
            keep[tuple(last)] = False
        rows.append(index[keep])
        cols.append(np.roll(index, -1, axis=axis)[keep])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(index.size,) * 2)
    _, labels = connected_components(graph, directed=False)
    return np.bincount(labels)


# ---- first-order baseline ----------------------------------------------------------------------


def first_order_statistics(reference, symmetry: str, periodic: bool) -> dict:
    """What the first-order baseline matches: grain areas, elongation, and the ODF (the
    reference's pixels, so the volume-weighted ODF)."""
    areas = grain_areas(reference, symmetry, periodic)
    chords = chord_lengths(reference, symmetry)
    elongation = float(np.mean(chords[0]) / np.mean(chords[1]))
    return {"areas": areas, "elongation": elongation}


def first_order(key, reference, stats: dict, shape, num_maps: int) -> np.ndarray:
    """First-order maps ``(num_maps, *shape, 4)``: Dream3D-like, no spatial orientation order.

    Grain sizes: equivalent radii ``sqrt(area)`` drawn from the reference's grain areas until
    they cover the map; the grains are the cells of a multiplicatively weighted, periodic
    Voronoi tessellation (pixel -> argmin_i d(x, s_i) / r_i, seeds uniform) with the metric
    stretched by the reference's elongation (mean chord length along axis 0 over axis 1).
    Orientations: each grain takes the orientation of a uniformly drawn reference pixel (the
    volume-weighted ODF), independently of its neighbours and position.
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1])
    ref = np.asarray(reference).reshape(-1, 4)
    areas = np.asarray(stats["areas"], np.float64)
    e = float(stats["elongation"])
    ny, nx = shape
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    maps = []
    for _ in range(num_maps):
        drawn = []
        while sum(drawn) < ny * nx:
            drawn.append(rng.choice(areas))
        radius = np.sqrt(np.asarray(drawn))
        seeds = rng.uniform((0, 0), (ny, nx), (len(drawn), 2))
        best = np.full(shape, np.inf)
        ids = np.zeros(shape, np.int64)
        for i, (sy, sx) in enumerate(seeds):
            dy = ((yy - sy + ny / 2) % ny - ny / 2) / np.sqrt(e)
            dx = ((xx - sx + nx / 2) % nx - nx / 2) * np.sqrt(e)
            d = np.sqrt(dy**2 + dx**2) / radius[i]
            closer = d < best
            best[closer], ids[closer] = d[closer], i
        grain_q = ref[rng.integers(0, len(ref), len(drawn))]
        maps.append(grain_q[ids])
    return np.stack(maps).astype(np.float32)


# ---- figures -----------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ipf(q, symmetry: str) -> np.ndarray:
    from jaxmicro import orientations

    return np.asarray(orientations.ipf_color(jnp.asarray(q, jnp.float32), symmetry))


def plot_maps(path: Path, panels: dict, symmetry: str) -> None:
    """IPF-Z maps, one panel per ``title -> (*spatial, 4)``."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2), squeeze=False)
    for ax, (title, q) in zip(axes[0], panels.items(), strict=True):
        ax.imshow(ipf(q, symmetry), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_two_point(path: Path, reference: np.ndarray, generated: np.ndarray, names) -> None:
    """Auto-correlation maps ``(C, 2L+1, 2L+1)``: reference, generated, difference per channel."""
    plt = _plt()
    c = reference.shape[0]
    fig, axes = plt.subplots(c, 3, figsize=(8, 2.6 * c), squeeze=False)
    for i in range(c):
        lo, hi = reference[i].min(), reference[i].max()
        for j, (title, m) in enumerate(
            (("reference", reference[i]), ("generated", generated[i]), ("difference", None))
        ):
            ax = axes[i, j]
            if m is None:
                d = generated[i] - reference[i]
                im = ax.imshow(d, cmap="RdBu_r", vmin=-abs(d).max(), vmax=abs(d).max())
            else:
                im = ax.imshow(m, vmin=lo, vmax=hi)
            ax.set_title(f"{names[i]}: {title}", fontsize=8)
            ax.axis("off")
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_chords(path: Path, chords: dict) -> None:
    """Chord-length distributions (number-weighted) along both axes, one curve per set."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    top = max(
        (np.percentile(c[a], 99) for c in chords.values() for a in (0, 1) if len(c[a])), default=10
    )
    bins = np.arange(1, int(top) + 2)
    for axis, ax in zip((0, 1), axes, strict=True):
        for name, c in chords.items():
            if len(c[axis]):
                h, _ = np.histogram(c[axis], bins=bins, density=True)
                ax.plot(bins[:-1], h, label=f"{name} (mean {np.mean(c[axis]):.1f})")
        ax.set_xlabel(f"chord length along axis {axis} (pixels)")
        ax.set_ylabel("probability")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_grf(path: Path, reference: np.ndarray, grf: np.ndarray, names) -> None:
    """Figs. 3-4: central sections of each channel's auto-correlation, reference vs GRF mean."""
    plt = _plt()
    c = reference.shape[0]
    fig, axes = plt.subplots(1, c, figsize=(3.4 * c, 3), squeeze=False)
    mid = reference.shape[-1] // 2
    lags = np.arange(reference.shape[-1]) - mid
    for i, ax in enumerate(axes[0]):
        for axis, style in ((0, "-"), (1, "--")):
            r = reference[i][:, mid] if axis == 0 else reference[i][mid]
            g = grf[i][:, mid] if axis == 0 else grf[i][mid]
            ax.plot(lags, r, "k" + style, label=f"reference, axis {axis}")
            ax.plot(lags, g, "C1" + style, label=f"GRF mean, axis {axis}")
        ax.set_title(names[i], fontsize=9)
        ax.set_xlabel("lag (pixels)")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- report ------------------------------------------------------------------------------------


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def write_report(out: Path, results: dict) -> None:
    """``results.json`` and ``report.md`` (Table 1 per reference, GRF check, 1-point weighting)."""
    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = [f"# ROGSH-LGD: {results['name']}", ""]
    if not results.get("complete"):
        lines += ["*(incomplete: the evaluation stopped before the end)*", ""]
    lines += [
        "Statistics in a full symmetrized harmonic expansion (SHSH; "
        + ", ".join(
            f"{s}: {n} functions, hyperspherical degrees {list(HARMONIC_DEGREES[s])}"
            for s, n in results["harmonic_counts"].items()
        )
        + "); errors are means over the generated maps; the floor compares the reference's two "
        "halves; `ideal` (synthetic references) scores crops of independent maps of the "
        "reference's own generator, what a perfect generator would score.",
        "",
    ]
    for name, r in results["references"].items():
        t = r["table1"]
        cols = [k for k in ("first_order", "euler", "rogsh", "ideal", "floor") if k in t]
        lines += [
            f"## {name} ({r['symmetry']}, reference {r['shape']}, "
            f"generated {r['generated_shape']} x {r['num_generated']})",
            "",
            "| | " + " | ".join(cols) + " |",
            "|---|" + "---|" * len(cols),
            "| ODF (MSE) | " + " | ".join(_fmt(t[c]["odf_mse"]) for c in cols) + " |",
            "| 2-point (MSE) | " + " | ".join(_fmt(t[c]["two_point_mse"]) for c in cols) + " |",
            "| ODF of the set mean (MSE) | "
            + " | ".join(_fmt(t[c].get("odf_mse_pooled")) for c in cols)
            + " |",
            "| 2-point of the set mean (MSE) | "
            + " | ".join(_fmt(t[c].get("two_point_mse_pooled")) for c in cols)
            + " |",
            "",
            f"GRF (Figs. 3-4): max |mean 2-point - reference| / reference peak = "
            f"{_fmt(r['grf']['max_rel_error'])} over {r['grf']['num_samples']} fields; "
            f"1-point max abs error {_fmt(r['grf']['one_point_error'])}.",
            "",
            "1-point correction (ROGSH-LGD): "
            + ", ".join(
                f"{k} (strength {_fmt(v['strength'])}): ODF MSE {_fmt(v['odf_mse'])}"
                for k, v in r["correction"].items()
            ),
            "",
            "Mean chord lengths (axis 0, axis 1): "
            + "; ".join(f"{k} {v[0]:.1f}, {v[1]:.1f}" for k, v in r["mean_chords"].items()),
            "",
        ]
        for png in r["figures"]:
            lines.append(f"![{png}]({png})")
        lines.append("")
    lines += ["## Timings (seconds)", ""]
    lines += [f"- {k}: {v:.0f}" for k, v in results.get("timings", {}).items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
