"""Building datasets of synthetic microstructures as sharded ``.npz`` files plus metadata.

A dataset directory holds ``shard-00000.npz``, ``shard-00001.npz``, ... (each with an array
``x`` of samples, batch leading, and one array per numeric label) and ``metadata.json``: the kind,
generator parameters, seed, sample shape and dtype, the shards with their sample counts, and the
per-sample labels. Sample ``i`` is generated from ``fold_in(key(seed), i)`` (Potts: simulation
``i`` gives several blocks), so a dataset is reproducible from its metadata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import synth
from jaxmicro._outdir import prepare_output_dir
from jaxmicro.data._blocks import extract_blocks, grainpaint_blocks
from jaxmicro.data._labels import grain_sphericity

FORMAT = "jaxmicro-dataset/1"
METADATA = "metadata.json"


@dataclass(frozen=True)
class _Kind:
    defaults: dict
    make: Callable  # (params, shape) -> generate(key) -> (samples (m, ...), labels: list[dict])
    dim: int


def _voronoi_maker(rgb: bool):
    def make(p, shape):
        lo, hi = p["grains"]
        rgb_palette = jnp.asarray(synth.palette(p["n_colors"]), jnp.float32)

        # A (low, high) regularity is drawn per sample (a spread of grain shapes to condition on).
        r_lo, r_hi = np.broadcast_to(np.asarray(p["regularity"], float), (2,))

        @jax.jit
        def field(key):
            k_n, k_v, k_r = jax.random.split(key, 3)
            n = jax.random.randint(k_n, (), lo, hi + 1)
            regularity = jax.random.uniform(k_r, (), minval=r_lo, maxval=r_hi)
            ids = synth.voronoi(
                k_v, shape, n, regularity=regularity, stretch=p["stretch"], capacity=hi
            )
            return ids, n, regularity

        def generate(key):
            ids, n, regularity = field(key)
            ids, n = np.asarray(ids), int(n)
            label = {"n_grains": n, "grains_present": int(np.unique(ids).size)}
            if r_hi > r_lo:
                label["regularity"] = float(regularity)
            if len(shape) == 3:
                label["mean_sphericity"] = float(np.nanmean(grain_sphericity(ids)))
            if not rgb:
                return ids[None], [label]
            colors = synth.color_grains(ids, p["n_colors"], n_grains=n)
            label["colors_used"] = int(np.unique(colors[np.unique(ids)]).size)
            image = 2.0 * np.asarray(synth.ids_to_rgb(ids, colors, rgb_palette)) - 1.0
            return image.astype(np.float32)[None], [label]

        return generate

    return make


def _potts_maker(p, shape):
    # ``block = 0`` keeps whole volumes (references for grain statistics).
    block = (p["block"] or shape[0],) * len(shape)
    corners = np.zeros((1, len(shape)), np.int64)
    if p["block"]:
        corners = grainpaint_blocks(shape, p["block"], n_boundary=None)
        n_boundary = min(p["n_boundary"], len(corners) - math.prod(s // p["block"] for s in shape))
        corners = grainpaint_blocks(shape, p["block"], n_boundary=n_boundary, seed=p["block_seed"])
    # ``pool`` is (along, across, depth); a 2D (scan, build) section keeps (along, depth).
    pool = tuple(p["pool"]) if len(shape) == 3 else (p["pool"][0], p["pool"][-1])
    scan = synth.RasterScan(pool=pool) if p["am"] else None
    sweeps = synth.scan_sweeps(shape, scan) if p["am"] else p["sweeps"]

    @jax.jit
    def simulate(key):
        k_start, k_growth = jax.random.split(key)
        if p["initial_grains"]:
            # A fine Voronoi structure as the start (fewer sweeps to the same grain size).
            ids = synth.voronoi(k_start, shape, p["initial_grains"])
        else:
            # SPPARKS-style start: every site its own grain.
            ids = jnp.arange(math.prod(shape), dtype=jnp.int32).reshape(shape)
        mobility = None
        if scan is not None:

            def mobility(t):
                return synth.melt_pool_mobility(shape, t, scan)

        return synth.potts(k_growth, ids, sweeps, kT=p["kT"], mobility=mobility)

    def generate(key):
        volume = simulate(key)
        blocks = np.array(extract_blocks(volume, corners, block))
        labels = []
        for b, corner in zip(blocks, corners, strict=True):
            # Consecutive IDs per block (GrainPaint trains on blocks, not on whole volumes).
            b[...] = np.unique(b, return_inverse=True)[1].reshape(b.shape)
            labels.append({"corner": corner.tolist(), "n_grains": int(b.max()) + 1})
        return blocks, labels

    return generate


def _rsa_maker(p, shape):
    @jax.jit
    def field(key):
        return synth.rsa_disks(key, shape, p["radius"], p["volume_fraction"])

    def generate(key):
        x, _, count = field(key)
        x = np.asarray(x)
        return x[None], [{"volume_fraction": float(x.mean()), "n_disks": int(count)}]

    return generate


def _two_phase_maker(p, shape):
    @jax.jit
    def field(key):
        return synth.gaussian_two_phase(key, shape, p["correlation_length"], p["volume_fraction"])

    def generate(key):
        x = np.asarray(field(key))
        return x[None], [{"volume_fraction": float(x.mean())}]

    return generate


_VORONOI = {"grains": (50, 300), "regularity": 0.5, "stretch": None, "n_colors": 10}
KINDS: dict[str, _Kind] = {
    "voronoi": _Kind(_VORONOI, _voronoi_maker(rgb=False), 3),
    "voronoi-rgb": _Kind(_VORONOI, _voronoi_maker(rgb=True), 3),
    "potts": _Kind(
        {
            "sweeps": 20,
            "kT": 0.5,
            "block": 16,
            "n_boundary": 56,
            "block_seed": 0,
            "am": False,
            "pool": (10.0, 6.0, 6.0),
            "initial_grains": 0,
        },
        _potts_maker,
        3,
    ),
    "rsa": _Kind({"radius": 4.0, "volume_fraction": 0.35}, _rsa_maker, 2),
    "two-phase": _Kind({"correlation_length": 4.0, "volume_fraction": 0.5}, _two_phase_maker, 2),
}


def default_params(kind: str) -> dict:
    """Generator parameters of ``kind`` (a copy; ``make_dataset`` accepts overrides)."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown dataset kind {kind!r}; expected one of {sorted(KINDS)}")
    return dict(KINDS[kind].defaults)


