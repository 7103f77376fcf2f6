"""DREAM.3D (SIMPL 6.x, file version 7.0) HDF5 files holding one image-geometry volume.

Layout written (and read back)::

    /                                  FileVersion "7.0", "DREAM3D Version"
    /DataContainerBundles              (empty group)
    /DataContainers/<container>/_SIMPL_GEOMETRY
        attributes GeometryName, GeometryTypeName "ImageGeometry", GeometryType 0 (uint32),
                   SpatialDimensionality 3, UnitDimensionality 3 (uint32)
        DIMENSIONS (3,) int64 cells (x, y, z); SPACING, ORIGIN (3,) float32 (x, y, z)
    /DataContainers/<container>/CellData          AttributeMatrixType 3 (Cell), TupleDimensions
        FeatureIds (z, y, x, 1) int32, EulerAngles (z, y, x, 3) float32, Phases (z, y, x, 1) int32
    /DataContainers/<container>/CellEnsembleData  AttributeMatrixType 11 (CellEnsemble)
        CrystalStructures (n + 1, 1) uint32, PhaseTypes (n + 1, 1) uint32 (row 0: unknown, 999)

Every array carries ComponentDimensions (uint64), DataArrayVersion 2 (int32), ObjectType
("DataArray<int32_t>", "DataArray<float>", "DataArray<uint32_t>"), TupleDimensions (uint64, x y z)
and "Tuple Axis Dimensions" ("x=..,y=..,z=.."). Strings are fixed-length, null-terminated ASCII,
as SIMPL writes them. In memory, volumes are (nz, ny, nx) in array-axis order, the on-disk order;
a 2-D (ny, nx) input is written with nz = 1. Euler angles are Bunge, radians. DREAM.3D numbers
phases from 1 (0 = unknown); crystal structures use EbsdLib's enumeration (Cubic_High 1,
Hexagonal_High 0, Tetragonal_High 8, Trigonal_High 10, OrthoRhombic 6, Monoclinic 5, Triclinic 4).

References:
    BlueQuartz SIMPL sources: DataContainer::writeMeshToHDF5, ImageGeom::writeGeometryToHDF5,
    SIMPL::HDF5 constants, AttributeMatrix::Type; EbsdLib EbsdConstants.h (CrystalStructure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import h5py
import numpy as np

from ._geometry import grid_geometry
from .ebsd import SYMMETRIES

_CRYSTAL_STRUCTURE = {
    "hexagonal": 0,
    "cubic": 1,
    "triclinic": 4,
    "monoclinic": 5,
    "orthorhombic": 6,
    "tetragonal": 8,
    "trigonal": 10,
}
_UNKNOWN = 999
_CELL, _CELL_ENSEMBLE = 3, 11
_OBJECT_TYPES = {
    "int32": "DataArray<int32_t>",
    "float32": "DataArray<float>",
    "uint32": "DataArray<uint32_t>",
}


class Dream3DVolume(NamedTuple):
    """What :func:`read_dream3d` returns (arrays in array-axis order, (nz, ny, nx[, C])).

    Attributes:
        feature_ids: (nz, ny, nx) int32 FeatureIds, or None if absent.
        euler: (nz, ny, nx, 3) float32 EulerAngles (radians), or None.
        phases: (nz, ny, nx) int32 Phases, or None.
        spacing: (dz, dy, dx).
        origin: (oz, oy, ox).
        symmetries: symmetry name of phases 1..n from CrystalStructures (None for a structure
            without a ``jaxmicro.orientations`` name); () without CellEnsembleData.
        cell_data: every cell array by name, single components squeezed.
    """

    feature_ids: np.ndarray | None
    euler: np.ndarray | None
    phases: np.ndarray | None
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    symmetries: tuple[str | None, ...]
    cell_data: dict[str, np.ndarray]


def _set_string(obj, name: str, value: str) -> None:
    data = value.encode("ascii")
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(len(data) + 1)
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    obj.attrs.create(name, np.array(data, dtype=f"S{len(data) + 1}"), dtype=h5py.Datatype(tid))


def _get_string(obj, name: str) -> str:
    value = obj.attrs[name]
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _write_array(group, name: str, values: np.ndarray, tuple_dims: Sequence[int]) -> None:
    """One SIMPL DataArray: ``values`` is (*tuples in z, y, x order, C); tuple_dims is x, y, z."""
    dset = group.create_dataset(name, data=values)
    dset.attrs["ComponentDimensions"] = np.array([values.shape[-1]], np.uint64)
    dset.attrs["DataArrayVersion"] = np.array([2], np.int32)
    _set_string(dset, "ObjectType", _OBJECT_TYPES[values.dtype.name])
    dset.attrs["TupleDimensions"] = np.array(tuple_dims, np.uint64)
    axes = ",".join(f"{a}={n}" for a, n in zip("xyz", tuple_dims, strict=False))
    _set_string(dset, "Tuple Axis Dimensions", axes)


def _attribute_matrix(parent, name: str, kind: int, tuple_dims: Sequence[int]):
    group = parent.create_group(name)
    group.attrs["AttributeMatrixType"] = np.array([kind], np.uint32)
    group.attrs["TupleDimensions"] = np.array(tuple_dims, np.uint64)
    return group


def _cell_or_feature(values, name: str, ids: np.ndarray, components: int) -> np.ndarray:
    """Per-cell values as given, or a per-feature table looked up by feature id."""
    values = np.asarray(values)
    grid = ids.shape
    cell_shape = grid if components == 1 else (*grid, components)
    if values.shape == cell_shape:
        return values
    table_ndim = 1 if components == 1 else 2
    if values.ndim == table_ndim and values.shape[1:] == cell_shape[len(grid) :]:
        if ids.size and (ids.min() < 0 or ids.max() >= len(values)):
            raise ValueError(
                f"{name}: a per-feature table of {len(values)} rows needs feature ids in "
                f"[0, {len(values)}), got [{ids.min()}, {ids.max()}]"
            )
        return values[ids]
    raise ValueError(
        f"{name}: expected per-cell shape {cell_shape} or a per-feature table "
        f"(n_features{', ' + str(components) if components > 1 else ''}), got {values.shape}"
    )


def write_dream3d(
    path,
    feature_ids,
    euler,
    phases,
    *,
    spacing: float | Sequence[float] = 1.0,
    origin: float | Sequence[float] = 0.0,
    symmetries: Sequence[str] | None = None,
    container: str = "ImageDataContainer",
) -> None:
    """Writes a volume as a DREAM.3D file (FeatureIds, EulerAngles, Phases cell arrays).

    Args:
        path: file to write (conventionally ``*.dream3d``).
        feature_ids: (nz, ny, nx) or (ny, nx) integer grain ids.
        euler: (*grid, 3) Bunge angles in radians per cell, or an (n_features, 3) table indexed
            by feature id. Stored as float32.
        phases: (*grid) integer phase per cell (1..n; 0 = unknown), or an (n_features,) table.
        spacing: cell size, scalar or per array axis (dz, dy, dx).
        origin: grid origin, scalar or per array axis.
        symmetries: symmetry names of phases 1..n; writes CellEnsembleData/CrystalStructures and
            PhaseTypes (primary). None writes no ensemble data.
        container: data-container name.

    Raises:
        ValueError: shapes that do not match, non-integer ids, non-finite angles, unknown
            symmetry names.
    """
    ids = np.asarray(feature_ids)
    if ids.ndim not in (2, 3) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"feature_ids: expected a 2-D or 3-D integer array, got {ids.dtype} {ids.shape}"
        )
    euler = _cell_or_feature(euler, "euler", ids, 3).astype(np.float32)
    phases = _cell_or_feature(phases, "phases", ids, 1)
    if not np.issubdtype(phases.dtype, np.integer):
        raise ValueError(f"phases: expected integers, got {phases.dtype}")
    if not np.all(np.isfinite(euler)):
        raise ValueError("euler: contains non-finite values")
    spacing, origin = grid_geometry(spacing, origin, ids.ndim)
    if ids.ndim == 2:
        ids, euler, phases = ids[None], euler[None], phases[None]
        spacing, origin = (1.0, *spacing), (0.0, *origin)
    dims = tuple(reversed(ids.shape))  # SIMPL lists x, y, z

    with h5py.File(path, "w") as f:
        _set_string(f, "FileVersion", "7.0")
        _set_string(f, "DREAM3D Version", "6.5.171")
        f.create_group("DataContainerBundles")
        dc = f.create_group("DataContainers").create_group(container)
        geometry = dc.create_group("_SIMPL_GEOMETRY")
        _set_string(geometry, "GeometryName", "ImageGeometry")
        _set_string(geometry, "GeometryTypeName", "ImageGeometry")
        geometry.attrs["GeometryType"] = np.array([0], np.uint32)
        geometry.attrs["SpatialDimensionality"] = np.array([3], np.uint32)
        geometry.attrs["UnitDimensionality"] = np.array([3], np.uint32)
        geometry.create_dataset("DIMENSIONS", data=np.array(dims, np.int64))
        geometry.create_dataset("SPACING", data=np.array(spacing[::-1], np.float32))
        geometry.create_dataset("ORIGIN", data=np.array(origin[::-1], np.float32))

        cells = _attribute_matrix(dc, "CellData", _CELL, dims)
        _write_array(cells, "FeatureIds", ids.astype(np.int32)[..., None], dims)
        _write_array(cells, "EulerAngles", euler, dims)
        _write_array(cells, "Phases", phases.astype(np.int32)[..., None], dims)

        if symmetries is not None:
            unknown = [s for s in symmetries if s not in _CRYSTAL_STRUCTURE]
            if unknown:
                raise ValueError(f"symmetries: unknown names {unknown}; expected {SYMMETRIES}")
            n = len(symmetries) + 1
            ensemble = _attribute_matrix(dc, "CellEnsembleData", _CELL_ENSEMBLE, (n,))
            structures = [_UNKNOWN] + [_CRYSTAL_STRUCTURE[s] for s in symmetries]
            _write_array(
                ensemble, "CrystalStructures", np.array(structures, np.uint32)[:, None], (n,)
            )
            types = [_UNKNOWN] + [0] * (n - 1)  # PhaseType::Primary
            _write_array(ensemble, "PhaseTypes", np.array(types, np.uint32)[:, None], (n,))


def _matrices_of_type(dc, kind: int) -> list:
    return [
        g
        for g in dc.values()
        if isinstance(g, h5py.Group)
        and "AttributeMatrixType" in g.attrs
        and int(np.ravel(g.attrs["AttributeMatrixType"])[0]) == kind
    ]


def read_dream3d(path, *, container: str | None = None) -> Dream3DVolume:
    """Reads the image geometry and cell arrays of a DREAM.3D file.

    Args:
        path: the .dream3d file.
        container: data-container name; default the file's only container.

    Returns:
        :class:`Dream3DVolume` with arrays (nz, ny, nx[, C]) (nz = 1 for a 2-D map).

    Raises:
        ValueError: no such container, several containers without ``container``, a geometry
            that is not an image geometry, or no cell attribute matrix.
    """
    with h5py.File(path, "r") as f:
        containers = list(f.get("DataContainers", {}))
        if container is None:
            if len(containers) != 1:
                raise ValueError(f"{path}: pass container=, one of {containers}")
            container = containers[0]
        if container not in containers:
            raise ValueError(f"{path}: no data container {container!r}; found {containers}")
        dc = f["DataContainers"][container]
        geometry = dc["_SIMPL_GEOMETRY"]
        if _get_string(geometry, "GeometryTypeName") != "ImageGeometry":
            raise ValueError(f"{path}: container {container!r} does not hold an image geometry")
        dims = tuple(int(n) for n in geometry["DIMENSIONS"][()])
        spacing = tuple(float(v) for v in geometry["SPACING"][()][::-1])
        origin = tuple(float(v) for v in geometry["ORIGIN"][()][::-1])
        cell_matrices = _matrices_of_type(dc, _CELL)
        if not cell_matrices:
            raise ValueError(f"{path}: container {container!r} has no cell attribute matrix")
        shape = dims[::-1]
        cell_data = {}
        for name, dset in cell_matrices[0].items():
            values = np.asarray(dset[()]).reshape(*shape, -1)
            cell_data[name] = values[..., 0] if values.shape[-1] == 1 else values
        symmetries = ()
        ensembles = _matrices_of_type(dc, _CELL_ENSEMBLE)
        if ensembles and "CrystalStructures" in ensembles[0]:
            names = {code: name for name, code in _CRYSTAL_STRUCTURE.items()}
            codes = np.ravel(ensembles[0]["CrystalStructures"][()])[1:]
            symmetries = tuple(names.get(int(c)) for c in codes)
    return Dream3DVolume(
        feature_ids=cell_data.get("FeatureIds"),
        euler=cell_data.get("EulerAngles"),
        phases=cell_data.get("Phases"),
        spacing=spacing,
        origin=origin,
        symmetries=symmetries,
        cell_data=cell_data,
    )
