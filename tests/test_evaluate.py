"""``jaxmicro.metrics.evaluate`` (numbers against independent references) and the command."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from jaxmicro import metrics
from jaxmicro.cli import main

N = 16  # side of the 2-D test fields: one jit shape for most tests


def voronoi(rng, shape, n):
    seeds = rng.uniform(0, 1, (n, len(shape))) * shape
    centres = np.indices(shape).reshape(len(shape), -1).T + 0.5
    return cKDTree(seeds, boxsize=np.asarray(shape, float)).query(centres)[1].reshape(shape)


def blobs(rng, n, fraction):
    """Two-phase {0, 1} int8 fields ``(n, N, N)``: smoothed noise thresholded at a quantile."""
    noise = rng.normal(size=(n, N, N))
    for axis in (1, 2):
        noise = noise + np.roll(noise, 1, axis) + np.roll(noise, -1, axis)
    cut = np.quantile(noise, 1 - fraction, axis=(1, 2), keepdims=True)
    return (noise > cut).astype(np.int8)


def s2_radial(x):
    """Radial S2 of a 2-D indicator by direct periodic sums over the lag window of two_point."""
    n = x.shape[0]
    sums, counts = np.zeros(n // 2 + 1), np.zeros(n // 2 + 1)
    for dx in range(-(n // 2), n - n // 2):
        for dy in range(-(n // 2), n - n // 2):
            shell = int(np.round(np.hypot(dx, dy)))
            if shell <= n // 2:
                sums[shell] += np.mean(x * np.roll(x, (-dx, -dy), axis=(0, 1)))
                counts[shell] += 1
    return sums / counts


def lineal(x, max_length):
    """Lineal path along axis 0 (periodic) by direct products."""
    out, prod = [], x.astype(float)
    for z in range(max_length + 1):
        if z:
            prod = prod * np.roll(x, -z, axis=0)
        out.append(prod.mean())
    return np.array(out)


def eq23(ref, gen):
    return 100 * np.trapezoid(np.abs(gen - ref)) / np.trapezoid(ref)


def test_eq23_on_hand_made_curves():
    # |gen - ref| = (0, 1, 0): trapezoid area 1; area under ref = 2
    assert float(metrics.correlation_discrepancy([1.0, 1.0, 1.0], [1.0, 2.0, 1.0])) == 50.0
    ref, gen = np.array([0.4, 0.2, 0.16, 0.16]), np.array([0.5, 0.3, 0.25, 0.25])
    # |diff| = (0.1, 0.1, 0.09, 0.09): area 0.1 + 0.095 + 0.09; area under ref 0.3 + 0.18 + 0.16
    want = 100 * 0.285 / 0.64
    assert float(metrics.correlation_discrepancy(ref, gen)) == pytest.approx(want, rel=1e-6)


def test_a_set_against_itself_scores_zero():
    x = blobs(np.random.default_rng(0), 5, 0.3)
    r = metrics.evaluate(x, x, dim=2)
    assert r["kind_reference"] == r["kind_generated"] == "phase" and r["phase"] == 1
    for key in ("s2_discrepancy", "lineal_discrepancy", "s2_discrepancy_weighted"):
        assert r[key] == 0, key
    assert r["chord_emd"] == pytest.approx(0, abs=1e-12)
    assert r["volume_fraction_reference"] == r["volume_fraction_generated"]
    assert r["volume_fraction_reference"] == pytest.approx(0.3, abs=0.01)
    assert r["pca_s2"]["frechet"] == pytest.approx(0, abs=1e-6)
    assert r["pca_s2"]["precision"] == r["pca_s2"]["recall"] == 1
    np.testing.assert_array_equal(r["data_copying"]["nearest"], np.arange(5))
    assert r["data_copying"]["min"] == pytest.approx(0, abs=1e-6)
    # translations leave periodic S2 unchanged but are no copies
    shifted = np.roll(x, (3, 5), axis=(1, 2))
    r = metrics.evaluate(shifted, x, dim=2)
    assert r["s2_discrepancy"] == pytest.approx(0, abs=1e-4)
    assert r["data_copying"]["min"] > 0.1


def test_discrepancy_is_eq23_of_the_phase_of_interest():
    rng = np.random.default_rng(1)
    ref, gen = blobs(rng, 4, 0.3), blobs(rng, 3, 0.4)
    r = metrics.evaluate(gen, ref, dim=2)
    s2_ref = np.mean([s2_radial(x) for x in ref], axis=0)
    s2_gen = np.mean([s2_radial(x) for x in gen], axis=0)
    np.testing.assert_allclose(r["s2_reference"].mean(0), s2_ref, rtol=1e-5, atol=1e-6)
    assert r["s2_discrepancy"] == pytest.approx(eq23(s2_ref, s2_gen), rel=1e-4)
    lp_ref = np.mean([lineal(x, N // 2) for x in ref], axis=0)
    lp_gen = np.mean([lineal(x, N // 2) for x in gen], axis=0)
    assert r["lineal_discrepancy"] == pytest.approx(eq23(lp_ref, lp_gen), rel=1e-4)
    # phase 0 is a different number, and the known fraction shift is detected
    r0 = metrics.evaluate(gen, ref, dim=2, phase=0)
    s2_0 = [np.mean([s2_radial(1 - x) for x in xs], axis=0) for xs in (ref, gen)]
    assert r0["s2_discrepancy"] == pytest.approx(eq23(*s2_0), rel=1e-4)
    assert r["s2_discrepancy"] > 20 and r0["s2_discrepancy"] < r["s2_discrepancy"]
    assert r["s2_discrepancy_per_channel"] == pytest.approx(
        [r0["s2_discrepancy"], r["s2_discrepancy"]]
    )


def test_phase_weighting_is_blind_to_swapped_phases():
    """The volume-fraction-weighted mix of S2 is the same for x and 1 - x; phase 1's is not."""
    x = blobs(np.random.default_rng(2), 4, 0.25)
    r = metrics.evaluate(1 - x, x, dim=2)
    assert r["s2_discrepancy_weighted"] == pytest.approx(0, abs=1e-4)
    assert r["lineal_discrepancy_weighted"] == pytest.approx(0, abs=1e-4)
    assert r["s2_discrepancy"] > 100 and r["lineal_discrepancy"] > 100
    w = metrics.evaluate(1 - x, x, dim=2, phase="weighted")
    assert w["s2_discrepancy"] == r["s2_discrepancy_weighted"]
    assert "weighted by volume fraction" in w["phase_description"]


