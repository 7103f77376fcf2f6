"""experiments/grainpaint: config variants, the study's choices, the example part, the
tiny variant end to end (data -> train -> study -> export), resuming where it stopped, and the
denoiser probe (probe.py)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from jaxmicro._modules import load_file_module
from jaxmicro.nn import unet_config
from jaxmicro.outpaint import mask_surface, read_stl, voxelize

ROOT = Path(__file__).resolve().parents[1] / "experiments" / "grainpaint"


config, run = load_file_module(ROOT / "config.py"), load_file_module(ROOT / "run.py")


def test_paper_variant_follows_grainpaint():
    paper = config.get_config("paper")
    train = paper.train.validate()
    assert (train.num_diffusion_steps, train.beta_start, train.beta_end) == (250, 1e-4, 0.02)
    assert train.schedule == "linear" and train.data.representation == "grain-values"
    assert train.model == unet_config("grainpaint_6m")  # the network of benchmarks/unet.py
    assert paper.schedules == ("linear", "linear_zero_snr")
    assert paper.block == 32 and paper.plain_tail == 25 and max(paper.resamplings) == 10
    # Reference volumes keep the training volumes' Voronoi seed density.
    assert paper.reference_initial_grains == round(20_000 * 1.28**3)
    zero = run.train_config(paper, "linear_zero_snr", Path("blocks")).validate()
    assert zero.parameterization == "v" and zero.data.path == "blocks"
    runs = run.sampler_runs(paper)
    assert list(runs)[0] == "U1" and list(runs)[-1] == "U10"  # cheap first, U = 10 last
    assert runs["steps50_U10_j1_eta1"] == dict(
        resample=10, jump=1, plain_tail=5, num_steps=50, eta=1.0
    )
    assert run._calls(paper, runs["U10"]) == 250 + 9 * 225
    with pytest.raises(ValueError, match="variant"):
        config.get_config("huge")


def test_only_smoke_exports_to_the_registry(tmp_path):
    names = {v: config.get_config(v).export_name for v in ("smoke", "paper", "tiny")}
    assert names == {"smoke": "grainpaint-small", "paper": None, "tiny": None}
    # nothing to measure without a folder: refused before any work
    with pytest.raises(ValueError, match="export_to"):
        run.run(config.get_config("paper"), tmp_path / "out", stages=("data", "measure"))
    assert not (tmp_path / "out").exists()


def test_the_fast_sampler_is_the_cheapest_within_twice_the_floor():
    smoke = config.get_config("smoke")
    runs = run.sampler_runs(smoke)
    floor = dict.fromkeys(run.TABLE1, 0.05)

    def row(name, worst):
        kl = dict.fromkeys(run.TABLE1, 0.05 * worst)
        return {
            "sampler": runs[name],
            "calls": run._calls(smoke, runs[name]),
            "kl": kl,
            "ratio_to_floor": {k: kl[k] / floor[k] for k in kl},
        }

    results = {
        "floor": {"kl": floor},
        "schedules": {
            "linear": {
                "U1": row("U1", 5.0),
                "steps25_U10_j1_eta1": row("steps25_U10_j1_eta1", 2.5),  # too far
                "steps50_U10_j1_eta1": row("steps50_U10_j1_eta1", 1.9),
                "steps50_U5_j5_eta1": row("steps50_U5_j5_eta1", 1.5),
                "U10": row("U10", 1.2),
            },
            "linear_zero_snr": {"U1": row("U1", 3.0), "U10": row("U10", 1.1)},
        },
    }
    choice = run.choose(smoke, results)
    assert choice["compared_on"] == ["U1", "U10"] and not choice["exportable"]
    assert choice["schedule_scores"]["linear_zero_snr"] == pytest.approx((3.0 + 1.1) / 2)
    assert choice["default_schedule"] == "linear_zero_snr"
    linear = choice["chosen"]["linear"]
    calls = {n: r["calls"] for n, r in results["schedules"]["linear"].items()}
    assert calls["steps50_U5_j5_eta1"] == 50 + 4 * 5 * 9 < calls["steps50_U10_j1_eta1"] == 455
    assert linear["sampler"] == "steps50_U5_j5_eta1"
    assert 5 * linear["calls"] <= choice["top_calls"] == 2275
    none = choice["chosen"]["linear_zero_snr"]
    assert none["sampler"] is None and none["evidence"] == {"U1": pytest.approx(3.0)}


def test_the_example_bracket_is_a_closed_surface_that_voxelizes_back(tmp_path):
    mask = run.bracket_mask(1)
    assert mask.any() and not mask[1, 12, 24]  # the hole goes through the base
    run.write_example_stl(tmp_path / "part.stl")
    triangles = read_stl(tmp_path / "part.stl")
    np.testing.assert_array_equal(voxelize(triangles, 1.0)[0], mask)
    fine, _ = voxelize(triangles, 0.5)
    np.testing.assert_array_equal(fine, mask.repeat(2, 0).repeat(2, 1).repeat(2, 2))
    # Outward normals: a point just outside each face is outside the part.
    tri = mask_surface(mask)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    probe = np.floor(tri.mean(1) + 0.1 * normal).astype(int)
    inside = [
        0 <= i < mask.shape[2]
        and 0 <= j < mask.shape[1]
        and 0 <= k < mask.shape[0]
        and mask[k, j, i]
        for i, j, k in probe
    ]
    assert not any(inside)


def _tiny(**changes):
    return dataclasses.replace(config.get_config("tiny"), **changes)


@pytest.mark.slow  # ~2 min on the loaded 2-core CPU (Potts, training and sampler compilations)
def test_one_schedule_and_sampler_of_the_tiny_variant_run_through_the_study(tmp_path, monkeypatch):
    import jaxmicro.pretrained

    registry = tmp_path / "registry"  # tiny has no registry model: its export writes nothing
    monkeypatch.setattr(jaxmicro.pretrained, "MODELS_DIR", registry)
    cfg = _tiny(schedules=("linear_zero_snr",), resamplings=(1,), fast=())
    results = run.run(cfg, tmp_path, progress=False)
    assert not registry.exists()
    assert results["complete"] and set(results["schedules"]) == {"linear_zero_snr"}
    row = results["schedules"]["linear_zero_snr"]["U1"]
    assert row["calls"] == 10 and row["grains"] >= 1
    assert results["floor"]["grains_measured"] > 0 and results["training"]["linear_zero_snr"]
    for name in ("results.json", "report.md", "loss.png", "slices.png", "histograms.png"):
        assert (tmp_path / name).is_file(), name
    json.loads((tmp_path / "results.json").read_text())  # strict JSON
    assert "| floor (Potts vs Potts) |" in (tmp_path / "report.md").read_text()


@pytest.mark.slow  # ~3-5 min on a shared 2-core CPU (two trainings, six sampler compilations)
def test_the_tiny_variant_runs_every_stage_and_continues_where_it_stopped(tmp_path):
    cfg = config.get_config("tiny")
    out, model = tmp_path / "out", tmp_path / "model"
    # A time limit of zero stops the study before its first outpainting run: nothing exported.
    first = run.run(cfg, out, export_to=model, time_limit=0.0, progress=False)
    assert not first["complete"] and not model.exists()
    assert "not run (time limit)" in (out / "report.md").read_text()
    results = run.run(cfg, out, export_to=model, progress=False)
    assert results["complete"]
    assert set(results["schedules"]["linear"]) == {"U1", "steps4_U2_j1_eta1", "U2"}
    assert results["schedules"]["linear"]["steps4_U2_j1_eta1"]["calls"] == 4 + 1 * 3
    card = json.loads((model / "card.json").read_text())
    assert card["schedule"] == results["default_schedule"] and "outpaint" in card
    reference = np.load(model / "reference.npy")
    assert reference.dtype == np.uint16 and reference.shape == (16, 16, 16)
    assert read_stl(model / "example.stl").shape[1:] == (3, 3)

    # Again: nothing is regenerated, retrained or resampled.
    def files():
        return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    metrics = {s: (out / "train" / s / "metrics.jsonl").read_text() for s in cfg.schedules}
    before = files()
    again = run.run(cfg, out, stages=("data", "train", "study"), progress=False)
    assert again == json.loads(json.dumps(results))
    for schedule, text in metrics.items():  # no more training steps
        assert (out / "train" / schedule / "metrics.jsonl").read_text() == text
    for path, stamp in before.items():
        if path.relative_to(out).parts[0] in ("data", "study"):
            assert path.stat().st_mtime_ns == stamp, path


def test_probe_x0_errors_of_a_denoiser_that_predicts_no_noise():
    """A zero-noise prediction leaves x_t / sqrt(abar): its error is the noisy field's, the
    grain-mean oracle's is that over sqrt(grain volume) (one or two grains per block here)."""
    import jax.numpy as jnp

    from jaxmicro.diffusion import linear_schedule

    probe = load_file_module(ROOT / "probe.py")
    schedule = linear_schedule(250, 1e-4, 0.02)

    ids = np.zeros((64, 8, 8, 8), np.int32)
    ids[32:, :4] = 1  # two grains of 256 voxels in each of the last 32 blocks
    fields = np.where(ids == 0, 0.3, -0.6)
    zero = lambda x, t: jnp.zeros_like(x)  # noqa: E731
    rows = probe.x0_errors(zero, schedule.alpha_bars, ids, fields, levels=(20, 100), seed=3)
    for row in rows.values():
        assert row["network"] == pytest.approx(row["noisy"], rel=1e-6)
        inverse_volume = np.mean([1 / 512, 1 / 256])  # per voxel
        assert row["oracle"] == pytest.approx(row["noisy"] * np.sqrt(inverse_volume), rel=0.25)
        assert row["inner_sd"] == pytest.approx(row["noisy"], rel=0.05)
    assert rows[100]["noisy"] > rows[20]["noisy"]


