"""``jaxmicro reconstruct``: outputs, the output folder, and bad inputs (exit 2, no traceback).

The library functions behind the command (reference loading, descriptor text, shapes) are
tested in ``test_reconstruct_reference.py``.
"""

import json
import re

import numpy as np
import pytest

from jaxmicro.cli import main
from jaxmicro.io import EBSDMap, Phase, write_ang
from jaxmicro.orientations import misorientation_angle, quat_to_euler, to_fundamental_zone


def grains_euler(n=12):
    """Three vertical bands of distinct orientations, Bunge angles in radians."""
    euler = np.zeros((n, n, 3))
    euler[:, : n // 3] = (0.3, 0.5, 1.0)
    euler[:, n // 3 : 2 * n // 3] = (2.0, 1.2, 0.4)
    euler[:, 2 * n // 3 :] = (4.0, 0.2, 5.0)
    return euler


def _ang_in_degrees(path):
    euler = np.rad2deg(grains_euler(8))
    cubic = Phase("Nickel", "m-3m", (3.52, 3.52, 3.52, 90.0, 90.0, 90.0))
    write_ang(path, EBSDMap.from_euler(euler, np.ones((8, 8), np.int32), phases={1: cubic}))


def _npy(array):
    return lambda path: np.save(path, array)


GOOD = _npy(grains_euler())
BAD_INPUTS = [  # (reference writer, reference suffix, extra arguments, what the error says)
    (GOOD, ".npy", ["--window", "0"], "--window: the lag window must be >= 1"),
    (GOOD, ".npy", ["--descriptors", "two_point:1:max_lag=0"], "--descriptors: .*max_lag"),
    (GOOD, ".npy", ["--descriptors", "two_point:1:max_lag=-3"], "--descriptors: .*max_lag"),
    (GOOD, ".npy", ["--descriptors", "two_point:1:foo=3"], "accepted options: max_lag, pairs"),
    (GOOD, ".npy", ["--descriptors", "lineal_path"], "--descriptors: .*max_length is required"),
    (GOOD, ".npy", ["--shape", "8"], "--shape"),
    (GOOD, ".npy", ["--shape", "100000,100000,100000"], r"--shape: .* needs at least .* GiB"),
    (GOOD, ".npy", ["--optimizer", "newton"], "--optimizer"),
    (GOOD, ".npy", ["--max-iter", "0"], "--max-iter: must be >= 1"),
    (GOOD, ".npy", ["--seeds", "0"], "--seeds: must be >= 1"),
    (GOOD, ".npy", ["--learning-rate", "0"], "--learning-rate"),
    (GOOD, ".npy", ["--symmetry", "icosahedral"], "--symmetry"),
    (GOOD, ".npy", ["--degrees", "3"], "--degrees"),
    (GOOD, ".npy", ["--degrees", "x"], "--degrees"),
    (_npy(np.ones((8, 8, 4), np.complex128)), ".npy", [], "--reference: .*complex"),
    (lambda p: p.write_bytes(b""), ".npy", [], r"--reference: .*empty \(0 bytes\)"),
    (lambda p: p.write_text("0 1\n1 0\n"), ".npy", [], "--reference: .*not a NumPy .npy"),
    (_npy(np.full((8, 8, 3), 90.0)), ".npy", [], "--reference: .*radians"),
    (_ang_in_degrees, ".ang", [], "--reference: .*store Euler angles in radians"),
]


@pytest.mark.parametrize("write, suffix, extra, match", BAD_INPUTS)
def test_bad_inputs_exit_2_before_any_output(tmp_path, capsys, write, suffix, extra, match):
    ref, out = tmp_path / f"ref{suffix}", tmp_path / "run"
    write(ref)
    code = main(["reconstruct", "--reference", str(ref), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("jaxmicro reconstruct: error: ")
    assert re.search(match, err), err
    assert not out.exists()  # refused before the output folder was made


def test_output_folder_errors(tmp_path, capsys):
    np.save(tmp_path / "ref.npy", grains_euler())
    args = ["reconstruct", "--reference", str(tmp_path / "ref.npy"), "--max-iter", "1"]
    (tmp_path / "file").write_text("x")
    cases = [
        (tmp_path / "file", "--out: .* is a file"),
        (tmp_path / "file" / "sub", "--out: cannot write"),
        (tmp_path, "--out: .* holds the reference"),
    ]
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "result.json").write_text("{}")
    cases.append((earlier, "--out: .* already holds files .* --overwrite"))
    for out, match in cases:
        assert main([*args, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert re.search(match, err) and "Traceback" not in err, err
    assert (earlier / "result.json").read_text() == "{}"  # another run's files are untouched
    assert main(["reconstruct", "--reference", str(tmp_path / "none.npy"), "--out", "x"]) == 2
    assert "--reference" in capsys.readouterr().err


def test_orientation_run_writes_every_output(tmp_path, capsys):
    np.save(tmp_path / "ref.npy", grains_euler())
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.png").write_bytes(b"an earlier run's figure")
    code = main(
        [
            "reconstruct",
            "--reference",
            str(tmp_path / "ref.npy"),
            "--out",
            str(out),
            "--overwrite",
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
    assert not (out / "old.png").exists()  # --overwrite replaced the earlier run
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
