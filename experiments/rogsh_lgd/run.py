"""Runs the ROGSH-LGD experiment (see config.py for the commands and the variants).

Stages, each resumed where a previous run stopped:

- ``data``: each reference map (``<out>/<ref>/reference.npy``, unit quaternions, and
  ``meta.json``) and, per representation, ``cfg.num_patches`` random periodic patches of its
  channels written as a dataset (``<out>/<ref>/<rep>/data``, ``jaxmicro.data.write_dataset``);
- ``train``: one UNet per (reference, representation) (``jaxmicro.train.fit``, resumed);
- ``evaluate``: GRF check (Figs. 3-4), LGD sets (cached in ``<out>/<ref>/samples/``), the
  first-order baseline, Table 1 in the harmonic expansion, chord lengths, the two 1-point
  weightings; ``results.json`` (``complete: true`` last), ``report.md`` and PNGs;
- ``export``: the shipped model ``cfg.export_name`` from the first reference's ROGSH run, once
  the evaluation completed.

``--stage all`` runs them in order; see docs/rogsh_lgd.md.
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
analysis = load_file_module(HERE / "analysis.py")
references = load_file_module(HERE / "references.py")
STAGES = ("data", "train", "evaluate", "export")


def ref_key(rc) -> str:
    """Folder name of a reference: its name, or the stem of its file."""
    return rc.name if rc.name in ("ti64", "inconel") else Path(rc.name).stem


def _timed(out: Path, name: str, fn, *args, **kwargs):
    """Runs ``fn`` and adds its wall time to ``<out>/timings.json`` under ``name``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    path = out / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
    path.write_text(json.dumps(timings, indent=1))
    return result


def _save(path: Path, x: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, x)
    tmp.replace(path)  # a complete file or none


def _cached(folder: Path, tag: str, spec: dict, make) -> np.ndarray:
    """``<folder>/<tag>.npy`` when its ``<tag>.json`` holds ``spec``, else ``make()``, saved."""
    folder.mkdir(parents=True, exist_ok=True)
    path, side = folder / f"{tag}.npy", folder / f"{tag}.json"
    if path.is_file() and side.is_file() and json.loads(side.read_text()) == spec:
        return np.load(path)
    x = make()
    _save(path, x)
    side.write_text(json.dumps(spec))
    return x


# ---- data --------------------------------------------------------------------------------------


def reference(cfg, rc, out: Path) -> tuple[np.ndarray, str, np.ndarray | None]:
    """The reference map ``(quats (*shape, 4), symmetry, ids or None)``, made once."""
    folder = out / ref_key(rc)
    folder.mkdir(parents=True, exist_ok=True)
    path, meta = folder / "reference.npy", folder / "meta.json"
    if path.is_file() and meta.is_file():
        m = json.loads(meta.read_text())
        ids = np.load(folder / "ids.npy") if (folder / "ids.npy").is_file() else None
        return np.load(path), m["symmetry"], ids
    q, symmetry, ids = references.make_reference(rc.name, rc.seed, tuple(rc.shape))
    if ids is not None:
        np.save(folder / "ids.npy", ids)
    _save(path, q)
    meta.write_text(
        json.dumps({"name": rc.name, "symmetry": symmetry, "shape": list(q.shape[:-1])})
    )
    return q, symmetry, ids


def dataset(cfg, rc, rep: str, out: Path) -> Path:
    """The patch dataset of one reference and representation (written once)."""
    from jaxmicro.data import write_dataset

    folder = out / ref_key(rc) / rep / "data"
    if (folder / "metadata.json").is_file():
        return folder
    q, symmetry, _ = reference(cfg, rc, out)
    field = analysis.encode(q, symmetry, rep)
    seed = cfg.seed + zlib.crc32(ref_key(rc).encode())
    patches = crops(field, rc.patch, cfg.num_patches, seed, wrap=_synthetic(rc))
    write_dataset(
        folder,
        patches,
        kind=f"rogsh-lgd-{rep}",
        overwrite=True,  # a folder left by an interrupted first call
        extra={"reference": rc.name, "symmetry": symmetry, "representation": rep},
    )
    return folder


def _synthetic(rc) -> bool:
    """Synthetic references are periodic; an EBSD map is not."""
    return rc.name in ("ti64", "inconel")


def crops(field: np.ndarray, size: int, n: int, seed: int, *, wrap: bool) -> np.ndarray:
    """``n`` square patches ``(n, size, size, C)`` at uniform random corners; with ``wrap`` the
    map is periodic and patches wrap around, else they lie inside it."""
    rng = np.random.default_rng(seed)
    h, w = field.shape[:2]
    high = (h, w) if wrap else (h - size + 1, w - size + 1)
    corners = rng.integers(0, high, (n, 2))
    i = (corners[:, 0, None] + np.arange(size)) % h
    j = (corners[:, 1, None] + np.arange(size)) % w
    return field[i[:, :, None], j[:, None, :]]


