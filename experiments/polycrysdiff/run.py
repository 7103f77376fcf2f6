"""Runs the PolyCrysDiff experiment (see config.py for the commands and the variants).

Stages, each resumed where a previous run stopped: data (``jaxmicro.data.make_dataset``,
``voronoi-rgb``), the KL-VAE (``fit_vae``), the latent UNet (``fit`` with ``autoencoder``: the
dataset is encoded to latents once), then the evaluation (``evaluate``: Table 1, Fig. 3, guidance
sweep, CPFEM hand-off, ``results.json``, ``report.md`` and PNGs; generated samples are cached per
setting in ``<out>/samples/<setting>.npy``) and ``export`` (the shipped model, once the
evaluation finished). ``--stage all`` runs them in order; see docs/polycrysdiff.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import zlib
from pathlib import Path

import numpy as np

from jaxmicro._modules import load_file_module
from jaxmicro.data import make_dataset, read_metadata
from jaxmicro.train import fit, fit_vae

HERE = Path(__file__).parent
REPO = HERE.parents[1]
analysis = load_file_module(HERE / "analysis.py")
CONDITIONS = ("n_grains", "mean_sphericity")


def dataset(cfg, folder: Path, n: int, seed: int) -> Path:
    """A ``voronoi-rgb`` dataset folder of ``n`` volumes (made once)."""
    if not (folder / "metadata.json").is_file():
        make_dataset(
            "voronoi-rgb",
            folder,
            num_samples=n,
            size=cfg.size,
            dim=3,
            seed=seed,
            grains=cfg.grains,
            regularity=cfg.regularity,
            n_colors=cfg.num_colors,
            overwrite=True,  # a folder left by an interrupted first call
        )
    return folder


def train(cfg, out: Path) -> tuple[Path, Path]:
    """Trains (or continues) the VAE and the latent UNet; returns their run folders."""
    data = dataset(cfg, out / "data", cfg.num_volumes, cfg.seed)
    vae = dataclasses.replace(
        cfg.vae, data=dataclasses.replace(cfg.vae.data, path=str(data.absolute()))
    )
    fit_vae(vae, out / "vae", resume=True)
    diffusion = dataclasses.replace(
        cfg.diffusion,
        data=dataclasses.replace(cfg.diffusion.data, path=str(data.absolute())),
        autoencoder=str((out / "vae").absolute()),
    )
    fit(diffusion, out / "unet", resume=True)
    return out / "vae", out / "unet"


# ---- evaluation ---------------------------------------------------------------------------------


def volumes(folder: Path, limit: int | None = None) -> np.ndarray:
    """The RGB volumes ``(N, D, H, W, 3)`` of a dataset folder, in dataset order."""
    meta = read_metadata(folder)
    arrays = []
    for shard in meta["shards"]:
        with np.load(folder / shard["file"], allow_pickle=False) as z:
            arrays.append(z["x"])
        if limit is not None and sum(len(a) for a in arrays) >= limit:
            break
    return np.concatenate(arrays)[:limit]


def labels(folder: Path) -> dict[str, np.ndarray]:
    """The conditioning labels of a dataset folder, ``name -> (N,)``."""
    rows = read_metadata(folder)["labels"]
    return {name: np.asarray([r[name] for r in rows], np.float64) for name in CONDITIONS}


def reference_sets(cfg, out: Path) -> tuple[Path, Path]:
    """Two independent reference sets of ``cfg.num_reference`` volumes (seeds ``seed + 1``,
    ``seed + 2``; training data use ``seed``): A for Table 1, B for the A-vs-B floor."""
    a = dataset(cfg, out / "reference-a", cfg.num_reference, cfg.seed + 1)
    b = dataset(cfg, out / "reference-b", cfg.num_reference, cfg.seed + 2)
    return a, b


def plan(cfg, train_labels: dict, reference_labels: dict) -> dict:
    """Every sample setting: ``name -> {'n', 'values' (name -> (n,) or None), 'guidance'}``,
    plus the targets of the control experiments (deterministic in ``cfg.seed``).

    ``control`` holds, in order, the random and the fixed grain-count targets (sphericity at the
    dataset mean), then the random and fixed sphericity targets (grain count at the mean).
    Random grain counts are integers uniform in ``cfg.grains``; sphericities uniform between the
    5th and 95th percentiles of the training labels.
    """
    rng = np.random.default_rng(cfg.seed)
    lo, hi = cfg.grains
    s_lo, s_hi = np.percentile(train_labels["mean_sphericity"], [5, 95])
    mean = {k: float(np.mean(v)) for k, v in train_labels.items()}
    frac = np.asarray(cfg.target_fractions)
    targets = {
        "n_grains": {
            "random": rng.integers(lo, hi + 1, cfg.num_targets).astype(np.float64),
            "fixed": np.round(lo + frac * (hi - lo)),
        },
        "mean_sphericity": {
            "random": rng.uniform(s_lo, s_hi, cfg.num_targets),
            "fixed": np.round(s_lo + frac * (s_hi - s_lo), 4),
        },
    }
    values = {k: [] for k in CONDITIONS}
    for name in CONDITIONS:
        (other,) = set(CONDITIONS) - {name}
        t = np.concatenate(
            [targets[name]["random"], np.repeat(targets[name]["fixed"], cfg.repeats)]
        )
        values[name].append(t)
        values[other].append(np.full(t.size, mean[other]))
    control = {k: np.concatenate(v) for k, v in values.items()}
    n_ref = len(reference_labels["n_grains"])
    rows = np.arange(cfg.num_generated) % n_ref
    sweep_values = {k: v[rows] for k, v in reference_labels.items()}
    settings = {
        "unconditional": {"n": cfg.num_generated, "values": None, "guidance": None},
        "control": {
            "n": len(control["n_grains"]),
            "values": control,
            "guidance": cfg.guidance_scale,
        },
    }
    for s in cfg.guidance_scales:
        if s != 0:  # scale 0 is the unconditional model: the unconditional set
            settings[f"guidance-{s:g}"] = {
                "n": cfg.num_generated,
                "values": sweep_values,
                "guidance": float(s),
            }
    return {"settings": settings, "targets": targets, "sweep_values": sweep_values}


def _spec(setting: dict) -> dict:
    values = setting["values"]
    return {
        "n": setting["n"],
        "guidance": setting["guidance"],
        "values": None
        if values is None
        else {k: np.round(v, 6).tolist() for k, v in values.items()},
    }


def cached_samples(out: Path, name: str, setting: dict, sample_fn, seed: int) -> np.ndarray:
    """The samples of one setting: ``<out>/samples/<name>.npy`` if it was drawn for the same
    setting (``<name>.json``), else drawn by ``sample_fn(key, n, values, guidance)`` and saved.
    The key is ``fold_in(key(seed), crc32(name))``, so a setting's samples do not depend on
    which other settings exist."""
    import jax

    folder = out / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    spec = _spec(setting)
    path, side = folder / f"{name}.npy", folder / f"{name}.json"
    if path.is_file() and side.is_file() and json.loads(side.read_text()) == spec:
        return np.load(path, allow_pickle=False)
    key = jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)
    x = np.asarray(sample_fn(key, setting["n"], setting["values"], setting["guidance"]), np.float32)
    if x.shape[0] != setting["n"] or x.ndim != 5:
        raise ValueError(f"sample_fn: expected ({setting['n']}, D, H, W, 3), got {x.shape}")
    np.save(folder / f"{name}.tmp.npy", x)
    (folder / f"{name}.tmp.npy").replace(path)  # a complete file or none
    side.write_text(json.dumps(spec))
    return x


def model_sampler(cfg, model):
    """``sample_fn(key, n, values, guidance)`` of a loaded model: DDIM with ``cfg.sampler_steps``
    steps, physical condition values (``name -> (n,)``) or None (unconditional)."""
    from jaxmicro.train import generate

    def sample(key, n, values, guidance):
        conditions = None if values is None else model.conditions(values)
        return generate(
            key,
            model,
            n,
            steps=cfg.sampler_steps,
            conditions=conditions,
            guidance_scale=None if values is None else guidance,
            batch_size=cfg.sample_batch_size,
        )

    return sample


def _options(cfg) -> dict:
    return {
        "min_size": cfg.min_grain_size,
        "periodic": cfg.periodic,
        "watershed_h": cfg.watershed_h,
    }


def evaluate(cfg, out: Path, sample_fn, *, vgg_params=None) -> dict:
    """The evaluation stage: draws (or reloads) every setting's samples, analyses them and
    writes ``results.json``, ``report.md``, the PNGs and the CPFEM files into ``out``.

    Args:
        cfg: the experiment config.
        out: the run folder (``data/`` must exist: its labels give the condition ranges).
        sample_fn: ``(key, n, values, guidance) -> (n, D, H, W, 3)`` (:func:`model_sampler`).
        vgg_params: VGG-19 parameters; None loads them with ``jaxmicro.metrics.load_vgg19``
            and, when that fails, reports why instead of a score.

    Returns:
        The results dict (also in ``results.json``, with ``complete: true`` written last).
    """
    palette = analysis.palette_colors(cfg.num_colors)
    opts = _options(cfg)
    ref_a, ref_b = reference_sets(cfg, out)
    p = plan(cfg, labels(out / "data"), labels(ref_a))
    samples = {
        name: cached_samples(out, name, setting, sample_fn, cfg.seed)
        for name, setting in p["settings"].items()
    }
    vol_a, vol_b = volumes(ref_a), volumes(ref_b)
    an_a, an_b = analysis.analyze(vol_a, palette, **opts), analysis.analyze(vol_b, palette, **opts)
    an_u = analysis.analyze(samples["unconditional"], palette, **opts)

    vgg_note = None
    if vgg_params is None:
        vgg_params, vgg_note = analysis.load_vgg()
    if vgg_params is not None:
        anchor = analysis.vgg_slices(
            volumes(out / "data", cfg.num_reference), palette, seed=cfg.seed
        )
        for i, (an, vols) in enumerate(
            ((an_a, vol_a), (an_b, vol_b), (an_u, samples["unconditional"]))
        ):
            slices = analysis.vgg_slices(vols, palette, seed=cfg.seed + 1 + i)
            an["vgg_score"] = analysis.vgg_scores(vgg_params, slices, anchor)
        vgg_note = "per-slice Gram scores against the training slices' mean Gram matrices"

    table1 = {
        "generated": analysis.table1(an_u, an_a),
        "floor": analysis.table1(an_b, an_a),
        "num_generated": int(len(samples["unconditional"])),
        "num_reference": int(len(vol_a)),
        "grains_generated": int(an_u["grain_size"].size),
        "grains_reference": int(an_a["grain_size"].size),
        "mean_n_grains": {
            "generated": float(an_u["n_grains"].mean()),
            "reference": float(an_a["n_grains"].mean()),
        },
    }
    analysis.plot_histograms(out / "histograms.png", an_u, an_a, floor=an_b)

    # Fig. 3: control and repeatability
    an_c = analysis.analyze(samples["control"], palette, **opts)
    control, start = {"guidance_scale": cfg.guidance_scale}, 0
    for name in CONDITIONS:
        t = p["targets"][name]
        n_rand, n_fix = len(t["random"]), len(t["fixed"]) * cfg.repeats
        achieved = an_c[name][start : start + n_rand]
        fixed = an_c[name][start + n_rand : start + n_rand + n_fix].reshape(len(t["fixed"]), -1)
        control[name] = {
            "random": analysis.control(t["random"], achieved),
            "repeatability": analysis.repeatability(t["fixed"], fixed),
        }
        analysis.plot_control(
            out / f"control_{name}.png",
            control[name]["random"],
            name,
            control[name]["repeatability"],
        )
        first = samples["control"][start + n_rand : start + n_rand + n_fix : cfg.repeats]
        titles = [f"{name} = {v:g}: {m:.3g}" for v, m in zip(t["fixed"], fixed[:, 0], strict=True)]
        analysis.plot_slices(out / f"slices_{name}.png", first, titles)
        start += n_rand + n_fix

    # guidance sweep (scale 0: the unconditional set, which ignores the targets)
    guidance = []
    for s in cfg.guidance_scales:
        an = an_u if s == 0 else analysis.analyze(samples[f"guidance-{s:g}"], palette, **opts)
        row = {
            "scale": float(s),
            "table1": analysis.table1(
                {k: an[k] for k in analysis.PROPERTIES}, {k: an_a[k] for k in analysis.PROPERTIES}
            ),
        }
        for name in CONDITIONS:
            row[f"r2_{name}"] = analysis.control(p["sweep_values"][name], an[name])["r2"]
        guidance.append(row)

    # CPFEM hand-off: the first unconditional sample
    quats = analysis.colour_orientations(cfg.num_colors, cfg.seed)
    cpfem = analysis.write_cpfem(out / "cpfem", samples["unconditional"][0], palette, quats, **opts)
    cpfem["orientations"] = (
        f"{cfg.num_colors} orientations uniform on SO(3) from jax.random.key({cfg.seed}), "
        "one per colour"
    )
    cpfem["quats"] = quats.tolist()

    results = {
        "name": cfg.name,
        "config": {
            "size": cfg.size,
            "grains": list(cfg.grains),
            "sampler_steps": cfg.sampler_steps,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
        },
        "vgg": vgg_note,
        "table1": table1,
        "control": control,
        "guidance": guidance,
        "cpfem": cpfem,
        "complete": False,
    }
    analysis.write_report(out, results)
    results["complete"] = True
    analysis.write_report(out, results)
    return results


def training_record(run: Path) -> dict:
    """Steps, final logged loss and logged wall minutes (summed over resumed calls) of a run."""
    from jaxmicro.train import logged_seconds, read_metrics

    rows = read_metrics(run)
    return {
        "steps": rows[-1]["step"],
        "loss": round(rows[-1]["loss"], 4),
        "minutes": round(logged_seconds(rows) / 60, 1),
    }


def _round(value: float | None) -> float | None:
    """``value`` rounded to 4 decimals for a model card; None (not measurable) stays None."""
    return None if value is None else round(value, 4)


def _rounded(table: dict) -> dict:
    """``{statistic: {measure: value}}`` with the values rounded to 4 decimals (model cards)."""
    return {k: {m: _round(v) for m, v in d.items()} for k, d in table.items()}


def export(cfg, out: Path, dest: Path | None = None) -> Path | None:
    """Writes the shipped model ``cfg.export_name`` from ``<out>/unet`` once ``results.json``
    says the evaluation finished; returns its folder, or None when there is nothing to do."""
    from jaxmicro.train import export_model

    path = out / "results.json"
    if cfg.export_name is None or not path.is_file():
        return None
    results = json.loads(path.read_text())
    if not results.get("complete"):
        return None
    dest = dest or REPO / "jaxmicro" / "pretrained" / "models" / cfg.export_name
    t1 = results["table1"]
    card = {
        "name": cfg.export_name,
        "paper": "PolyCrysDiff: conditional latent diffusion of 3D polycrystals (Table 1, Fig. 3)",
        "generates": (
            f"{cfg.size}^3 x 3 RGB Voronoi polycrystals in [-1, 1] ({cfg.num_colors} colours), "
            f"conditioned on n_grains ({cfg.grains[0]}-{cfg.grains[1]}) and mean_sphericity"
        ),
        "metrics": {
            "table1": _rounded(t1["generated"]),
            "table1_floor": _rounded(t1["floor"]),
            "r2_n_grains": _round(results["control"]["n_grains"]["random"]["r2"]),
            "r2_mean_sphericity": _round(results["control"]["mean_sphericity"]["random"]["r2"]),
            "guidance_scale": results["control"]["guidance_scale"],
            "sampler_steps": cfg.sampler_steps,
        },
        "training": {name: training_record(out / name) for name in ("vae", "unet")},
        "data_command": (
            "python -c \"from jaxmicro.data import make_dataset; make_dataset('voronoi-rgb', "
            f"'DIR', num_samples={cfg.num_volumes}, size={cfg.size}, dim=3, seed={cfg.seed}, "
            f"grains={tuple(cfg.grains)}, regularity={tuple(cfg.regularity)}, "
            f'n_colors={cfg.num_colors})"'
        ),
        "command": (
            f"jaxmicro sample --model {cfg.export_name} --condition n_grains=20 "
            "--condition mean_sphericity=0.86 -n 8 --out DIR"
        ),
    }
    return export_model(out / "unet", dest, card=card, overwrite=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="smoke", choices=("smoke", "paper"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--stage", choices=("train", "evaluate", "export", "all"), default="all")
    args = parser.parse_args(argv)
    cfg = load_file_module(HERE / "config.py").get_config(args.variant)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.stage in ("train", "all"):
        train(cfg, out)
    if args.stage in ("evaluate", "all"):
        from jaxmicro.train import load_model

        evaluate(cfg, out, model_sampler(cfg, load_model(out / "unet")))
    if args.stage in ("export", "all"):
        dest = export(cfg, out)
        print(f"exported {dest}" if dest else "export: nothing to export (no finished evaluation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