def _write_shard(out: Path, index: int, samples: list, labels: list[dict]) -> dict:
    name = f"shard-{index:05d}.npz"
    arrays = {"x": np.stack(samples)}
    for key in labels[0]:
        column = [label[key] for label in labels]
        if all(isinstance(v, int | float) for v in column):
            arrays[key] = np.asarray(column)
    np.savez(out / name, **arrays)
    return {"file": name, "count": len(samples)}


def _check_params(kind: str, p: dict) -> None:
    """Raises ValueError for generator parameters that would give labels unlike the samples."""
    if "grains" in p:
        lo, hi = (int(v) for v in p["grains"])
        if not 1 <= lo <= hi:
            raise ValueError(f"grains: expected a range 1 <= MIN <= MAX, got {p['grains']}")
    for name in ("volume_fraction",):
        if name in p and not 0.0 < float(p[name]) < 1.0:
            raise ValueError(f"{name}: expected a value in (0, 1), got {p[name]}")
    if kind == "potts" and (int(p["block"]) < 0 or int(p["initial_grains"]) < 0):
        raise ValueError(
            f"block, initial_grains: expected non-negative values, got {p['block']}, "
            f"{p['initial_grains']}"
        )


def make_dataset(
    kind: str,
    out,
    *,
    num_samples: int,
    size: int,
    dim: int | None = None,
    seed: int = 0,
    shard_size: int = 64,
    overwrite: bool = False,
    progress: bool = True,
    **params,
) -> dict:
    """Generates ``num_samples`` samples (Potts: simulations, each cut into blocks) into ``out``.

    Kinds: ``voronoi`` (grain IDs), ``voronoi-rgb`` (PolyCrysDiff: 10-colour RGB in [-1, 1],
    channels last, labels ``n_grains`` and ``mean_sphericity``), ``potts`` (GrainPaint: grain-ID
    blocks of Potts grain growth, optionally the additive-manufacturing variant), ``rsa``
    (binary disks/spheres) and ``two-phase`` (thresholded Gaussian field).

    Args:
        kind: one of ``KINDS``. ``potts`` takes ``block = 0`` for whole volumes (no blocks) and
            ``initial_grains > 0`` to start from a fine Voronoi structure instead of one grain
            per site.
        out: output directory; it must be new or empty (or ``overwrite``).
        num_samples: number of samples (simulations for ``potts``).
        size: edge length of the (cubic/square) volume.
        dim: 2 or 3 (default per kind: 3 for grain structures, 2 for two-phase media).
        seed: base seed; sample ``i`` uses ``fold_in(key(seed), i)``.
        shard_size: samples per shard file.
        overwrite: replace the contents of a non-empty ``out``.
        progress: show a tqdm progress bar.
        **params: overrides of ``default_params(kind)``.

    Returns:
        The metadata dictionary (also written to ``out/metadata.json``, last, so a folder with
        metadata is complete).

    References: PolyCrysDiff §4.1; GrainPaint §2.1, §2.4, §3.3; Lee & Yun appendix A.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: unknown dataset kind {kind!r}; expected one of {sorted(KINDS)}")
    spec = KINDS[kind]
    unknown = set(params) - set(spec.defaults)
    if unknown:
        raise ValueError(f"params: unknown parameter(s) {sorted(unknown)} for kind {kind!r}")
    for name, value, low in (
        ("num_samples", num_samples, 1),
        ("size", size, 2),
        ("shard_size", shard_size, 1),
    ):
        if value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value}")
    dim = spec.dim if dim is None else int(dim)
    if dim not in (2, 3):
        raise ValueError(f"dim: expected 2 or 3, got {dim}")
    p = {**spec.defaults, **params}
    _check_params(kind, p)
    shape = (int(size),) * dim
    generate = spec.make(p, shape)
    out = prepare_output_dir(out, overwrite=overwrite, name="out")

    from tqdm.auto import tqdm

    key = jax.random.key(seed)

    def samples():
        for i in tqdm(range(num_samples), desc=f"{kind} {shape}", disable=not progress):
            xs, ls = generate(jax.random.fold_in(key, i))
            for x, label in zip(xs, ls, strict=True):
                yield x, {"source": i, **label}

    info = {
        "kind": kind,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()},
        "shape": list(shape),
        "seed": seed,
        "n_sources": num_samples,
    }
    return _write_samples(out, samples(), info, shard_size)


def write_dataset(
    out,
    x,
    labels: dict | None = None,
    *,
    kind: str = "arrays",
    shard_size: int = 64,
    overwrite: bool = False,
    extra: dict | None = None,
) -> dict:
    """Writes arrays as a dataset folder that ``Loader`` and ``jaxmicro.train.fit`` read.

    Args:
        out: output directory; it must be new or empty (or ``overwrite``).
        x: ``(N, ...)`` samples, batch leading (e.g. fields ``(N, *spatial, C)`` in [-1, 1]).
        labels: optional numeric per-sample labels, name -> ``(N,)`` array.
        kind: recorded as the dataset kind.
        shard_size: samples per shard file.
        overwrite: replace the contents of a non-empty ``out``.
        extra: more metadata entries (JSON values).

    Returns:
        The metadata dictionary.
    """
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x: expected (N, ...) samples with N >= 1, got shape {x.shape}")
    labels = {k: np.asarray(v) for k, v in (labels or {}).items()}
    for name, value in labels.items():
        if value.shape != (x.shape[0],) or not np.issubdtype(value.dtype, np.number):
            raise ValueError(
                f"labels[{name!r}]: expected ({x.shape[0]},) numbers, got {value.shape} "
                f"{value.dtype}"
            )
    out = prepare_output_dir(out, overwrite=overwrite, name="out")

    def samples():
        for i in range(x.shape[0]):
            yield x[i], {"source": i, **{k: v[i].item() for k, v in labels.items()}}

    info = {"kind": kind, "params": {}, "shape": list(x.shape[1:]), "seed": None}
    info.update(extra or {})
    return _write_samples(out, samples(), info, shard_size)


def _write_samples(out: Path, samples, info: dict, shard_size: int) -> dict:
    shards, labels, pending, pending_labels = [], [], [], []
    sample_shape, dtype = None, None
    for x, label in samples:
        sample_shape, dtype = list(x.shape), str(x.dtype)
        pending.append(x)
        pending_labels.append(label)
        if len(pending) == shard_size:
            shards.append(_write_shard(out, len(shards), pending, pending_labels))
            labels += pending_labels
            pending, pending_labels = [], []
    if pending:
        shards.append(_write_shard(out, len(shards), pending, pending_labels))
        labels += pending_labels
    metadata = {
        "format": FORMAT,
        **info,
        "n_samples": len(labels),
        "sample_shape": sample_shape,
        "dtype": dtype,
        "shards": shards,
        "labels": labels,
    }
    (out / METADATA).write_text(json.dumps(metadata, indent=1))
    return metadata


def read_metadata(directory) -> dict:
    """The ``metadata.json`` of a dataset directory (checks the format tag)."""
    path = Path(directory) / METADATA
    if not path.is_file():
        raise ValueError(f"directory: no {METADATA} in {directory}")
    metadata = json.loads(path.read_text())
    if metadata.get("format") != FORMAT:
        raise ValueError(f"directory: {path} is not a {FORMAT} dataset")
    return metadata