def test_probe_counts_the_grains_of_exact_grain_value_fields():
    """Region merging is exact on noiseless fields: one segment per face-connected grain."""
    from scipy import ndimage

    probe = load_file_module(ROOT / "probe.py")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, (3, 4, 4, 4)).repeat(2, 1).repeat(2, 2).repeat(2, 3)  # 8^3, blobs
    values = rng.uniform(-1, 1, 6)[ids]
    pieces = [
        sum(ndimage.label(block == g)[1] for g in np.unique(block)) for block in ids
    ]  # face-connected pieces of each grain ID
    counts = probe.block_grains(values)
    assert counts["grains_per_block"] == pytest.approx(np.mean(pieces))
    assert counts["mean_volume"] == pytest.approx(512 / np.mean(pieces))


@pytest.mark.slow
def test_probe_runs_on_the_tiny_variant(tmp_path):
    probe = load_file_module(ROOT / "probe.py")
    assert run.main(["--variant", "tiny", "--out", str(tmp_path), "--stage", "data"]) == 0
    out = tmp_path / "probe"
    assert (
        probe.main(["--variant", "tiny", "--data", str(tmp_path), "--out", str(out), "--n", "2"])
        == 0
    )
    result = json.loads((out / "probe.json").read_text())
    assert list(result["x0"]) == ["5"] and result["steps"] == 2  # tiny: T = 10, 2 steps
    assert (out / "blocks.png").is_file()
    args = ["--variant", "tiny", "--data", str(tmp_path), "--out", str(out), "--level", "3"]
    assert probe.main([*args, "--steps", "100"]) == 0
    fixed = json.loads((out / "fixed_level_3.json").read_text())
    assert len(fixed["loss_per_100"]) == 1 and list(fixed["x0"]) == ["3"]
    with pytest.raises(SystemExit):  # the result is not overwritten
        probe.main([*args, "--steps", "100"])