def test_minority_phase_discrepancy_exceeds_the_weighted_mix():
    """Lee & Yun Tables 3-4: at a low volume fraction a small error of the phase of interest
    is a large eq. 23 value, while the volume-fraction-weighted mix hides it behind the
    majority phase's large S2."""
    rng = np.random.default_rng(4)
    ref, gen = blobs(rng, 6, 0.1), blobs(rng, 6, 0.12)
    r = metrics.evaluate(gen, ref, dim=2)
    assert r["phase"] == 1 and r["volume_fraction_reference"] == pytest.approx(0.1, abs=0.01)
    assert r["s2_discrepancy"] > 3 * r["s2_discrepancy_weighted"]
    assert r["s2_discrepancy"] == pytest.approx(r["s2_discrepancy_per_channel"][1])
    # the majority phase alone agrees better than the minority phase
    assert r["s2_discrepancy_per_channel"][0] < r["s2_discrepancy"] / 3
    # on balanced phases the two are of the same order
    b = metrics.evaluate(blobs(rng, 6, 0.52), blobs(rng, 6, 0.5), dim=2)
    assert b["s2_discrepancy"] < 3 * b["s2_discrepancy_weighted"]


def test_sampler_output_against_training_phases():
    """Float (n, H, W, 1) in [-1, 1] vs int {0, 1}: dim inferred, thresholded at 0."""
    rng = np.random.default_rng(3)
    ref = blobs(rng, 4, 0.3)
    soft = (2.0 * ref - 1.0) * rng.uniform(0.2, 1.0, ref.shape)
    r = metrics.evaluate(soft[..., None].astype(np.float32), ref)
    assert (r["kind_generated"], r["kind_reference"], r["dim"]) == ("binary", "phase", 2)
    assert r["s2_discrepancy"] == 0 and r["data_copying"]["min"] == pytest.approx(0, abs=1e-6)
    assert "values > 0" in r["phase_description"]
    # (n, D, H, W, 1) sampler output of a 3-D model: dim 3 from the shapes
    vol = (rng.uniform(size=(2, 8, 8, 8)) > 0.5).astype(np.int8)
    r = metrics.evaluate((2.0 * vol - 1.0)[..., None], vol)
    assert r["dim"] == 3 and r["n_generated"] == 2 and r["s2_discrepancy"] == 0


def test_grain_ids_known_shift():
    rng = np.random.default_rng(4)
    ref = np.stack([voronoi(rng, (32, 32), 12) + 1 for _ in range(3)])
    same = np.stack([voronoi(rng, (32, 32), 12) + 1 for _ in range(3)])
    finer = np.stack([voronoi(rng, (32, 32), 40) + 1 for _ in range(3)])
    r_self = metrics.evaluate(ref, ref, dim=2)
    for row in r_self["properties"].values():
        assert row["ks"] == row["emd"] == row["kl"] == 0
    assert r_self["channels"] == "grain-boundary voxels" and r_self["s2_discrepancy"] == 0
    r_same = metrics.evaluate(same, ref, dim=2)
    r_finer = metrics.evaluate(finer, ref, dim=2)
    vol_same, vol_finer = r_same["properties"]["volume"], r_finer["properties"]["volume"]
    assert vol_finer["n_generated"] > 3 * vol_same["n_generated"]
    assert vol_finer["mean_generated"] == pytest.approx(32 * 32 / 40, rel=0.05)
    assert vol_finer["ks"] > 0.5 > vol_same["ks"]
    assert r_finer["s2_discrepancy"] > 3 * r_same["s2_discrepancy"]