def data(cfg, out: Path) -> None:
    for rc in cfg.references:
        reference(cfg, rc, out)
        for rep in cfg.representations:
            dataset(cfg, rc, rep, out)


# ---- training ----------------------------------------------------------------------------------


def train(cfg, out: Path) -> None:
    """Trains (or continues) one UNet per reference and representation."""
    from jaxmicro.train import fit

    for rc in cfg.references:
        for rep in cfg.representations:
            folder = dataset(cfg, rc, rep, out)
            config = dataclasses.replace(
                cfg.train,
                name=f"{cfg.train.name}_{ref_key(rc)}_{rep}",
                model=rc.model or cfg.train.model,
                data=dataclasses.replace(cfg.train.data, path=str(folder.absolute())),
            )
            _timed(
                out,
                f"train {ref_key(rc)} {rep}",
                fit,
                config,
                out / ref_key(rc) / rep / "unet",
                resume=True,
                progress=False,
            )


# ---- evaluation --------------------------------------------------------------------------------


def lgd_set(cfg, rc, rep: str, out: Path, field: np.ndarray, n: int, strength: float, tag: str):
    """``n`` LGD maps of one representation, cached in ``<out>/<ref>/samples/<tag>.npy``."""
    from jaxmicro.lgd import lgd_run
    from jaxmicro.train import load_model

    spec = {
        "n": n,
        "strength": strength,
        "t0": rc.t0,
        "steps": cfg.lgd_steps,
        "shape": list(cfg.generated_shape),
    }

    def make():
        model = load_model(out / ref_key(rc) / rep / "unet")
        t0 = min(rc.t0, model.schedule.num_steps)
        return lgd_run(
            model,
            field,
            n,
            seed=cfg.seed + zlib.crc32(tag.encode()) % 1000,
            batch_size=cfg.batch_size,
            progress=False,
            t0=t0,
            strength=strength,
            num_steps=None if cfg.lgd_steps is None else min(cfg.lgd_steps, t0),
            shape=tuple(cfg.generated_shape),
        )["samples"]

    return _cached(out / ref_key(rc) / "samples", tag, spec, make)


