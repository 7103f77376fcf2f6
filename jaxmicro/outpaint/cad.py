"""CAD shapes for outpainting: STL triangle meshes and their voxelization.

A closed (watertight) triangle mesh is voxelized by ray parity: for every voxel column along z,
a ray through the column's centre crosses the surface an even number of times, and a voxel centre
is inside when an odd number of crossings lie below it. Ray origins are nudged by a tiny fixed
offset (a millionth of a voxel) so that rays through shared edges or vertices of the mesh are not
counted twice.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


class STLFormatError(ValueError):
    """Raised for a file that is neither a valid ASCII nor a valid binary STL."""


def _parse_ascii(text: str, path: Path) -> np.ndarray:
    vertices = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if words and words[0] == "vertex":
            if len(words) != 4:
                raise STLFormatError(f"{path}:{number}: 'vertex' needs 3 numbers: {line.strip()!r}")
            try:
                vertices.append([float(w) for w in words[1:]])
            except ValueError as err:
                raise STLFormatError(f"{path}:{number}: {err}") from None
    if not vertices or len(vertices) % 3:
        raise STLFormatError(f"{path}: {len(vertices)} vertices is not a whole number of facets")
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 3, 3)


def read_stl(path: str | Path) -> np.ndarray:
    """Reads an ASCII or binary STL file.

    Args:
        path: the file.

    Returns:
        (F, 3, 3) float64 triangles: facet, vertex, (x, y, z) coordinate.

    Raises:
        STLFormatError: malformed file (a ValueError).
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) >= 84:
        (count,) = struct.unpack_from("<I", data, 80)
        if len(data) == 84 + 50 * count:  # a binary file's size is fixed by its facet count
            records = np.frombuffer(
                data,
                dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]),
                count=count,
                offset=84,
            )
            return records["v"].astype(np.float64)
    if data.lstrip()[:5].lower() != b"solid":
        raise STLFormatError(f"{path}: not an ASCII STL ('solid' header) and not a binary STL")
    return _parse_ascii(data.decode("ascii", errors="replace"), path)


def write_stl(path: str | Path, triangles: np.ndarray, *, binary: bool = True) -> None:
    """Writes (F, 3, 3) triangles as a binary (default) or ASCII STL file."""
    triangles = np.asarray(triangles, dtype=np.float64)
    if triangles.ndim != 3 or triangles.shape[1:] != (3, 3):
        raise ValueError(f"triangles: expected shape (F, 3, 3), got {triangles.shape}")
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    if binary:
        records = np.zeros(
            len(triangles), dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
        )
        records["n"], records["v"] = normals, triangles
        header = b"jaxmicro binary STL".ljust(80, b" ")
        Path(path).write_bytes(header + struct.pack("<I", len(triangles)) + records.tobytes())
        return
    lines = ["solid jaxmicro"]
    for n, tri in zip(normals, triangles, strict=True):
        lines.append(f"  facet normal {n[0]:.9e} {n[1]:.9e} {n[2]:.9e}\n    outer loop")
        lines.extend(f"      vertex {v[0]:.9e} {v[1]:.9e} {v[2]:.9e}" for v in tri)
        lines.append("    endloop\n  endfacet")
    lines.append("endsolid jaxmicro")
    Path(path).write_text("\n".join(lines) + "\n")


