"""Lee & Yun experiment: the Appendix A generators, and the whole path on tiny shapes."""

import dataclasses
import itertools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro._modules import load_file_module
from jaxmicro.nn import unet_config

pytestmark = pytest.mark.heavy  # a long module: handed to a worker first

HERE = Path(__file__).resolve().parents[1] / "experiments" / "lee_yun"
config = load_file_module(HERE / "config.py")
materials = load_file_module(HERE / "materials.py")
run = load_file_module(HERE / "run.py")
analysis = load_file_module(HERE / "analysis.py")

RATIOS = (1.0, 2.0, 2.5, 3.0, 4.0)
FRACTIONS = (0.15, 0.2, 0.3, 0.2, 0.15)


def test_variants():
    smoke, paper = config.get_config("smoke"), config.get_config("paper")
    for cfg in (smoke, paper):
        assert cfg.size == 64 and cfg.num_train == 1000 and cfg.materials == config.MATERIALS
        t = cfg.train.validate()
        assert t.loss == "hybrid" and t.lambda_vlb == 0.001 and t.model.learned_variance
    assert smoke.train.num_diffusion_steps == 1000 and paper.train.num_diffusion_steps == 4000
    assert len(paper.train.model.channels) == 5 and paper.train.model.num_res_blocks == 3
    assert paper.train.model == unet_config("lee_yun_64", periodic=True)  # one place
    assert paper.train.model.channels[0] == 128 and paper.train.model.dropout == 0.1
    assert paper.train.ema_decay == 0.9999 and paper.train.batch_size == 32
    for cfg in (smoke, paper):
        n = max(cfg.num_samples, cfg.sweep_samples)
        assert n <= min(cfg.num_train, cfg.num_held_out) and cfg.num_export_reference >= 100
    assert run.settings(smoke)[-1] == ("ddpm", "ddpm", 1000, 1.0)
    assert [s for _, _, s, _ in run.settings(smoke)][:5] == [10, 25, 50, 100, 150]
    assert run.settings(smoke)[5][::3] == ("ddim-10-eta1", 1.0)
    assert (smoke.sample_eta, paper.sample_eta) == (1.0, 0.0)  # paper: deterministic DDIM
    assert (smoke.sample_steps, paper.sample_steps) == (50, 150)  # issue #18; the paper's Fig. 2
    assert smoke.train.model.periodic and paper.train.model.periodic  # the images are periodic
    with pytest.raises(ValueError, match="variant"):
        config.get_config("huge")


def test_sampling_time_leaves_out_compilation():
    f = jax.jit(lambda x: jnp.sin(x) @ x.T)
    x = jnp.ones((64, 64))
    first, seconds, compiling = run.without_compilation(lambda: f(x))
    again, _, none = run.without_compilation(lambda: f(x))
    np.testing.assert_array_equal(first, again)
    assert compiling > 0 and none == 0 and seconds >= 0


def test_class_probabilities_are_eqs_25_26():
    p = materials.class_probabilities(RATIOS, FRACTIONS)
    n = np.asarray(FRACTIONS) / np.asarray(RATIOS) ** 2  # eq. 25, E[V_i] ~ d_i^2
    np.testing.assert_allclose(p, n / n.sum())  # eq. 26
    # the expected area of each class is then proportional to its volume fraction
    area = p * np.asarray(RATIOS) ** 2
    np.testing.assert_allclose(area / area.sum(), FRACTIONS)
    with pytest.raises(ValueError, match="size_ratios"):
        materials.class_probabilities((1, 2), (0.5,))


def test_alloy_grains_have_the_stated_size_classes_and_fractions():
    rng = np.random.default_rng(0)
    radii, classes = [], []
    for _ in range(40):
        _, r, k = materials.alloy_grains(rng, 64, 6.0, RATIOS, FRACTIONS, 0.3)
        radii.append(r)
        classes.append(k)
    r, k = np.concatenate(radii), np.concatenate(classes)
    np.testing.assert_allclose(sorted(set(np.round(r / 3.0, 6))), RATIOS)  # diameters 6 * ratio
    area = np.bincount(k, weights=np.pi * r**2, minlength=5)
    np.testing.assert_allclose(area / area.sum(), FRACTIONS, atol=0.04)
    # the tessellation's grains follow their circles: bigger class, bigger grain
    image, labels, classes = materials.alloy_image(0, 0, 64, 6.0, RATIOS, FRACTIONS, 0.3)
    sizes = np.bincount(labels.ravel(), minlength=len(classes))
    assert np.mean(sizes[classes == 4]) > 3 * np.mean(sizes[classes == 0])
    assert set(np.unique(image)) == {0, 1} and 0.1 < image.mean() < 0.3
    d = materials.grain_diameters(image)
    assert abs(len(d) - len(classes)) <= 0.2 * len(classes)