def grf_check(cfg, field: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """Figs. 3-4: the GRF's mean 2-point map (auto-correlations) and 1-point against the
    reference's; returns the summary and the two maps ``(C, 2L+1, 2L+1)``."""
    import jax

    from jaxmicro import fields

    stats, means, done = 0.0, 0.0, 0
    key = jax.random.key(cfg.seed)
    while done < cfg.num_grf:
        n = min(16, cfg.num_grf - done)
        x = fields.grf_from_reference(jax.random.fold_in(key, done), field, n)
        x = np.asarray(x)
        for m in x:
            stats = stats + analysis.auto_correlations(m, cfg.max_lag, periodic=True)
        means = means + x.mean(axis=(1, 2)).sum(0)
        done += n
    grf = stats / done
    ref = analysis.auto_correlations(field, cfg.max_lag, periodic=True)
    summary = {
        "num_samples": done,
        "max_rel_error": float(np.abs(grf - ref).max() / np.abs(ref).max()),
        "one_point_error": float(np.abs(means / done - field.mean(axis=(0, 1))).max()),
    }
    return summary, ref, grf


def evaluate_reference(cfg, rc, out: Path) -> dict:
    """Every number and figure of one reference."""
    import jax

    q_ref, symmetry, _ = reference(cfg, rc, out)
    key = ref_key(rc)
    periodic = _synthetic(rc)
    fields = {rep: analysis.encode(q_ref, symmetry, rep) for rep in cfg.representations}
    rogsh_field = fields.get("rogsh", analysis.encode(q_ref, symmetry, "rogsh"))
    grf, grf_ref, grf_mean = _timed(out, f"grf {key}", grf_check, cfg, rogsh_field)
    names = ["ROGSH 1", "ROGSH 2", "ROGSH 3"]
    analysis.plot_grf(out / f"grf_{key}.png", grf_ref, grf_mean, names)

    samples, maps = {}, {}
    for rep in cfg.representations:
        samples[rep] = _timed(
            out,
            f"lgd {key} {rep}",
            lgd_set,
            cfg,
            rc,
            rep,
            out,
            fields[rep],
            cfg.num_generated,
            1.0,
            rep,
        )
        maps[rep] = analysis.decode(samples[rep], symmetry, rep)
    n_pixels = int(np.prod(cfg.generated_shape))
    soft = None
    if "rogsh" in cfg.representations and cfg.num_correction > 0:
        soft = _timed(
            out,
            f"lgd {key} rogsh 1/N",
            lgd_set,
            cfg,
            rc,
            "rogsh",
            out,
            rogsh_field,
            cfg.num_correction,
            1.0 / n_pixels,
            "rogsh-soft",
        )
    stats = analysis.first_order_statistics(q_ref, symmetry, periodic)
    bkey = jax.random.fold_in(
        jax.random.key(cfg.seed), zlib.crc32(f"first-order {key}".encode()) & 0x7FFFFFFF
    )
    maps["first_order"] = _timed(
        out,
        f"first-order {key}",
        analysis.first_order,
        bkey,
        q_ref,
        stats,
        cfg.generated_shape,
        cfg.num_generated,
    )
    if periodic:  # made once: a 1024^2 Inconel-like map takes about a minute
        args = (rc.name, rc.seed, tuple(rc.shape), tuple(cfg.generated_shape), cfg.num_ideal)
        maps["ideal"] = _timed(
            out,
            f"ideal {key}",
            _cached,
            out / key / "samples",
            "ideal",
            {"realizations": json.loads(json.dumps(args))},  # as read back
            lambda: references.realizations(*args),
        )

    def table():
        t = {name: analysis.errors(m, q_ref, symmetry, cfg.max_lag) for name, m in maps.items()}
        t["floor"] = analysis.floor(q_ref, symmetry, cfg.max_lag)
        return t

    t1 = _timed(out, f"metrics {key}", table)
    correction = {}
    if soft is not None:
        hard = t1["rogsh"]["odf_per_map"][: cfg.num_correction]
        soft_err = analysis.errors(
            analysis.decode(soft, symmetry, "rogsh"), q_ref, symmetry, cfg.max_lag
        )
        correction = {
            "hard (default)": {"strength": 1.0, "odf_mse": float(np.mean(hard)), "n": len(hard)},
            "reference code 1/N": {
                "strength": 1.0 / n_pixels,
                "odf_mse": soft_err["odf_mse"],
                "n": len(soft),
            },
        }

    chords = {"reference": analysis.chord_lengths(q_ref, symmetry)}
    for name, m in maps.items():
        chords[name] = analysis.pooled_chord_lengths(m[:4], symmetry)
    analysis.plot_chords(out / f"chords_{key}.png", chords)
    h, w = cfg.generated_shape
    panels = {"reference (crop)": q_ref[:h, :w]}
    panels.update({name.replace("_", "-"): m[0] for name, m in maps.items()})
    analysis.plot_maps(out / f"maps_{key}.png", panels, symmetry)
    figures = [f"grf_{key}.png", f"maps_{key}.png", f"chords_{key}.png"]
    if "rogsh" in samples:

        def tp(m):
            return analysis.auto_correlations(np.asarray(m), cfg.max_lag)

        gen = np.mean([tp(x) for x in samples["rogsh"]], axis=0)
        analysis.plot_two_point(out / f"two_point_{key}.png", tp(rogsh_field), gen, names)
        figures.append(f"two_point_{key}.png")
    return {
        "symmetry": symmetry,
        "shape": list(q_ref.shape[:-1]),
        "generated_shape": list(cfg.generated_shape),
        "num_generated": cfg.num_generated,
        "patch": rc.patch,
        "t0": rc.t0,
        "global_model": rc.global_model,
        "grf": grf,
        "table1": {
            k: {
                m: v[m]
                for m in ("odf_mse", "two_point_mse", "odf_mse_pooled", "two_point_mse_pooled")
            }
            for k, v in t1.items()
        },
        "correction": correction,
        "first_order_matched": {
            "grains": int(len(stats["areas"])),
            "mean_area": float(np.mean(stats["areas"])),
            "elongation": stats["elongation"],
        },
        "mean_chords": {
            k: [
                float(np.mean(c[0])) if len(c[0]) else 0.0,
                float(np.mean(c[1])) if len(c[1]) else 0.0,
            ]
            for k, c in chords.items()
        },
        "figures": figures,
    }


def evaluate(cfg, out: Path) -> dict:
    """The evaluation stage: ``results.json``, ``report.md`` and PNGs in ``out``."""
    symmetries = {}
    results = {"name": cfg.name, "references": {}, "complete": False}
    for rc in cfg.references:
        r = evaluate_reference(cfg, rc, out)
        results["references"][ref_key(rc)] = r
        symmetries[r["symmetry"]] = analysis.harmonic_count(r["symmetry"])
        results["harmonic_counts"] = symmetries
        analysis.write_report(out, results)
    path = out / "timings.json"
    results["timings"] = json.loads(path.read_text()) if path.is_file() else {}
    results["complete"] = True
    analysis.write_report(out, results)
    return results


# ---- export ------------------------------------------------------------------------------------


def export(cfg, out: Path, dest: Path | None = None) -> Path | None:
    """Writes the shipped model from the first reference's ROGSH run once the evaluation
    completed; returns its folder, or None when there is nothing to do."""
    from jaxmicro.train import export_model

    path = out / "results.json"
    if cfg.export_name is None or not path.is_file() or "rogsh" not in cfg.representations:
        return None
    results = json.loads(path.read_text())
    if not results.get("complete"):
        return None
    rc = cfg.references[0]
    key = ref_key(rc)
    r = results["references"][key]
    q, symmetry, _ = reference(cfg, rc, out)
    folder = out / "export-files"
    folder.mkdir(exist_ok=True)
    np.save(folder / "reference.npy", q.astype(np.float32))
    np.save(folder / "reference_field.npy", analysis.encode(q, symmetry, "rogsh"))
    dest = dest or REPO / "jaxmicro" / "pretrained" / "models" / cfg.export_name
    steps = None if cfg.lgd_steps is None else min(cfg.lgd_steps, rc.t0)
    variant = cfg.name.rsplit("_", 1)[-1]  # rogsh_lgd_<variant>
    card = {
        "name": cfg.export_name,
        "paper": (
            "Buzzy, Robertson & Kalidindi, Acta Mater. 2024: ROGSH Local-Global Decomposition "
            "(Table 1)"
        ),
        "generates": (
            f"ROGSH coefficient fields (3 channels) of a {symmetry} {key}-like synthetic map "
            f"({r['shape'][0]}x{r['shape'][1]}, elongated grains, banded texture) and their "
            "orientations, with the reference's 1- and 2-point statistics (GRF + truncated "
            f"diffusion from t0 = {rc.t0}); trained on {rc.patch}^2 patches"
        ),
        "metrics": {
            "table1": r["table1"],
            "harmonic_functions": results["harmonic_counts"][symmetry],
            "generated_shape": r["generated_shape"],
            "num_generated": r["num_generated"],
            "grf": r["grf"],
            "correction": r["correction"],
        },
        "data_command": (
            f"python experiments/rogsh_lgd/run.py --variant {variant} --out DIR --stage data "
            f"(reference: experiments/rogsh_lgd/references.py {rc.name}, seed {rc.seed}, "
            f"shape {tuple(rc.shape)}; {cfg.num_patches} random {rc.patch}^2 patches)"
        ),
        "train_command": f"python experiments/rogsh_lgd/run.py --variant {variant} --out DIR",
        "command": f"jaxmicro lgd --model {cfg.export_name} --shape 128,128 -n 4 --out DIR",
        "lgd": {"symmetry": symmetry, "basis": "rogsh", "t0": rc.t0, "num_steps": steps},
    }
    return export_model(
        out / key / "rogsh" / "unet",
        dest,
        card=card,
        files=(folder / "reference.npy", folder / "reference_field.npy"),
        overwrite=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", default="smoke", choices=("smoke", "paper", "tiny"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all")
    parser.add_argument(
        "--reference", default=None, help=".ang / .ctf map replacing the synthetic references"
    )
    parser.add_argument("--export-dest", default=None, help="export folder (default: the registry)")
    parser.add_argument(
        "--no-compilation-cache",
        action="store_true",
        help="do not keep compiled programs in <out>/jax-cache",
    )
    args = parser.parse_args(argv)
    cfg = load_file_module(HERE / "config.py").get_config(args.variant)
    if args.reference:
        first = cfg.references[0]
        cfg = dataclasses.replace(
            cfg,
            references=(dataclasses.replace(first, name=str(Path(args.reference).absolute())),),
            export_name=None,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_compilation_cache:
        import jax

        # The two representations of a reference train (and sample) networks of one structure
        # on data of one shape: their compiled steps are reused, as on every resumed run.
        jax.config.update("jax_compilation_cache_dir", str((out / "jax-cache").absolute()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)
    stages = STAGES if args.stage == "all" else (args.stage,)
    if "data" in stages:
        _timed(out, "data", data, cfg, out)
    if "train" in stages:
        train(cfg, out)
    if "evaluate" in stages:
        evaluate(cfg, out)
        print(f"report: {out / 'report.md'}")
    if "export" in stages:
        dest = export(cfg, out, Path(args.export_dest) if args.export_dest else None)
        print(f"exported {dest}" if dest else "export: nothing to export (no finished evaluation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
