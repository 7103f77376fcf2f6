"""VTK XML ImageData (.vti) files: regular grids of cell data for ParaView.

A field is an array of shape ``(*spatial)`` (scalar) or ``(*spatial, C)`` (C components), with
``spatial`` = (nz, ny, nx), (ny, nx) or (nx,) in array-axis order: the last array axis is VTK's x
axis, so the C-order layout of the array is VTK's layout (x fastest, components interleaved) and no
transpose is needed. ``spacing`` and ``origin`` follow the array axes too: (dz, dy, dx) for a
volume. A 2-D field becomes an image one cell thick along z (z extent 0..0).

Binary data are base64 encoded, each array preceded by its byte count (UInt64, ``header_type``),
the header encoded separately from the data as VTK's own writers do, optionally zlib-compressed in
32 KiB blocks (``vtkZLibDataCompressor`` header: block count, block size, last partial block size,
compressed sizes). The reader also accepts UInt32 headers, headers encoded together with the data,
and ascii arrays; it reads CellData arrays only and refuses appended data.

References:
    VTK file formats, "XML File Formats" (Kitware, docs.vtk.org), ImageData and binary DataArray
    layout.
"""

from __future__ import annotations

import base64
import math
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .._validate import check_choice
from ._geometry import grid_geometry

_VTK_TYPES = {
    "int8": "Int8",
    "uint8": "UInt8",
    "int16": "Int16",
    "uint16": "UInt16",
    "int32": "Int32",
    "uint32": "UInt32",
    "int64": "Int64",
    "uint64": "UInt64",
    "float32": "Float32",
    "float64": "Float64",
}
_NUMPY_TYPES = {vtk: np.dtype(name) for name, vtk in _VTK_TYPES.items()}
_BLOCK = 32768  # VTK's default compression block size, in bytes


class VTIData(NamedTuple):
    """What :func:`read_vti` returns.

    Attributes:
        fields: name -> (*spatial) or (*spatial, C) cell-data array, spatial in array-axis order.
        spacing: cell size per array axis, e.g. (dz, dy, dx).
        origin: grid origin per array axis.
    """

    fields: dict[str, np.ndarray]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]


def _as_arrays(fields: Mapping, ndim: int | None) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    if not isinstance(fields, Mapping) or not fields:
        raise ValueError("fields: expected a non-empty mapping of name -> array")
    arrays = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"fields: names must be non-empty strings, got {name!r}")
        a = np.asarray(value)
        a = a.astype(np.uint8) if a.dtype == np.bool_ else a
        if a.dtype.name not in _VTK_TYPES:
            raise ValueError(
                f"fields[{name!r}]: unsupported dtype {a.dtype}; expected one of {list(_VTK_TYPES)}"
            )
        arrays[name] = a
    d = min(a.ndim for a in arrays.values()) if ndim is None else ndim
    if not 1 <= d <= 3:
        raise ValueError(f"ndim: VTK ImageData has 1 to 3 spatial axes, got {d} (pass ndim)")
    spatial = next(iter(arrays.values())).shape[:d]
    for name, a in arrays.items():
        if a.ndim not in (d, d + 1) or a.shape[:d] != spatial:
            raise ValueError(
                f"fields[{name!r}]: expected shape {spatial} or {spatial} + (C,), got {a.shape}"
            )
    return arrays, spatial


def _encode(a: np.ndarray, encoding: str, compress: bool) -> str:
    if encoding == "ascii":
        return " ".join(repr(v) for v in a.ravel().tolist())
    data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
    if compress:
        blocks = [zlib.compress(data[i : i + _BLOCK]) for i in range(0, len(data), _BLOCK)]
        header = [len(blocks), _BLOCK, len(data) % _BLOCK, *(len(b) for b in blocks)]
        data = b"".join(blocks)
    else:
        header = [len(data)]
    header_bytes = np.asarray(header, dtype="<u8").tobytes()
    return (base64.b64encode(header_bytes) + base64.b64encode(data)).decode("ascii")