def test_grain_diameters_join_across_periodic_edges():
    image = np.zeros((8, 8), np.int8)
    image[:, 3] = 1  # one vertical boundary: the grain wraps around the other side
    np.testing.assert_allclose(materials.grain_diameters(image), [np.sqrt(4 * 56 / np.pi)])
    image[:, 6] = 1
    np.testing.assert_allclose(
        sorted(materials.grain_diameters(image)), np.sqrt(4 * np.array([16, 32]) / np.pi)
    )


def test_s2_at_volume_fraction_keeps_the_scaled_autocovariance():
    phi, v = 0.3, 0.33
    s2 = np.array([phi, 0.2, 0.12, phi**2, phi**2])  # falls to phi^2
    np.testing.assert_allclose(analysis.s2_at_volume_fraction(s2, phi), s2)
    moved = analysis.s2_at_volume_fraction(s2, v)
    np.testing.assert_allclose(moved[[0, 3, 4]], [v, v**2, v**2])
    scaled = (moved - v**2) / (v - v**2)
    np.testing.assert_allclose(scaled, (s2 - phi**2) / (phi - phi**2))


def test_seam_mismatch_tells_periodic_images_from_cut_ones():
    from jaxmicro.synth import rsa_disks

    keys = jax.random.split(jax.random.key(1), 40)
    fibres = np.asarray(jax.vmap(lambda k: rsa_disks(k, (16, 16), 2.0, 0.35)[0])(keys))
    periodic = analysis.seam_mismatch(fibres)
    assert periodic["seam"] == pytest.approx(periodic["interior"], abs=0.02)
    # Opposite edges drawn independently (halves of different images glued): the seam pairs are
    # independent, so they differ in about 2 phi (1 - phi) of the cases.
    cut = np.concatenate([fibres[:, :, :8], np.roll(fibres, 1, axis=0)[:, :, 8:]], axis=2)
    cut = np.concatenate([cut[:, :8], np.roll(cut, 2, axis=0)[:, 8:]], axis=1)
    phi = fibres.mean()
    seams = analysis.seam_mismatch(np.roll(cut, (8, 8), axis=(1, 2)))
    assert seams["seam"] == pytest.approx(2 * phi * (1 - phi), abs=0.05)
    assert seams["seam"] > 2 * seams["interior"]


def test_row_splits_off_the_volume_fraction_part_of_s2():
    rng = np.random.default_rng(0)
    reference = (rng.random((100, 16, 16)) < 0.3).astype(np.int8)
    same = analysis.row(reference, reference, None)
    assert same["s2"] == pytest.approx(0, abs=1e-6)
    assert same["s2_volume_fraction"] == pytest.approx(0, abs=1e-6)
    # white noise at another fraction differs from the reference only in volume fraction
    denser = (rng.random((100, 16, 16)) < 0.36).astype(np.int8)
    r = analysis.row(denser, reference, None)
    assert r["s2"] > 10 and r["s2_volume_fraction"] == pytest.approx(r["s2"], rel=0.05)
    s2_ref = np.asarray(r["curves"]["s2_reference"])
    assert s2_ref[0] == pytest.approx(r["volume_fraction_reference"])


def test_component_sizes_of_either_phase():
    image = np.zeros((8, 8), np.int8)
    image[1:3, 1:3] = 1  # a 2x2 fibre
    image[5, 2:5] = 1  # a 1x3 fibre
    image[7, 0], image[7, 7] = 1, 1  # a 2-pixel fibre across the periodic edge
    other = image.copy()
    other[1:3, 1:3] = 0
    fibres = analysis.component_sizes(image[None], image[None], other[None], phase=1)
    np.testing.assert_allclose(
        sorted(fibres["generated"]), np.sqrt(4 * np.array([2, 3, 4]) / np.pi)
    )
    assert fibres["ks"] == 0 and fibres["ks_floor"] == pytest.approx(1 / 3)
    matrix = analysis.component_sizes(image[None], image[None], image[None], phase=0)
    np.testing.assert_allclose(matrix["generated"], [np.sqrt(4 * 55 / np.pi)])


