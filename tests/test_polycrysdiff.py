"""experiments/polycrysdiff: the §4.2 analysis on Voronoi volumes of known grain count, Table 1
and control figures, the evaluation stage on a fake sampler (report, cache, CPFEM files read
back), and a tiny run end to end through the real training (slow)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from jaxmicro import io, synth
from jaxmicro._modules import load_file_module
from jaxmicro.data import make_dataset

# Module fixtures are built once (--dist loadfile: a module runs on one worker); a long unit.
pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[1] / "experiments" / "polycrysdiff"
config = load_file_module(ROOT / "config.py")
analysis = load_file_module(ROOT / "analysis.py")
run = load_file_module(ROOT / "run.py")
PALETTE = analysis.palette_colors(10)


def test_paper_variant_builds_the_named_latent_unet():
    """One definition of the paper network, and it fits the paper variant's latents and
    conditions."""
    from jaxmicro.nn import unet_config

    paper = config.get_config("paper")
    unet = paper.diffusion.model
    assert unet == unet_config("polycrysdiff_latent")
    assert unet.in_channels == paper.vae.model.latent_channels
    assert unet.num_scalar_conditions == len(paper.diffusion.conditions)
    assert unet.periodic and paper.vae.model.periodic  # the volumes wrap around


@pytest.fixture(scope="module")
def voronoi_set(tmp_path_factory):
    """Six smoke-size (32^3) training-like volumes and their labels."""
    folder = tmp_path_factory.mktemp("pcd") / "data"
    smoke = config.get_config("smoke")
    meta = make_dataset(
        "voronoi-rgb",
        folder,
        num_samples=6,
        size=32,
        seed=3,
        grains=smoke.grains,
        regularity=smoke.regularity,
        progress=False,
    )
    return run.volumes(folder), meta["labels"]


def test_analysis_recovers_the_grains_of_voronoi_volumes(voronoi_set):
    x, labels = voronoi_set
    smoke = config.get_config("smoke")
    result = analysis.analyze(
        x, PALETTE, min_size=smoke.min_grain_size, periodic=True, watershed_h=smoke.watershed_h
    )
    n = np.asarray([r["n_grains"] for r in labels])
    # 10 colours, greedy colouring, periodic connectivity: every grain found, none split by the
    # h = 7 watershed (a grain under 200 voxels would be absorbed: allow one over the set)
    assert np.abs(result["n_grains"] - n).sum() <= 1
    exact = result["n_grains"] == n
    # the control figures' sphericity is the label's estimator on the segmented grains: equal
    # up to the few voxels of a disconnected fragment absorbed by the 200-voxel threshold
    label_psi = np.asarray([r["mean_sphericity"] for r in labels])
    np.testing.assert_allclose(result["mean_sphericity"][exact], label_psi[exact], atol=2e-3)
    assert np.sum(np.abs(result["mean_sphericity"] - label_psi) < 1e-9) >= 4
    # Table 1's marching-cubes sphericity reads ~0.92 of the face-count estimate (docs/grains.md)
    per_volume = np.split(result["sphericity"], np.cumsum(result["n_grains"])[:-1])
    ratio = np.asarray([p.mean() for p in per_volume]) / label_psi
    assert np.all((ratio > 0.88) & (ratio < 0.96)), ratio
    assert result["grain_size"].sum() == x[..., 0].size
    assert np.all((result["aspect_ratio"] > 0) & (result["aspect_ratio"] <= 1))
    np.testing.assert_allclose(result["colour_fractions"].sum(axis=1), 1.0)


def test_table1_of_a_set_against_itself_is_zero_and_control_figures(voronoi_set):
    x, _ = voronoi_set
    a = analysis.analyze(x[:3], PALETTE, min_size=200)
    b = analysis.analyze(x[3:], PALETTE, min_size=200)
    same = analysis.table1(a, a)
    assert set(same) == set(analysis.PROPERTIES)
    assert all(v == {"ks": 0.0, "emd": 0.0} for v in same.values())
    other = analysis.table1(a, b)
    assert all(v["ks"] > 0 and 0 < v["emd"] < 1 for v in other.values())
    assert "vgg_score" in analysis.table1({**a, "vgg_score": [1.0]}, {**b, "vgg_score": [2.0]})

    t = np.arange(10.0)
    perfect = analysis.control(t, t, bins=5)
    assert perfect["r2"] == 1.0 and perfect["binned"]["count"] == [2] * 5
    assert perfect["binned"]["mean"] == [0.5, 2.5, 4.5, 6.5, 8.5]
    noisy = analysis.control(t, t + np.tile([1.0, -1.0], 5), bins=5)
    assert noisy["r2"] == pytest.approx(1 - 10 / 82.5) and noisy["binned"]["sem"][
        0
    ] == pytest.approx(0.5)
    rep = analysis.repeatability([5, 10], [[4, 6], [10, 10]])
    assert rep["mean"] == [5, 10] and rep["std"] == [pytest.approx(np.sqrt(2)), 0]
    with pytest.raises(ValueError, match="achieved"):
        analysis.control(t, t[:3])
    # an untrained model's one-grain volume has no sphericity: left out and counted, not a NaN R^2
    gap = analysis.control(t, np.where(t == 3, np.nan, t))
    assert (
        gap["r2"] == 1.0
        and gap["unmeasured"] == 1
        and analysis.distances([np.nan], t)["ks"] is None
    )


def _voronoi_rgb(rng, size: int, n: int) -> np.ndarray:
    """A periodic Voronoi volume of ``n`` grains, greedy-coloured, in [-1, 1] (NumPy)."""
    seeds = rng.uniform(0, size, (n, 3))
    grid = np.stack(np.indices((size,) * 3), -1).reshape(-1, 1, 3) + 0.5
    d = np.abs(grid - seeds)
    d = np.minimum(d, size - d)
    ids = np.argmin((d**2).sum(-1), axis=1).reshape((size,) * 3)
    ids = np.unique(ids, return_inverse=True)[1].reshape(ids.shape)
    colors = synth.color_grains(ids, 10)
    return PALETTE[colors[ids]].astype(np.float32)


def _tiny(size=16, **changes):
    smoke = config.get_config("smoke")
    fields = dict(
        name="tiny",
        size=size,
        num_volumes=4,
        num_reference=3,
        grains=(3, 13),
        min_grain_size=20,
        num_generated=3,
        num_targets=4,
        repeats=2,
        guidance_scales=(0.0, 2.0),
        sampler_steps=2,
    )
    return dataclasses.replace(smoke, **{**fields, **changes})


def test_evaluation_on_a_fake_sampler_writes_report_cache_and_cpfem_files(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXMICRO_VGG19", str(tmp_path / "absent.npz"))
    cfg = _tiny()
    run.dataset(cfg, tmp_path / "data", cfg.num_volumes, cfg.seed)
    calls = []

    def fake(key, n, values, guidance):
        """Obeys the grain-count target exactly (so R^2 must come out near 1)."""
        calls.append((n, guidance))
        rng = np.random.default_rng(len(calls))
        counts = rng.integers(3, 9, n) if values is None else np.round(values["n_grains"])
        return np.stack([_voronoi_rgb(rng, cfg.size, int(c)) for c in counts])

    results = run.evaluate(cfg, tmp_path, fake)
    # one draw per setting: unconditional, control (both conditions at once), guidance 2
    assert sorted(n for n, _ in calls) == [3, 3, 2 * (4 + 4 * 2)]
    assert results["complete"] and results["vgg"] == analysis.VGG_MISSING
    assert results["control"]["n_grains"]["random"]["r2"] > 0.9
    fixed = results["control"]["n_grains"]["repeatability"]
    assert fixed["targets"] == [4.0, 6.0, 8.0, 10.0]  # 3 + (0.1, 0.3, 0.5, 0.7) * 10
    assert [r["scale"] for r in results["guidance"]] == [0.0, 2.0]
    # the fake obeys at scale 2; scale 0 is the unconditional set, blind to the targets
    assert results["guidance"][1]["r2_n_grains"] > 0.9
    assert set(results["table1"]["generated"]) == set(analysis.PROPERTIES)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["complete"] and saved["table1"] == results["table1"]
    report = (tmp_path / "report.md").read_text()
    assert "0.0858" in report and "0.995" in report and analysis.VGG_MISSING in report
    for png in ("histograms", "control_n_grains", "control_mean_sphericity", "slices_n_grains"):
        assert (tmp_path / f"{png}.png").stat().st_size > 1000

    # re-running reuses every cached setting
    def refuse(*args):
        raise AssertionError("sampled again")

    again = run.evaluate(cfg, tmp_path, refuse)
    assert again["table1"] == results["table1"]

    # CPFEM hand-off: the DAMASK grid and the .vti read back
    sample = np.load(tmp_path / "samples" / "unconditional.npy")[0]
    grid = io.read_damask(tmp_path / "cpfem" / "damask")
    assert grid.material.shape == sample.shape[:3]
    assert grid.quats.shape == (results["cpfem"]["n_grains"], 4) == (grid.material.max() + 1, 4)
    ten = np.asarray(results["cpfem"]["quats"])
    ten = np.where(ten[:, :1] < 0, -ten, ten)
    assert np.all(np.min(np.abs(grid.quats[:, None] - ten[None]).max(-1), axis=1) < 1e-6)
    vti = io.read_vti(tmp_path / "cpfem" / "volume.vti")
    np.testing.assert_array_equal(vti.fields["grain"], grid.material)
    np.testing.assert_allclose(vti.fields["rgb"], (sample + 1) / 2, atol=1e-6)
    # nothing to export without a trained model's finished run of an exporting config
    assert run.export(dataclasses.replace(cfg, export_name=None), tmp_path) is None
    assert run.export(cfg, tmp_path / "elsewhere") is None


def test_cpfem_files_load_in_damask_and_vtk(voronoi_set, tmp_path):
    """The hand-off files in DAMASK's and VTK's own readers (``pip install -e ".[cpfem]"``;
    skipped without them): the grid's materials are the segmented grains (DAMASK indexes x, y,
    z), the material file is complete and valid with our quaternions, the .vti holds the grain
    ids in cell order."""
    damask = pytest.importorskip("damask")
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    x, _ = voronoi_set
    quats = analysis.colour_orientations(10, 0)
    opts = dict(min_size=200, periodic=True, watershed_h=7.0)
    written = analysis.write_cpfem(tmp_path, x[0], PALETTE, quats, **opts)
    expected = analysis.cpfem_grid(x[0], PALETTE, quats, **opts)
    grid = damask.GeomGrid.load(written["damask_grid"])
    np.testing.assert_array_equal(grid.material, expected["labels"].transpose(2, 1, 0))
    material = damask.ConfigMaterial.load(written["damask_material"])
    assert material.is_complete and material.is_valid
    O = np.asarray([m["constituents"][0]["O"] for m in material["material"]])
    np.testing.assert_allclose(O, expected["quats"], atol=1e-12)
    damask.Rotation.from_quaternion(O)  # unit, scalar first, q0 >= 0: accepted as they are
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(written["vti"])
    reader.Update()
    cells = reader.GetOutput().GetCellData()
    grain = vtk_to_numpy(cells.GetArray("grain")).reshape(x.shape[1:4])
    np.testing.assert_array_equal(grain, expected["labels"])


def test_training_record_adds_the_segments_of_a_resumed_run(tmp_path):
    rows = [(50, 30.0), (100, 60.0), (150, 12.0), (200, 42.0)]  # resumed after step 100
    lines = [json.dumps({"step": s, "loss": 0.5 / s, "time": t}) for s, t in rows]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert run.training_record(tmp_path) == {"steps": 200, "loss": 0.0025, "minutes": 1.7}


def test_vgg_scores_enter_table1_when_weights_are_given(tmp_path):
    import jax

    from jaxmicro import metrics

    x = np.stack([_voronoi_rgb(np.random.default_rng(i), 16, 5) for i in range(4)])
    slices = analysis.vgg_slices(x, PALETTE, seed=0)
    assert slices.shape == (12, 16, 16, 3) and slices.min() >= 0 and slices.max() <= 1
    params = metrics.random_vgg19_params(jax.random.key(0))
    scores = analysis.vgg_scores(params, slices[:6], slices[6:])
    assert scores.shape == (6,) and np.all(np.isfinite(scores)) and np.all(scores >= 0)


@pytest.mark.slow  # compiles a VAE, a latent UNet and three samplers
def test_a_tiny_run_trains_samples_and_evaluates(tmp_path, monkeypatch):
    from jaxmicro.nn import UNetConfig, VAEConfig

    monkeypatch.setenv("JAXMICRO_VGG19", str(tmp_path / "absent.npz"))
    smoke = config.get_config("smoke")
    assert smoke.vae.model.periodic and smoke.diffusion.model.periodic  # the volumes wrap around
    cfg = _tiny(
        num_volumes=8,
        vae=dataclasses.replace(
            smoke.vae,
            model=VAEConfig(
                spatial_dims=3,
                in_channels=3,
                channels=(4, 8),
                latent_channels=2,
                num_res_blocks=1,
                num_groups=2,
                mid_attention=False,
                periodic=True,
            ),
            batch_size=4,  # the tests run on 4 fake devices
            num_train_steps=2,
            warmup_steps=1,
            log_every=1,
            checkpoint_every=2,
        ),
        diffusion=dataclasses.replace(
            smoke.diffusion,
            model=UNetConfig(
                spatial_dims=3,
                in_channels=2,
                channels=(4, 8),
                num_res_blocks=1,
                attention_levels=(1,),
                num_heads=1,
                num_groups=2,
                dropout=0.0,
                num_scalar_conditions=2,
                context_dim=8,
                periodic=True,
            ),
            num_diffusion_steps=10,
            batch_size=4,
            num_train_steps=2,
            warmup_steps=1,
            log_every=1,
            checkpoint_every=2,
        ),
    )
    from jaxmicro.train import load_model

    run.train(cfg, tmp_path)
    model = load_model(tmp_path / "unet")
    results = run.evaluate(cfg, tmp_path, run.model_sampler(cfg, model))
    assert results["complete"]
    x = np.load(tmp_path / "samples" / "unconditional.npy")
    assert x.shape == (cfg.num_generated, 16, 16, 16, 3) and np.all(np.isfinite(x))
    dest = run.export(cfg, tmp_path, tmp_path / "exported")
    card = json.loads((dest / "card.json").read_text())
    assert card["name"] == "polycrysdiff-small" and "table1" in card["metrics"]
    assert card["metrics"]["table1_floor"].keys() == card["metrics"]["table1"].keys()
    assert card["training"]["vae"]["steps"] == cfg.vae.num_train_steps
    assert card["training"]["unet"]["steps"] == cfg.diffusion.num_train_steps