def write_vti(
    path,
    fields: Mapping[str, np.ndarray],
    *,
    spacing: float | tuple[float, ...] = 1.0,
    origin: float | tuple[float, ...] = 0.0,
    ndim: int | None = None,
    encoding: str = "binary",
    compress: bool = False,
) -> None:
    """Writes cell-data fields on a regular grid as a VTK XML ImageData file.

    Args:
        path: file to write (conventionally ``*.vti``).
        fields: name -> array of shape ``(*spatial)`` or ``(*spatial, C)``; every field shares
            ``spatial``. Bools are written as UInt8; JAX arrays are copied to the host.
        spacing: cell size, a scalar or one value per array axis (dz, dy, dx); positive.
        origin: position of the grid's first corner, a scalar or one value per array axis.
        ndim: number of spatial axes (1-3). Default: the smallest ``ndim`` among the fields, so
            pass it when every field has components (e.g. only a (ny, nx, 3) field).
        encoding: 'binary' (base64) or 'ascii'.
        compress: zlib-compress binary arrays.

    Raises:
        ValueError: no fields, mismatched shapes, an unsupported dtype, bad spacing or origin.
    """
    check_choice(encoding, "encoding", ("binary", "ascii"))
    arrays, spatial = _as_arrays(fields, ndim)
    d = len(spatial)
    spacing, origin = grid_geometry(spacing, origin, d)
    # VTK lists axes as x, y, z: reverse the array axes and pad the missing ones.
    cells = list(reversed(spatial)) + [0] * (3 - d)
    vtk_spacing = list(reversed(spacing)) + [1.0] * (3 - d)
    vtk_origin = list(reversed(origin)) + [0.0] * (3 - d)
    extent = " ".join(f"0 {n}" for n in cells)

    root = ET.Element(
        "VTKFile",
        type="ImageData",
        version="1.0",
        byte_order="LittleEndian",
        header_type="UInt64",
    )
    if compress and encoding == "binary":
        root.set("compressor", "vtkZLibDataCompressor")
    image = ET.SubElement(
        root,
        "ImageData",
        WholeExtent=extent,
        Origin=" ".join(repr(v) for v in vtk_origin),
        Spacing=" ".join(repr(v) for v in vtk_spacing),
    )
    piece = ET.SubElement(image, "Piece", Extent=extent)
    ET.SubElement(piece, "PointData")
    cell_data = ET.SubElement(piece, "CellData")
    scalars = [name for name, a in arrays.items() if a.ndim == d]
    if scalars:
        cell_data.set("Scalars", scalars[0])
    for name, a in arrays.items():
        array = ET.SubElement(
            cell_data,
            "DataArray",
            type=_VTK_TYPES[a.dtype.name],
            Name=name,
            NumberOfComponents=str(a.shape[-1] if a.ndim == d + 1 else 1),
            format=encoding,
        )
        array.text = _encode(a, encoding, compress)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _split_header(text: str, nbytes: int) -> tuple[bytes, bytes]:
    """(header, data) bytes of a base64 text whose first ``nbytes`` decoded bytes are the header."""
    nchars = 4 * math.ceil(nbytes / 3)
    if nbytes % 3 and text[nchars - 1 : nchars] == "=":  # header encoded on its own
        return base64.b64decode(text[:nchars]), base64.b64decode(text[nchars:])
    raw = base64.b64decode(text)
    return raw[:nbytes], raw[nbytes:]


def _decode_binary(text: str, header_type: np.dtype, compressed: bool) -> bytes:
    text = "".join(text.split())
    size = header_type.itemsize
    if not compressed:
        header, data = _split_header(text, size)
        return data[: int(np.frombuffer(header, header_type)[0])]
    n_blocks = int(np.frombuffer(_split_header(text, 3 * size)[0][:size], header_type)[0])
    header, data = _split_header(text, (3 + n_blocks) * size)
    sizes = np.frombuffer(header, header_type)[3:].astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return b"".join(
        zlib.decompress(data[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)
    )


def _floats(element, name: str, default: float, path) -> list[float]:
    values = element.get(name, " ".join([str(default)] * 3)).split()
    if len(values) != 3:
        raise ValueError(f"{path}: ImageData {name}: expected 3 values, got {values}")
    return [float(v) for v in values]


def read_vti(path) -> VTIData:
    """Reads the cell data of a VTK XML ImageData file (single piece).

    Args:
        path: the .vti file.

    Returns:
        :class:`VTIData`; arrays have shape (nz, ny, nx[, C]), or (ny, nx[, C]) when the z extent
        is collapsed (0..0), and so on; spacing and origin in the same array-axis order.

    Raises:
        ValueError: not an ImageData file, appended data, an unknown type, or an array whose size
            does not match the extent.
    """
    root = ET.parse(path).getroot()
    if root.tag != "VTKFile" or root.get("type") != "ImageData":
        raise ValueError(f"{path}: not a VTK XML ImageData file")
    order = "<" if root.get("byte_order", "LittleEndian") == "LittleEndian" else ">"
    header_type = np.dtype(_NUMPY_TYPES[root.get("header_type", "UInt32")]).newbyteorder(order)
    compressed = root.get("compressor") is not None
    if compressed and root.get("compressor") != "vtkZLibDataCompressor":
        raise ValueError(f"{path}: unsupported compressor {root.get('compressor')!r}")
    image = root.find("ImageData")
    if image is None:
        raise ValueError(f"{path}: no ImageData element")
    extent = [int(v) for v in image.get("WholeExtent", "").split()]
    if len(extent) != 6:
        raise ValueError(f"{path}: WholeExtent: expected 6 integers")
    cells = [extent[2 * k + 1] - extent[2 * k] for k in range(3)]
    d = max(k + 1 for k in range(3) if cells[k] > 0) if any(cells) else 1
    spatial = tuple(max(n, 1) for n in reversed(cells[:d]))
    spacing = tuple(reversed(_floats(image, "Spacing", 1.0, path)[:d]))
    origin = tuple(reversed(_floats(image, "Origin", 0.0, path)[:d]))

    fields = {}
    for array in image.iterfind("Piece/CellData/DataArray"):
        name, vtk_type = array.get("Name"), array.get("type")
        if vtk_type not in _NUMPY_TYPES:
            raise ValueError(f"{path}: DataArray {name!r}: unsupported type {vtk_type!r}")
        dtype = _NUMPY_TYPES[vtk_type]
        fmt = array.get("format", "ascii")
        if fmt == "ascii":
            values = np.array((array.text or "").split()).astype(dtype)
        elif fmt == "binary":
            raw = _decode_binary(array.text or "", header_type, compressed)
            values = np.frombuffer(raw, dtype.newbyteorder(order)).astype(dtype)
        else:
            raise ValueError(f"{path}: DataArray {name!r}: format {fmt!r} is not supported")
        components = int(array.get("NumberOfComponents", "1"))
        n = math.prod(spatial)
        if values.size != n * components:
            raise ValueError(
                f"{path}: DataArray {name!r}: expected {n * components} values, got {values.size}"
            )
        fields[name] = values.reshape(spatial if components == 1 else (*spatial, components))
    return VTIData(fields, spacing, origin)