def test_fiber_data_have_volume_fraction_035(tmp_path):
    cfg = dataclasses.replace(config.get_config("smoke"), num_train=6, num_held_out=2)
    run.make_data(cfg, "fiber", tmp_path)
    x = run.images(tmp_path / "train")
    assert x.shape == (6, 64, 64) and x.dtype == np.int8
    assert abs(x.mean() - 0.35) < 0.02
    assert "volume_fraction=0.35" in run.data_calls(cfg, "fiber")["train"]
    # a set of another size is made again; a complete one is kept
    stamp = (tmp_path / "train" / "metadata.json").stat().st_mtime_ns
    run.make_data(dataclasses.replace(cfg, num_held_out=3), "fiber", tmp_path)
    assert len(run.images(tmp_path / "held-out")) == 3
    assert (tmp_path / "train" / "metadata.json").stat().st_mtime_ns == stamp


def test_mcr_reconstructions_match_the_exemplar():
    ex = materials.anisotropic_exemplar(jax.random.key(0), 24, (1.5, 4.0), 0.3)
    assert abs(ex.mean() - 0.3) < 1e-3
    # anisotropic: longer runs of phase 1 along axis 1 than along axis 0
    assert np.mean(ex == np.roll(ex, 2, axis=1)) > np.mean(ex == np.roll(ex, 2, axis=0))
    rec = materials.reconstructions(
        jax.random.key(1), ex, 3, max_lag=6, levels=1, max_iter=30, batch_size=2, progress=False
    )
    assert rec.shape == (3, 24, 24) and rec.dtype == np.int8
    assert abs(rec.mean() - 0.3) < 0.05
    # image i starts from fold_in(key, i): the first batch again gives the same images
    again = materials.reconstructions(
        jax.random.key(1), ex, 2, max_lag=6, levels=1, max_iter=30, batch_size=2, progress=False
    )
    np.testing.assert_array_equal(again, rec[:2])


def _check_outputs(out: Path, material: str, models: Path):
    folder = out / material
    ev = json.loads((folder / "evaluation.json").read_text())
    assert ev["complete"] and ev["generated"]["phase"] == "phase 1"
    for key in ("s2", "lineal"):
        assert ev["generated"][key] is not None and ev["floor"][key] is not None
    assert ev["copying"]["n"] == 8 and ev["copying"]["baseline_min"] > 0
    assert np.isfinite(ev["copying"]["z"])
    # the floor: held-out images [0, 8) against training images [0, 8), as the samples are
    assert ev["floor_set"] == run.FLOOR_SET
    floor = analysis.row(
        run.images(folder / "held-out")[:8], run.images(folder / "train")[:8], None
    )
    np.testing.assert_allclose(
        [ev["floor"]["s2"], ev["floor"]["lineal"]], [floor["s2"], floor["lineal"]], rtol=1e-6
    )
    for png in ("samples.png", "curves.png", "closest_pairs.png"):
        assert (folder / png).is_file()
    card = json.loads((models / f"lee-yun-{material}" / "card.json").read_text())
    command = card["data_command"]
    assert ("seed=0" in command or "key(0)" in command) and (
        "num_samples=24" in command or "range(24)" in command
    )
    assert card["metrics"]["features"] == run.VGG_NOTE
    assert card["sampling"] == {"sampler": "ddim", "steps": 4, "eta": 1.0}
    assert card["metrics"]["sampler"] == ev["sampler"] == "ddim-4-eta1"
    ref = np.load(models / f"lee-yun-{material}" / "reference.npy")
    assert ref.shape[1:] == (16, 16, 1) and set(np.unique(ref)) == {-1.0, 1.0}


def test_tiny_run_of_one_material(tmp_path):
    """data -> train -> evaluate -> export on 16x16 (the sweep: the slow test), and a rerun
    that finds the stages done."""
    out, models = tmp_path / "out", tmp_path / "models"
    args = ["--variant", "tiny", "--out", str(out), "--export-dir", str(models)]
    assert run.main([*args, "--materials", "fiber", "--stages", "data,train,evaluate,export"]) == 0
    _check_outputs(out, "fiber", models)
    sizes = json.loads((out / "fiber" / "evaluation.json").read_text())["fibre_sizes"]
    assert sizes["mean_reference"] > 0 and 0 <= sizes["ks_floor"] <= 1
    assert (out / "fiber" / "fibre_sizes.png").is_file()
    report = (out / "report.md").read_text()
    assert "VGG-19, not Inception" in report and "| fiber |" in report
    stamp = (out / "fiber" / "evaluation.json").stat().st_mtime
    assert run.main([*args, "--materials", "fiber", "--stages", "data,evaluate"]) == 0
    assert (out / "fiber" / "evaluation.json").stat().st_mtime == stamp
    # trained one more cycle, the material is sampled and evaluated afresh; the report says how
    cycles = (("fiber", (("lr_cycles", (2, 1)),)),)
    cfg = dataclasses.replace(config.get_config("tiny"), material_train=cycles)
    run.run_material(cfg, "fiber", out, ("train", "evaluate"), [None, None], models)
    ev = json.loads((out / "fiber" / "evaluation.json").read_text())
    assert ev["complete"] and ev["train_step"] == 3
    assert "warm restarts of 2, 1 steps" in ev["training"]
    side = json.loads((out / "fiber" / "samples" / "evaluation-ddim-4-eta1.json").read_text())
    assert side["train_step"] == 3


PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "ddpm-ddim-mcr.txt"


@pytest.mark.skipif(not PAPER.is_file(), reason="the paper's text is not beside the checkout")
def test_paper_rows_are_the_papers_tables():
    """Tables 2-4 of the paper's text, row by row (a wrong number here goes into every report)."""
    text = PAPER.read_text()

    def table(number: int) -> dict[str, list[float]]:
        """The rows of the tab-separated table under the caption ``Table <number>.``."""
        lines = text[text.index(f"\nTable {number}.") :].splitlines()[2:]
        start = next(i for i, line in enumerate(lines) if "\t" in line) + 1  # past the header
        rows = itertools.takewhile(lambda line: "\t" in line, lines[start:])
        return {r[0].lower(): [float(x) for x in r[1:]] for r in (x.split("\t") for x in rows)}

    fid, s2, lineal = table(2), table(3), table(4)
    for row in run.PAPER_ROWS.values():
        name = row["paper_material"].split(" (")[0]
        assert fid[name] == [row["fid"], row["precision"], row["recall"]], name
        assert (s2[name], lineal[name]) == ([row["s2"]], [row["lineal"]]), name


def test_material_train_fields_replace_the_shared_recipe(tmp_path):
    cfg = config.get_config("smoke")
    alloy, fiber, mcr = (run.train_config(cfg, m, tmp_path) for m in ("alloy", "fiber", "mcr"))
    assert (alloy.parameterization, alloy.lr_cycles, alloy.num_train_steps) == (
        "v",
        (3000, 3000),
        6000,
    )
    assert (fiber.parameterization, fiber.lr_cycles, fiber.num_train_steps) == ("eps", (), 6000)
    assert (mcr.parameterization, mcr.lr_cycles, mcr.num_train_steps) == ("v", (3000, 3000), 6000)
    assert alloy.data.path == str(tmp_path.absolute()) and alloy.name == "lee_yun_smoke_alloy"


def test_export_waits_for_a_complete_evaluation(tmp_path):
    cfg = config.get_config("tiny")
    assert run.export(cfg, "fiber", tmp_path, tmp_path / "models") is None
    (tmp_path / "evaluation.json").write_text(json.dumps({"complete": False}))
    assert run.export(cfg, "fiber", tmp_path, tmp_path / "models") is None


@pytest.mark.slow  # several minutes: three materials, every stage, VGG-19 with random weights
def test_tiny_run_of_every_material(tmp_path):
    out, models = tmp_path / "out", tmp_path / "models"
    args = ["--variant", "tiny", "--out", str(out), "--export-dir", str(models), "--vgg", "random"]
    assert run.main(args) == 0
    for material in config.MATERIALS:
        _check_outputs(out, material, models)
    ev = json.loads((out / "alloy" / "evaluation.json").read_text())
    assert ev["grain_sizes"]["mean_reference"] > 0 and 0 <= ev["grain_sizes"]["ks_floor"] <= 1
    assert (out / "alloy" / "grain_sizes.png").is_file()
    results = json.loads((out / "results.json").read_text())
    assert set(results["materials"]) == set(config.MATERIALS)
    sweep = results["materials"]["mcr"]["sweep"]
    names = ["ddim-2", "ddim-4", "ddim-2-eta1", "ddim-4-eta1", "ddpm"]
    assert [r["name"] for r in sweep["rows"]] == names
    assert all(r["seconds_per_1000"] > 0 for r in sweep["rows"])
    assert sweep["rows"][0]["frechet_vgg19"] is not None
    report = (out / "report.md").read_text()  # the sweep table tells the etas apart
    assert "| ddim | 4 | 0 |" in report and "| ddim | 4 | 1 |" in report
    assert "| ddpm | 10 | - |" in report
    card = json.loads((models / "lee-yun-mcr" / "card.json").read_text())
    assert list(card["metrics"]["sweep"]) == names
    # a shipped model loads and samples (n, H, W, 1) in [-1, 1]
    from jaxmicro.train import generate, load_model

    x = generate(jax.random.key(0), load_model(models / "lee-yun-mcr"), 2, steps=2)
    assert x.shape == (2, 16, 16, 1) and np.abs(x).max() <= 1.0
