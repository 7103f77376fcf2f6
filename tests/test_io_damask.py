"""DAMASK grid export: the .vti material grid, material.yaml (checked with PyYAML), round trips."""

import numpy as np
import pytest

from jaxmicro.io import read_damask, read_vti, write_damask
from jaxmicro.orientations import euler_to_quat

RNG = np.random.default_rng(2)
IDS = RNG.integers(0, 4, size=(2, 3, 5))  # (nz, ny, nx), grains 0..3
QUATS = RNG.normal(size=(4, 4))
QUATS /= np.linalg.norm(QUATS, axis=1, keepdims=True)
PHASES = np.array([1, 2, 1, 1])
NAMES = {1: "Aluminum", 2: "Ti alpha"}


def canonical(q):
    """The representative DAMASK is given: renormalized (as write_damask does), q0 >= 0."""
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(q[:, :1] < 0, -q, q)


def test_round_trip(tmp_path):
    grid_path, yaml_path = write_damask(
        tmp_path, IDS, QUATS, PHASES, phase_names=NAMES, spacing=(1e-6, 2e-6, 3e-6), origin=0.5
    )
    assert grid_path == tmp_path / "grid.vti" and yaml_path == tmp_path / "material.yaml"
    g = read_damask(tmp_path)
    np.testing.assert_array_equal(g.material, IDS)
    np.testing.assert_array_equal(g.quats, canonical(QUATS))  # full float precision
    assert g.phases == ("Aluminum", "Ti alpha", "Aluminum", "Aluminum")
    assert g.spacing == (1e-6, 2e-6, 3e-6) and g.origin == (0.5, 0.5, 0.5)


def test_grid_file_is_what_damask_reads(tmp_path):
    write_damask(tmp_path, IDS, QUATS, PHASES, spacing=0.25)
    grid = read_vti(tmp_path / "grid.vti")
    assert list(grid.fields) == ["material"]
    assert grid.fields["material"].dtype == np.int32 and grid.fields["material"].shape == (2, 3, 5)
    text = (tmp_path / "grid.vti").read_text()
    assert 'WholeExtent="0 5 0 3 0 2"' in text  # DAMASK cells (x, y, z) = (5, 3, 2)


def test_material_yaml_structure(tmp_path):
    yaml = pytest.importorskip("yaml")  # independent parser; not a jaxmicro dependency
    config = {"Aluminum": {"lattice": "cF", "mechanical": {"output": ["F", "P"], "C_11": 1.0e-5}}}
    _, path = write_damask(tmp_path, IDS, -QUATS, PHASES, phase_names=NAMES, phase_config=config)
    doc = yaml.safe_load(path.read_text())
    assert doc["homogenization"] == {"SX": {"N_constituents": 1, "mechanical": {"type": "pass"}}}
    assert doc["phase"]["Aluminum"] == config["Aluminum"]  # 1e-5 is read back as a float
    assert doc["phase"]["Ti alpha"] == {}
    assert len(doc["material"]) == len(QUATS)
    for entry, q, p in zip(doc["material"], canonical(-QUATS), PHASES, strict=True):
        assert entry["homogenization"] == "SX"
        (constituent,) = entry["constituents"]
        assert constituent["phase"] == NAMES[p] and constituent["v"] == 1.0
        assert constituent["O"] == q.tolist() and constituent["O"][0] >= 0
        assert abs(np.linalg.norm(constituent["O"]) - 1.0) < 1e-12


def test_euler_input_uses_the_orientations_convention(tmp_path):
    euler = RNG.uniform([0, 0, 0], [2 * np.pi, np.pi, 2 * np.pi], size=(4, 3))
    write_damask(tmp_path, IDS, euler, PHASES)
    expected = np.asarray(euler_to_quat(euler), dtype=np.float64)
    np.testing.assert_allclose(read_damask(tmp_path).quats, canonical(expected), atol=1e-15)
    assert read_damask(tmp_path).phases == ("phase1", "phase2", "phase1", "phase1")


def test_two_dimensional_map_becomes_one_cell_thick(tmp_path):
    write_damask(tmp_path, IDS[0], QUATS, PHASES, spacing=(0.5, 0.25))
    g = read_damask(tmp_path)
    assert g.material.shape == (1, 3, 5) and g.spacing == (1.0, 0.5, 0.25)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="unit norm"):
        write_damask(tmp_path, IDS, 2 * QUATS, PHASES)
    with pytest.raises(ValueError, match=r"ids in \[0, 3\)"):
        write_damask(tmp_path, IDS, QUATS[:3], PHASES[:3])
    with pytest.raises(ValueError, match="phases"):
        write_damask(tmp_path, IDS, QUATS, PHASES[:2])
    with pytest.raises(ValueError, match="no name for phases"):
        write_damask(tmp_path, IDS, QUATS, PHASES, phase_names={1: "Al"})
    with pytest.raises(ValueError, match="orientations"):
        write_damask(tmp_path, IDS, QUATS[:, :2], PHASES)
    with pytest.raises(ValueError, match="non-finite"):
        write_damask(tmp_path, IDS, np.full((4, 4), np.nan), PHASES)
    with pytest.raises(ValueError, match="spacing"):
        write_damask(tmp_path, IDS[0], QUATS, PHASES, spacing=(1.0, 2.0, 3.0))
    write_damask(tmp_path, IDS, QUATS, PHASES)
    with open(tmp_path / "material.yaml", "a") as f:
        f.write("  - {homogenization: SX}\n")
    with pytest.raises(ValueError, match="material.yaml:"):
        read_damask(tmp_path)
