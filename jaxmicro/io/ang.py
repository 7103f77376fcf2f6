"""TSL/EDAX OIM .ang files: text maps with a '#'-prefixed header and one point per line.

Header: calibration items, one block per phase (``# Phase n``, ``MaterialName``, ``Formula``,
``Symmetry`` code, ``LatticeConstants`` a b c alpha beta gamma), then the grid (``GRID:
SqrGrid|HexGrid``, ``XSTEP``, ``YSTEP``, ``NCOLS_ODD``, ``NCOLS_EVEN``, ``NROWS``). Data columns:
phi1 Phi phi2 (radians), x, y, IQ, CI, phase, and optionally SEM signal, Fit and further columns
(named by ``# COLUMN_HEADERS`` in newer files). Points run along x first, row after row.

Hexagonal grids (odd rows of NCOLS_ODD points, even rows of NCOLS_EVEN points offset by half a
step, rows YSTEP = XSTEP sqrt(3)/2 apart) are refused by default; ``hex_grid='nearest'`` resamples
them onto a square grid of step XSTEP by nearest neighbour (each square point takes every column of
the closest measured point).

References:
    EDAX/TSL OIM .ang format as read by BlueQuartz EbsdLib (AngConstants.h: header keys, Symmetry
    codes 1, 2/20/21, 22, 4, 42, 3, 32, 6, 62, 23, 43).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from .._validate import check_choice
from ._text import (
    check_row_count,
    format_rows,
    integer_column,
    parse_number,
    parse_table,
    read_lines,
    single_line,
)
from .ebsd import ANG_SYMMETRY_CODES, EBSDFormatError, EBSDMap, Phase, quats_from_euler

_ITEM = re.compile(r"^([^\s:]+)\s*:?\s*(.*)$")
_PHASE_KEYS = ("MaterialName", "Formula", "Info", "Symmetry", "LatticeConstants", "NumberFamilies")
_PHASE_KEY_PREFIXES = ("hklFamilies", "ElasticConstants", "Categories")
_COLUMNS = ("phi1", "Phi", "phi2", "x", "y", "IQ", "CI", "phase", "SEM", "Fit")
_QUALITY = {5: "IQ", 6: "CI", 8: "SEM", 9: "Fit"}
_CALIBRATION = ("TEM_PIXperUM", "x-star", "y-star", "z-star", "WorkingDistance")


def _parse_header(path, lines):
    """(phase items, global items, index of the first data line); items are key -> (value, line)."""
    phase_items: dict[int, dict[str, tuple[str, int]]] = {}
    items: dict[str, tuple[str, int]] = {}
    current = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            return phase_items, items, index
        match = _ITEM.match(stripped[1:].strip())
        if match is None:
            continue
        key, value, number = match.group(1), match.group(2).strip(), index + 1
        if key == "Phase":
            current = parse_number(path, number, value, "Phase", integer=True)
            if not 0 < current <= np.iinfo(np.int32).max:
                raise EBSDFormatError(
                    path, number, f"Phase: expected a positive number, got {value!r}"
                )
            if current in phase_items:
                raise EBSDFormatError(path, number, f"phase {current} is defined twice")
            phase_items[current] = {"Phase": (value, number)}
        elif key in _PHASE_KEYS or key.startswith(_PHASE_KEY_PREFIXES):
            if current is None:
                raise EBSDFormatError(path, number, f"{key} appears before any '# Phase' line")
            phase_items[current].setdefault(key, (value, number))
        else:
            items.setdefault(key, (value, number))
    return phase_items, items, len(lines)


def _parse_phase(path, number: int, items: dict[str, tuple[str, int]]) -> Phase:
    phase_line = items["Phase"][1]
    if "Symmetry" not in items:
        raise EBSDFormatError(path, phase_line, f"phase {number} has no Symmetry line")
    value, line = items["Symmetry"]
    code = parse_number(path, line, value, "Symmetry", integer=True)
    if code not in ANG_SYMMETRY_CODES:
        raise EBSDFormatError(
            path,
            line,
            f"unknown Symmetry code {code}; expected one of {sorted(ANG_SYMMETRY_CODES)}",
        )
    if "LatticeConstants" not in items:
        raise EBSDFormatError(path, phase_line, f"phase {number} has no LatticeConstants line")
    value, line = items["LatticeConstants"]
    tokens = value.split()
    if len(tokens) != 6:
        raise EBSDFormatError(path, line, f"LatticeConstants: expected 6 values, got {len(tokens)}")
    lattice = tuple(parse_number(path, line, t, "LatticeConstants") for t in tokens)
    name = items.get("MaterialName", ("", 0))[0]
    formula = items.get("Formula", ("", 0))[0]
    return Phase(name, ANG_SYMMETRY_CODES[code], lattice, formula=formula)


def _grid_item(path, items, key, end_line, *, integer=False):
    if key not in items:
        raise EBSDFormatError(path, end_line, f"the header has no {key} line")
    value, line = items[key]
    number = parse_number(path, line, value.split()[0] if value else value, key, integer=integer)
    if number <= 0:
        raise EBSDFormatError(path, line, f"{key}: expected a positive value, got {value!r}")
    return number


def _resample_hex(values: np.ndarray, step: float) -> np.ndarray:
    """Rows of a hexagonal-grid table resampled onto a square grid of ``step`` (ny, nx, ncols)."""
    xy = values[:, 3:5]
    low, high = xy.min(axis=0), xy.max(axis=0)
    nx, ny = (np.floor((high - low) / step + 1e-6).astype(int) + 1).tolist()
    xs, ys = low[0] + step * np.arange(nx), low[1] + step * np.arange(ny)
    gx, gy = np.meshgrid(xs, ys)
    _, nearest = cKDTree(xy).query(np.stack([gx.ravel(), gy.ravel()], axis=-1))
    table = values[nearest].copy()
    table[:, 3], table[:, 4] = gx.ravel(), gy.ravel()
    return table.reshape(ny, nx, -1)


def read_ang(path, *, hex_grid: str = "raise") -> EBSDMap:
    """Reads a TSL/EDAX .ang map.

    Args:
        path: file to read.
        hex_grid: 'raise' (default) refuses hexagonal grids with an EBSDFormatError; 'nearest'
            resamples them onto a square grid of step XSTEP by nearest neighbour.

    Returns:
        The map; ``euler`` in radians as stored (no frame rotation), quality columns 'IQ', 'CI'
        and, when present, 'SEM', 'Fit' and further columns named by ``# COLUMN_HEADERS``
        (otherwise 'column11', ...). ``header`` holds the non-phase header items.

    Raises:
        EBSDFormatError: (a ValueError) for a malformed file, with the file name and line number:
            missing or invalid grid items, unknown Symmetry codes, rows of the wrong width,
            non-numeric or non-finite values, a phase number not in the header, a truncated
            or overlong data section.
    """
    check_choice(hex_grid, "hex_grid", ("raise", "nearest"))
    lines = read_lines(path)
    phase_items, items, start = _parse_header(path, lines)
    end_line = min(start + 1, len(lines))  # the first data line, or the last line at EOF
    if not phase_items:
        raise EBSDFormatError(path, end_line, "the header defines no phase ('# Phase n' block)")
    phases = {number: _parse_phase(path, number, its) for number, its in phase_items.items()}

    grid, grid_line = items.get("GRID", ("", end_line))
    grid = grid.split()[0].lower() if grid else ""
    if grid not in ("sqrgrid", "hexgrid"):
        raise EBSDFormatError(path, grid_line, f"GRID: expected SqrGrid or HexGrid, got {grid!r}")
    dx = _grid_item(path, items, "XSTEP", end_line)
    dy = _grid_item(path, items, "YSTEP", end_line)
    n_odd = _grid_item(path, items, "NCOLS_ODD", end_line, integer=True)
    n_rows = _grid_item(path, items, "NROWS", end_line, integer=True)
    value, line = items.get("NCOLS_EVEN", (str(n_odd), end_line))
    n_even = parse_number(path, line, value, "NCOLS_EVEN", integer=True)
    if grid == "sqrgrid" and n_even != n_odd:
        raise EBSDFormatError(path, line, "NCOLS_EVEN must equal NCOLS_ODD on a square grid")
    if n_even < 0:
        raise EBSDFormatError(path, line, f"NCOLS_EVEN: expected a count, got {value!r}")
    n_points = math.ceil(n_rows / 2) * n_odd + (n_rows // 2) * n_even

    ncols = None
    if "COLUMN_COUNT" in items:
        value, line = items["COLUMN_COUNT"]
        ncols = parse_number(path, line, value, "COLUMN_COUNT", integer=True)
    values, numbers = parse_table(path, lines, start, ncols)
    if values.shape[1] < 8:
        raise EBSDFormatError(
            path, int(numbers[0]), f"expected at least 8 columns ({' '.join(_COLUMNS[:8])})"
        )
    check_row_count(path, values, numbers, n_points)
    phase_column = integer_column(path, values, numbers, 7, "phase")
    unknown = np.flatnonzero(~np.isin(phase_column, [0, *phases]))
    if unknown.size:
        raise EBSDFormatError(
            path,
            int(numbers[unknown[0]]),
            f"phase {phase_column[unknown[0]]} is not defined in the header {sorted(phases)}",
        )

    if grid == "hexgrid":
        if hex_grid == "raise":
            raise EBSDFormatError(
                path,
                grid_line,
                "HexGrid maps are not supported; convert to a square grid first or pass "
                "hex_grid='nearest' to resample by nearest neighbour",
            )
        table = _resample_hex(values, dx)
        dy = dx
    else:
        table = values.reshape(n_rows, n_odd, -1)

    names = dict(_QUALITY)
    headers = [h.strip() for h in items.get("COLUMN_HEADERS", ("", 0))[0].split(",")]
    for column in range(10, table.shape[-1]):
        names[column] = (
            headers[column] if len(headers) == table.shape[-1] else f"column{column + 1}"
        )
    quality = {name: table[..., c] for c, name in names.items() if c < table.shape[-1]}
    header = {key: value for key, (value, _) in items.items()}
    if grid == "hexgrid":
        header["GRID"] = "SqrGrid"
    euler = table[..., :3]
    return EBSDMap(
        euler=euler,
        quats=quats_from_euler(euler),
        phase=table[..., 7].astype(np.int32),
        xy=table[..., 3:5],
        step=(dx, dy),
        phases=phases,
        quality=quality,
        header=header,
    )


def _ang_symmetry_code(phase: Phase) -> int:
    if phase.laue_group == "2/m":  # the unique axis is the one whose inter-axial angle is not 90
        alpha, beta, gamma = phase.lattice[3:]
        return 2 if gamma != 90 else 21 if alpha != 90 else 20
    return next(c for c, laue in ANG_SYMMETRY_CODES.items() if laue == phase.laue_group)


def write_ang(path, ebsd: EBSDMap) -> None:
    """Writes ``ebsd`` as a square-grid TSL .ang file.

    Euler angles, x and y are written with 5 decimals; quality columns 'IQ', 'CI', 'SEM', 'Fit'
    with 5 decimals (0 where the map lacks them: a map read from .ctf has no CI); other quality
    columns are not written. Header floats (steps, lattice constants) are written exactly.
    Calibration items (TEM_PIXperUM, x-star, y-star, z-star, WorkingDistance) come from
    ``ebsd.header`` when present, else are written as 0 (1 for TEM_PIXperUM).

    Args:
        path: file to write.
        ebsd: the map; its Euler angles are written as they are (no frame rotation).
    """
    ny, nx = ebsd.shape
    out = []
    for key in _CALIBRATION:
        default = "1.000000" if key == "TEM_PIXperUM" else "0.000000"
        out.append(f"# {key:<21} {single_line(ebsd.header.get(key, default), key)}")
    out.append("#")
    for number, phase in sorted(ebsd.phases.items()):
        lattice = " ".join(repr(float(v)) for v in phase.lattice)
        out += [
            f"# Phase {number}",
            f"# MaterialName  \t{single_line(phase.name, 'phase name')}",
            f"# Formula     \t{single_line(phase.formula, 'phase formula')}",
            "# Info \t\t",
            f"# Symmetry              {_ang_symmetry_code(phase)}",
            f"# LatticeConstants      {lattice}",
            "# NumberFamilies        0",
            "#",
        ]
    out += [
        "# GRID: SqrGrid",
        f"# XSTEP: {ebsd.step[0]!r}",
        f"# YSTEP: {ebsd.step[1]!r}",
        f"# NCOLS_ODD: {nx}",
        f"# NCOLS_EVEN: {nx}",
        f"# NROWS: {ny}",
        "#",
    ]
    for key in ("OPERATOR", "SAMPLEID", "SCANID"):
        out += [f"# {key}: \t{single_line(ebsd.header.get(key, ''), key)}", "#"]
    zeros = np.zeros((ny, nx))
    columns = [ebsd.euler[..., 0], ebsd.euler[..., 1], ebsd.euler[..., 2], ebsd.xy[..., 0]]
    columns += [ebsd.xy[..., 1], ebsd.quality.get("IQ", zeros), ebsd.quality.get("CI", zeros)]
    columns += [ebsd.phase, ebsd.quality.get("SEM", zeros), ebsd.quality.get("Fit", zeros)]
    table = np.stack([np.asarray(c, dtype=np.float64).ravel() for c in columns], axis=-1)
    rows = format_rows(table, ("%.5f",) * 7 + ("%d",) + ("%.5f",) * 2, prefix="  ", sep=" ")
    Path(path).write_text("\n".join(out) + "\n" + rows, encoding="utf-8")