def test_library_errors_name_the_argument(tmp_path):
    x = blobs(np.random.default_rng(5), 2, 0.3)
    with pytest.raises(ValueError, match="dim: .*pass dim=2 or dim=3"):
        metrics.evaluate(x, x)
    with pytest.raises(ValueError, match="generated: holds continuous fields"):
        metrics.evaluate(np.linspace(0, 5, 2 * N * N).reshape(2, N, N), x, dim=2)
    with pytest.raises(ValueError, match="generated: contains 1 non-finite"):
        metrics.evaluate(np.where(np.arange(x.size).reshape(x.shape) == 0, np.nan, x), x, dim=2)
    with pytest.raises(ValueError, match="phase: phase 1 is absent"):
        metrics.evaluate(x, np.zeros_like(x), dim=2)
    with pytest.raises(ValueError, match="phase: expected 0 <= phase < 2"):
        metrics.evaluate(x, x, dim=2, phase=2)
    with pytest.raises(ValueError, match="path: .* does not exist"):
        metrics.load_samples(tmp_path / "missing.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a NumPy .npy/.npz file of plain arrays"):
        metrics.load_samples(tmp_path / "objects.npy")


def test_command_on_sampler_output_and_data_shards(tmp_path, capsys):
    rng = np.random.default_rng(6)
    ref = blobs(rng, 4, 0.3)
    data = tmp_path / "data"
    data.mkdir()
    # a `jaxmicro data make` shard: `x` plus label columns (ignored); metadata.json ignored
    np.savez(data / "shard-00000.npz", x=ref, volume_fraction=ref.mean(axis=(1, 2)))
    (data / "metadata.json").write_text("{}")
    gen = np.where(blobs(rng, 3, 0.4) > 0, 0.9, -0.9)[..., None].astype(np.float32)
    np.save(tmp_path / "samples.npy", gen)
    out = tmp_path / "out"
    argv = ["evaluate", "--generated", str(tmp_path / "samples.npy"), "--reference", str(data)]
    argv += ["--out", str(out), "--vgg", "none"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    want = metrics.evaluate(gen, ref)
    assert "kind: `phase` (reference), `binary` (generated), 2-D" in report
    assert "Phase of interest: **phase 1 (values > 0 of the [-1, 1] fields)**" in report
    assert f"| S2 discrepancy (%) | {want['s2_discrepancy']:.4g} |" in report
    assert (out / "s2.png").stat().st_size > 1000 and (out / "slices.png").is_file()
    # the folder is not overwritten without --overwrite; with it, the run succeeds
    capsys.readouterr()
    assert main(argv) == 2
    assert "--out:" in capsys.readouterr().err and (out / "report.md").is_file()
    assert main([*argv, "--overwrite", "--dim", "2"]) == 0
    # bad input files: exit status 2, the argument named, no traceback
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("not numpy")
    for bad, message in (
        ("missing.npy", "does not exist"),
        ("empty.npy", "is empty (0 bytes)"),
        ("text.npy", "is not a NumPy .npy/.npz file"),
    ):
        bad_argv = [*argv, "--overwrite"]
        bad_argv[2] = str(tmp_path / bad)
        assert main(bad_argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("jaxmicro evaluate: error: --generated:") and message in err
    # rejected inputs leave no (empty) output folder behind
    np.save(tmp_path / "batch.npy", ref)
    fresh = tmp_path / "fresh"
    ambiguous = ["evaluate", "--generated", str(tmp_path / "batch.npy"), "--reference", str(data)]
    assert main([*ambiguous, "--out", str(fresh), "--vgg", "none"]) == 2
    assert "dim: " in capsys.readouterr().err and not fresh.exists()


@pytest.mark.slow
def test_command_rgb_volumes_with_random_vgg(tmp_path):
    palette = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]])
    rng = np.random.default_rng(7)
    for name, n in (("ref", 12), ("gen", 15)):
        ids = np.stack([voronoi(rng, (16, 16, 16), n) for _ in range(3)])
        np.save(tmp_path / f"{name}.npy", palette[ids % 6].astype(np.float32))
    out = tmp_path / "out"
    argv = ["evaluate", "--generated", str(tmp_path / "gen.npy"), "--reference"]
    argv += [str(tmp_path / "ref.npy"), "--out", str(out), "--periodic", "--vgg", "random"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    assert "kind: `rgb`, 3-D" in report and "| sphericity |" in report
    assert "VGG slice score" in report and "weighted by volume fraction" in report
