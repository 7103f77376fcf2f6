"""Smoke runs of ``jaxmicro evaluate`` on tiny inputs of each kind."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from jaxmicro.cli import main


def voronoi(rng, shape, n):
    seeds = rng.uniform(0, 1, (n, len(shape))) * shape
    centres = np.indices(shape).reshape(len(shape), -1).T + 0.5
    return cKDTree(seeds, boxsize=np.asarray(shape, float)).query(centres)[1].reshape(shape)


PALETTE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 0]])


def test_evaluate_rgb_volumes(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("ref", 12), ("gen", 15)):
        ids = np.stack([voronoi(rng, (16, 16, 16), n) for _ in range(3)])
        np.save(tmp_path / f"{name}.npy", PALETTE[ids % 7].astype(np.float32))
    out = tmp_path / "out"
    argv = ["evaluate", "--generated", str(tmp_path / "gen.npy"), "--reference"]
    argv += [str(tmp_path / "ref.npy"), "--out", str(out), "--periodic", "--vgg", "none"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    assert "kind: `rgb`" in report and "| sphericity |" in report
    assert "S2 discrepancy" in report and "PCA(2) of S2 curves" in report
    assert "VGG-19: skipped" in report
    for png in ("hist_volume.png", "s2.png", "slices.png"):
        assert (out / png).stat().st_size > 1000


@pytest.mark.parametrize("vgg", ["none", pytest.param("random", marks=pytest.mark.slow)])
def test_evaluate_grain_ids_2d(tmp_path, vgg):
    rng = np.random.default_rng(1)
    ref, gen = tmp_path / "ref", tmp_path / "gen"
    ref.mkdir(), gen.mkdir()
    for i in range(4):
        np.save(ref / f"{i}.npy", voronoi(rng, (32, 32), 20).astype(np.int32))
    np.savez(gen / "all.npz", a=np.stack([voronoi(rng, (32, 32), 25) for _ in range(4)]))
    out = tmp_path / "out"
    argv = ["evaluate", "--generated", str(gen), "--reference", str(ref), "--out", str(out)]
    assert main(argv + ["--dim", "2", "--vgg", vgg]) == 0
    report = (out / "report.md").read_text()
    assert "kind: `ids`" in report and "4 samples" in report and "Data copying" in report
    assert ("VGG slice score" in report) == (vgg == "random")


def test_evaluate_phases_and_errors(tmp_path, capsys):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "ref.npy", (rng.uniform(size=(3, 24, 24)) > 0.6).astype(np.int8))
    np.save(tmp_path / "gen.npy", (rng.uniform(size=(3, 24, 24)) > 0.5).astype(np.int8))
    out = tmp_path / "out"
    argv = ["evaluate", "--generated", str(tmp_path / "gen.npy"), "--reference"]
    argv += [str(tmp_path / "ref.npy"), "--out", str(out), "--dim", "2", "--vgg", "none"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    assert "kind: `phase`" in report and "Grain properties" not in report
    assert "lineal-path discrepancy" in report
    np.save(tmp_path / "flat.npy", np.zeros((24, 24), np.int8))
    argv[2] = str(tmp_path / "flat.npy")
    # the dispatcher reports a ValueError as exit status 2 with the message on stderr
    assert main(argv[:-4] + ["--vgg", "none"]) == 2
    assert "a phase sample has 3 axes (--dim 3)" in capsys.readouterr().err