def mask_surface(mask: np.ndarray, voxel: float = 1.0) -> np.ndarray:
    """The closed surface of a voxel region as (F, 3, 3) outward-facing triangles.

    Every face between a voxel inside ``mask`` and one outside (or the array's border) becomes
    two triangles, so the surface is watertight and ``voxelize`` at the same voxel size (or any
    size whose centres miss the faces) gives the region back.

    Args:
        mask: ``(Z, Y, X)`` bool region; voxel ``(k, j, i)`` spans ``[i, i + 1] x [j, j + 1] x
            [k, k + 1]`` times ``voxel`` in (x, y, z).
        voxel: voxel edge in the STL's units.
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 3:
        raise ValueError(f"mask: expected a (Z, Y, X) bool array, got shape {mask.shape}")
    padded = np.pad(mask, 1)
    # Unit-square corners of a face normal to (x, y, z), counter-clockwise seen from outside +.
    squares = {
        0: np.array([[0, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]]),
        1: np.array([[0, 0, 0], [0, 0, 1], [1, 0, 1], [1, 0, 0]]),
        2: np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]),
    }
    triangles = []
    for xyz, axis in ((0, 2), (1, 1), (2, 0)):  # array axis of x, y, z
        step = np.diff(padded.astype(np.int8), axis=axis)  # +1: outside -> inside, -1: out
        for sign in (1, -1):
            zyx = np.argwhere(step == sign).astype(np.float64)
            # The face lies between padded index n and n + 1, i.e. at coordinate n of the mask.
            corner = np.zeros_like(zyx)
            corner[:, [2, 1, 0]] = zyx - 1.0
            corner[:, xyz] += 1.0
            quad = corner[:, None, :] + squares[xyz][None]
            if sign == 1:  # inside lies at +axis: the outward normal points to -axis
                quad = quad[:, ::-1]
            triangles += [quad[:, [0, 1, 2]], quad[:, [0, 2, 3]]]
    return np.concatenate(triangles) * float(voxel)


def voxelize(
    triangles: np.ndarray, voxel: float, *, origin=None, shape=None
) -> tuple[np.ndarray, np.ndarray]:
    """Voxelizes a closed triangle mesh by ray parity along z.

    Args:
        triangles: (F, 3, 3) mesh triangles (x, y, z), closed and consistently sized.
        voxel: voxel edge length, in the mesh's units.
        origin: (x, y, z) of the grid's lower corner; default the mesh's bounding-box minimum.
        shape: (Z, Y, X) grid size; default just enough to hold the mesh.

    Returns:
        ``(mask, origin)``: (Z, Y, X) boolean array, True where the voxel centre is inside the
        mesh (voxel (k, j, i) has its centre at origin + voxel * (i, j, k) + voxel / 2), and the
        origin used.
    """
    tri = np.asarray(triangles, dtype=np.float64)
    if tri.ndim != 3 or tri.shape[1:] != (3, 3):
        raise ValueError(f"triangles: expected shape (F, 3, 3), got {tri.shape}")
    if not np.all(np.isfinite(tri)):
        raise ValueError("triangles: contains non-finite coordinates")
    if not voxel > 0:
        raise ValueError(f"voxel: must be positive, got {voxel}")
    lo = tri.reshape(-1, 3).min(0) if origin is None else np.asarray(origin, dtype=np.float64)
    if shape is None:
        extent = tri.reshape(-1, 3).max(0) - lo
        # Extents within 1e-4 voxel of a whole number are rounding, e.g. float32 STL vertices:
        # 1.2 is stored as 1.2000000477, which must still give 12 voxels of 0.1.
        nx, ny, nz = np.maximum(np.ceil(extent / voxel - 1e-4).astype(int), 1)
        shape = (nz, ny, nx)
    nz, ny, nx = (int(s) for s in shape)
    nudge = 1e-6 * voxel * np.array([1.0, np.sqrt(2.0)])  # off any grid-aligned edge or vertex
    # Triangle vertices in grid units relative to voxel centres.
    p = (tri - lo) / voxel - 0.5
    p[..., :2] -= nudge / voxel
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    crossings = np.zeros((ny, nx, nz + 1), dtype=np.int32)  # count of crossings below each centre
    for k in range(len(p)):
        xs, ys = p[k, :, 0], p[k, :, 1]
        i0, i1 = max(int(np.ceil(xs.min())), 0), min(int(np.floor(xs.max())), nx - 1)
        j0, j1 = max(int(np.ceil(ys.min())), 0), min(int(np.floor(ys.max())), ny - 1)
        if i0 > i1 or j0 > j1:
            continue
        det = (b[k, 0] - a[k, 0]) * (c[k, 1] - a[k, 1]) - (c[k, 0] - a[k, 0]) * (b[k, 1] - a[k, 1])
        if det == 0.0:  # parallel to the rays: never crossed
            continue
        jj, ii = np.mgrid[j0 : j1 + 1, i0 : i1 + 1]
        u = ((ii - a[k, 0]) * (c[k, 1] - a[k, 1]) - (c[k, 0] - a[k, 0]) * (jj - a[k, 1])) / det
        v = ((b[k, 0] - a[k, 0]) * (jj - a[k, 1]) - (ii - a[k, 0]) * (b[k, 1] - a[k, 1])) / det
        hit = (u >= 0) & (v >= 0) & (u + v <= 1)
        if not hit.any():
            continue
        z = a[k, 2] + u * (b[k, 2] - a[k, 2]) + v * (c[k, 2] - a[k, 2])
        first_above = np.clip(np.floor(z).astype(int) + 1, 0, nz)  # centres strictly above z
        np.add.at(crossings, (jj[hit], ii[hit], first_above[hit]), 1)
    inside = (np.cumsum(crossings, axis=2)[..., :nz] % 2).astype(bool)
    return np.ascontiguousarray(inside.transpose(2, 0, 1)), lo
