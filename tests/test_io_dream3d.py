"""DREAM.3D files: the SIMPL paths and attributes DREAM.3D expects, round trips, errors."""

import h5py
import numpy as np
import pytest

from jaxmicro.io import read_dream3d, write_dream3d

RNG = np.random.default_rng(1)
IDS = RNG.integers(1, 6, size=(2, 3, 4))  # (nz, ny, nx); DREAM.3D ids start at 1
EULER = RNG.uniform(0, np.pi, size=(2, 3, 4, 3))
PHASES = RNG.integers(1, 3, size=(2, 3, 4))
DC = "DataContainers/ImageDataContainer"


def string_attr(obj, name):
    attr = h5py.h5a.open(obj.id, name.encode())
    tid = attr.get_type()
    assert tid.get_class() == h5py.h5t.STRING and tid.get_strpad() == h5py.h5t.STR_NULLTERM
    return obj.attrs[name].decode()


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "v.dream3d"
    write_dream3d(
        path,
        IDS,
        EULER,
        PHASES,
        spacing=(0.5, 0.25, 2.0),
        origin=(1.0, 2.0, 3.0),
        symmetries=["cubic", "hexagonal"],
    )
    return path


def test_file_layout_and_attributes(written):
    with h5py.File(written, "r") as f:
        assert string_attr(f, "FileVersion") == "7.0"
        assert "DREAM3D Version" in f.attrs and "DataContainerBundles" in f
        geometry = f[f"{DC}/_SIMPL_GEOMETRY"]
        assert string_attr(geometry, "GeometryTypeName") == "ImageGeometry"
        assert string_attr(geometry, "GeometryName") == "ImageGeometry"
        for name, value in (
            ("GeometryType", 0),
            ("SpatialDimensionality", 3),
            ("UnitDimensionality", 3),
        ):
            assert geometry.attrs[name].dtype == np.uint32 and geometry.attrs[name][0] == value
        dims = geometry["DIMENSIONS"]
        assert dims.dtype == np.int64 and dims[()].tolist() == [4, 3, 2]  # x, y, z
        assert geometry["SPACING"].dtype == np.float32
        assert geometry["SPACING"][()].tolist() == [2.0, 0.25, 0.5]
        assert geometry["ORIGIN"][()].tolist() == [3.0, 2.0, 1.0]

        cells = f[f"{DC}/CellData"]
        assert cells.attrs["AttributeMatrixType"].tolist() == [3]
        assert cells.attrs["TupleDimensions"].dtype == np.uint64
        assert cells.attrs["TupleDimensions"].tolist() == [4, 3, 2]
        expected = {
            "FeatureIds": ("DataArray<int32_t>", np.int32, 1),
            "EulerAngles": ("DataArray<float>", np.float32, 3),
            "Phases": ("DataArray<int32_t>", np.int32, 1),
        }
        for name, (object_type, dtype, components) in expected.items():
            dset = cells[name]
            assert dset.shape == (2, 3, 4, components) and dset.dtype == dtype
            assert string_attr(dset, "ObjectType") == object_type
            assert dset.attrs["ComponentDimensions"].tolist() == [components]
            assert dset.attrs["ComponentDimensions"].dtype == np.uint64
            assert dset.attrs["DataArrayVersion"].tolist() == [2]
            assert dset.attrs["TupleDimensions"].tolist() == [4, 3, 2]
            assert string_attr(dset, "Tuple Axis Dimensions") == "x=4,y=3,z=2"
        np.testing.assert_array_equal(cells["FeatureIds"][..., 0], IDS)  # z, y, x on disk

        ensemble = f[f"{DC}/CellEnsembleData"]
        assert ensemble.attrs["AttributeMatrixType"].tolist() == [11]
        assert ensemble["CrystalStructures"][:, 0].tolist() == [999, 1, 0]  # unknown, m-3m, 6/mmm
        assert ensemble["PhaseTypes"][:, 0].tolist() == [999, 0, 0]
        assert string_attr(ensemble["CrystalStructures"], "ObjectType") == "DataArray<uint32_t>"


def test_round_trip(written):
    v = read_dream3d(written)
    np.testing.assert_array_equal(v.feature_ids, IDS)
    np.testing.assert_array_equal(v.phases, PHASES)
    np.testing.assert_array_equal(v.euler, EULER.astype(np.float32))
    assert v.spacing == (0.5, 0.25, 2.0) and v.origin == (1.0, 2.0, 3.0)
    assert v.symmetries == ("cubic", "hexagonal")
    assert set(v.cell_data) == {"FeatureIds", "EulerAngles", "Phases"}


def test_per_feature_tables_equal_per_cell_arrays(tmp_path):
    table = RNG.uniform(0, np.pi, size=(6, 3))
    phase_table = np.array([0, 1, 2, 1, 2, 1])
    write_dream3d(tmp_path / "t.dream3d", IDS, table, phase_table)
    v = read_dream3d(tmp_path / "t.dream3d")
    np.testing.assert_array_equal(v.euler, table[IDS].astype(np.float32))
    np.testing.assert_array_equal(v.phases, phase_table[IDS])
    assert v.symmetries == ()


def test_two_dimensional_map(tmp_path):
    write_dream3d(tmp_path / "m.dream3d", IDS[0], EULER[0], PHASES[0], spacing=(0.5, 0.25))
    v = read_dream3d(tmp_path / "m.dream3d")
    assert v.feature_ids.shape == (1, 3, 4) and v.spacing == (1.0, 0.5, 0.25)
    np.testing.assert_array_equal(v.feature_ids[0], IDS[0])


def test_errors(tmp_path):
    path = tmp_path / "e.dream3d"
    with pytest.raises(ValueError, match="symmetries"):
        write_dream3d(path, IDS, EULER, PHASES, symmetries=["cubic", "quasicrystal"])
    with pytest.raises(ValueError, match="euler"):
        write_dream3d(path, IDS, EULER[..., :2], PHASES)
    with pytest.raises(ValueError, match=r"feature ids in \[0, 3\)"):
        write_dream3d(path, IDS, np.zeros((3, 3)), PHASES)
    with pytest.raises(ValueError, match="feature_ids"):
        write_dream3d(path, IDS.astype(float), EULER, PHASES)
    with pytest.raises(ValueError, match="non-finite"):
        write_dream3d(path, IDS, np.full_like(EULER, np.nan), PHASES)
    write_dream3d(path, IDS, EULER, PHASES)
    with pytest.raises(ValueError, match="no data container"):
        read_dream3d(path, container="SyntheticVolume")
