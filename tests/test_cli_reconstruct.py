"""``jaxmicro reconstruct``: reference loading, descriptor syntax, outputs, and input errors."""

import json

import numpy as np
import pytest

from jaxmicro.cli import main
from jaxmicro.cli.reconstruct import default_descriptors, load_reference, parse_descriptors
from jaxmicro.orientations import (
    euler_to_quat,
    misorientation_angle,
    quat_to_euler,
    to_fundamental_zone,
)
from jaxmicro.reconstruct import descriptor


def grains_euler(n=12):
    """Three vertical bands of distinct orientations, Bunge angles in radians."""
    euler = np.zeros((n, n, 3))
    euler[:, : n // 3] = (0.3, 0.5, 1.0)
    euler[:, n // 3 : 2 * n // 3] = (2.0, 1.2, 0.4)
    euler[:, 2 * n // 3 :] = (4.0, 0.2, 5.0)
    return euler


def test_parse_descriptors():
    got = parse_descriptors("two_point:2:max_lag=7:pairs=auto, mean_variation:100,one_point")
    assert got == (
        descriptor("two_point", 2.0, max_lag=7, pairs="auto"),
        descriptor("mean_variation", 100.0),
        descriptor("one_point", 1.0),
    )
    assert parse_descriptors("variogram:max_lag=3:order=1.5") == (
        descriptor("variogram", 1.0, max_lag=3, order=1.5),
    )
    names = [d.name for d in default_descriptors("orientations", 5)]
    assert names == ["two_point", "three_point_variogram", "mean_variation"]
    assert [d.name for d in default_descriptors("phases", 5)] == ["two_point", "mean_variation"]
    with pytest.raises(ValueError, match="--descriptors"):
        parse_descriptors("two_point:heavy")
    with pytest.raises(ValueError, match="descriptor name"):
        parse_descriptors("three_point")


def test_load_reference_kinds(tmp_path):
    euler = grains_euler()
    np.save(tmp_path / "euler.npy", euler)
    field, rep, sym = load_reference(tmp_path / "euler.npy")
    assert rep == "orientations" and sym == "cubic" and field.shape == (12, 12, 4)
    np.testing.assert_allclose(field, euler_to_quat(euler), atol=1e-6)

    np.save(tmp_path / "quats.npy", np.asarray(euler_to_quat(euler)))
    assert load_reference(tmp_path / "quats.npy", symmetry="hexagonal")[1:] == (
        "orientations",
        "hexagonal",
    )

    labels = np.zeros((10, 10), np.int64)
    labels[:5, :] = 1
    labels[:, :3] = 2
    np.save(tmp_path / "labels.npy", labels)
    field, rep, _ = load_reference(tmp_path / "labels.npy")
    assert rep == "phases" and field.shape == (10, 10, 2)
    np.testing.assert_array_equal(field[..., 1], labels == 2)
    np.testing.assert_array_equal(field[..., 0], labels == 1)

    two = (labels > 0).astype(np.int32)
    np.save(tmp_path / "two.npy", two)
    assert load_reference(tmp_path / "two.npy")[0].shape == (10, 10, 1)  # two phases: one channel

    from skimage import io

    io.imsave(tmp_path / "disk.png", (two * 255).astype(np.uint8), check_contrast=False)
    field, rep, _ = load_reference(tmp_path / "disk.png")
    np.testing.assert_array_equal(field[..., 0], two)


@pytest.mark.parametrize(
    "array, kwargs, match",
    [
        (np.zeros((8, 8, 5)), {"kind": "euler"}, "trailing|shape"),
        (np.full((8, 8, 3), np.nan), {}, "NaN"),
        (np.ones((8, 8, 4)), {}, "unit norm"),
        (np.full((8, 8, 3), 90.0), {}, "radians"),
        (np.zeros((8, 8, 4)) + [1, 0, 0, 0], {"symmetry": "icosahedral"}, "--symmetry"),
        (np.zeros((8, 8), np.int64), {}, "single phase"),
        (np.full((8, 8), 1.5), {}, r"\[0, 1\]"),
    ],
)
def test_bad_references_name_the_argument(tmp_path, array, kwargs, match):
    np.save(tmp_path / "ref.npy", array)
    with pytest.raises(ValueError, match=match) as err:
        load_reference(tmp_path / "ref.npy", **kwargs)
    assert "--reference" in str(err.value) or "--symmetry" in str(err.value)


def test_command_errors_exit_2(tmp_path, capsys):
    assert main(["reconstruct", "--reference", str(tmp_path / "none.npy"), "--out", "x"]) == 2
    assert "--reference" in capsys.readouterr().err
    np.save(tmp_path / "ref.npy", grains_euler())
    args = ["reconstruct", "--reference", str(tmp_path / "ref.npy"), "--out", str(tmp_path)]
    assert main([*args, "--shape", "8"]) == 2
    assert "--shape" in capsys.readouterr().err
    assert main([*args, "--optimizer", "newton"]) == 2
    assert "--optimizer" in capsys.readouterr().err


def test_orientation_run_writes_every_output(tmp_path, capsys):
    np.save(tmp_path / "ref.npy", grains_euler())
    out = tmp_path / "run"
    code = main(
        [
            "reconstruct",
            "--reference",
            str(tmp_path / "ref.npy"),
            "--out",
            str(out),
            "--descriptors",
            "two_point:1:max_lag=2,mean_variation:0.1",
            "--max-iter",
            "4",
            "--seeds",
            "2",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "level 1/1 (12x12): loss" in printed and "best of 2 seeds" in printed
    for name in ("fields.png", "loss.png", "two_point.png", "variogram.png"):
        assert (out / name).stat().st_size > 1000
    record = json.loads((out / "result.json").read_text())
    for key in ("initial_loss", "final_loss", "n_evaluations", "seconds_per_evaluation"):
        assert record[key] > 0
    assert len(record["loss_history"]) == 4 and record["peak_rss_mb"] > 10
    assert record["final_loss"] == min(record["seed_final_losses"])
    assert record["final_loss"] < record["initial_loss"]
    quats, euler = np.load(out / "quats.npy"), np.load(out / "euler.npy")
    assert quats.shape == (12, 12, 4) and euler.shape == (12, 12, 3)
    np.testing.assert_allclose(to_fundamental_zone(quats, "cubic"), quats, atol=1e-5)
    np.testing.assert_allclose(quat_to_euler(quats), euler, atol=1e-4)
    field = np.load(out / "field.npy")
    unit = field / np.linalg.norm(field, axis=-1, keepdims=True)
    np.testing.assert_allclose(misorientation_angle(unit, quats, "cubic"), 0.0, atol=1e-2)


def test_3d_phase_run_from_a_2d_image(tmp_path):
    labels = np.zeros((16, 16), np.uint8)
    labels[4:10, 3:9] = 255
    from skimage import io

    io.imsave(tmp_path / "ref.png", labels, check_contrast=False)
    out = tmp_path / "run"
    args = ["reconstruct", "--reference", str(tmp_path / "ref.png"), "--out", str(out)]
    args += ["--shape", "8,8,8", "--max-iter", "3", "--optimizer", "lbfgs", "--window", "2"]
    assert main(args) == 0
    assert np.load(out / "field.npy").shape == (8, 8, 8, 1)
    phases = np.load(out / "phases.npy")
    assert phases.shape == (8, 8, 8) and set(np.unique(phases)) <= {0, 1}
    record = json.loads((out / "result.json").read_text())
    assert record["representation"] == "phases" and record["shape"] == [8, 8, 8]


@pytest.mark.slow
def test_example_runs(tmp_path):
    assert main(["reconstruct", "--example", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["final_loss"] < 0.05 * record["initial_loss"]
