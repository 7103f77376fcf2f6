"""Oxford Instruments / HKL Channel 5 .ctf files: tab-separated text maps.

Layout: the line ``Channel Text File``; ``key<TAB>value`` lines (``XCells``, ``YCells``, ``XStep``,
``YStep``, ...); ``Phases<TAB>n`` followed by n phase lines ``a;b;c<TAB>alpha;beta;gamma<TAB>name
<TAB>Laue group<TAB>space group...``; a column line ``Phase X Y Bands Error Euler1 Euler2 Euler3
MAD BC BS``; one point per line, x fastest. Euler angles are in **degrees**; phase 0 marks points
that were not indexed. Laue groups are numbered 1..11 in the order of ``ebsd.LAUE_GROUPS``.

References:
    Oxford Instruments HKL Channel 5 .ctf format as read by BlueQuartz EbsdLib (CtfPhase.cpp:
    phase-line fields and Laue-group table).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._text import (
    check_row_count,
    format_rows,
    integer_column,
    parse_number,
    parse_table,
    read_lines,
    single_line,
)
from .ebsd import LAUE_GROUPS, EBSDFormatError, EBSDMap, Phase, quats_from_euler

_REQUIRED = ("Phase", "X", "Y", "Euler1", "Euler2", "Euler3")
_INTEGER_QUALITY = ("Bands", "Error", "BC", "BS")
_QUALITY = ("Bands", "Error", "MAD", "BC", "BS")
_FRAME_LINE = "Euler angles refer to Sample Coordinate system (CS0)!"


def _split(line: str) -> list[str]:
    return line.split("\t") if "\t" in line else line.split(None, 1)


def _parse_phase(path, number: int, line: str) -> Phase:
    tokens = line.split("\t")
    if len(tokens) < 4:
        raise EBSDFormatError(path, number, "phase line: expected a;b;c, angles, name, Laue group")
    lattice = []
    for token, what in ((tokens[0], "lattice lengths"), (tokens[1], "lattice angles")):
        values = token.replace(",", ".").split(";")  # some locales write decimal commas
        if len(values) != 3:
            raise EBSDFormatError(path, number, f"{what}: expected 3 values separated by ';'")
        lattice += [parse_number(path, number, v, what) for v in values]
    laue = parse_number(path, number, tokens[3], "Laue group", integer=True)
    if not 1 <= laue <= len(LAUE_GROUPS):
        raise EBSDFormatError(path, number, f"Laue group: expected 1..11, got {tokens[3]!r}")
    space_group = 0
    if len(tokens) > 5 and tokens[4].strip():
        space_group = parse_number(path, number, tokens[4], "space group", integer=True)
    return Phase(tokens[2].strip(), LAUE_GROUPS[laue - 1], tuple(lattice), space_group=space_group)


def _parse_header(path, lines):
    """(items key -> (value, line), phases, column names, index of the first data line)."""
    if not lines or not lines[0].strip().startswith("Channel Text File"):
        raise EBSDFormatError(
            path, 1, "not a .ctf file: the first line must be 'Channel Text File'"
        )
    items, phases, index = {}, {}, 1
    while index < len(lines):
        parts, number = _split(lines[index]), index + 1
        key = parts[0].strip() if parts else ""
        value = "\t".join(parts[1:]).strip()
        if key == "Phase":
            columns = [
                c.strip() for c in lines[index].split("\t" if "\t" in lines[index] else None)
            ]
            return items, phases, columns, index + 1
        if key == "Phases":
            count = parse_number(path, number, value, "Phases", integer=True)
            if count < 1 or index + count >= len(lines):
                raise EBSDFormatError(path, number, f"Phases: {value!r} phase lines do not follow")
            for k in range(1, count + 1):
                phases[k] = _parse_phase(path, number + k, lines[index + k])
            index += count + 1
            continue
        if key:
            items.setdefault(key, (value, number))
        index += 1
    raise EBSDFormatError(path, len(lines), "no column line ('Phase X Y ...') ends the header")


def _positive(path, items, key, end_line, *, integer=False):
    if key not in items:
        raise EBSDFormatError(path, end_line, f"the header has no {key} line")
    value, line = items[key]
    number = parse_number(path, line, value, key, integer=integer)
    if number <= 0:
        raise EBSDFormatError(path, line, f"{key}: expected a positive value, got {value!r}")
    return number


def read_ctf(path) -> EBSDMap:
    """Reads an Oxford .ctf map.

    Args:
        path: file to read.

    Returns:
        The map; ``euler`` converted from the file's degrees to radians (no frame rotation),
        ``phase`` as stored (0 = not indexed), quality columns 'Bands', 'Error', 'BC', 'BS'
        (int32), 'MAD' (float64) and any further columns by name. ``header`` holds the
        ``key<TAB>value`` items.

    Raises:
        EBSDFormatError: (a ValueError) for a malformed file, with the file name and line number:
            a missing first line, grid item or required column; a bad phase line or Laue group;
            rows of the wrong width; non-numeric or non-finite values; a phase not in the
            header; a truncated or overlong data section; a 3-D (ZCells > 1) file.
    """
    lines = read_lines(path)
    items, phases, columns, start = _parse_header(path, lines)
    end_line = start
    missing = [c for c in _REQUIRED if c not in columns]
    if missing or len(set(columns)) != len(columns):
        raise EBSDFormatError(
            path, end_line, f"column line: needs unique columns {_REQUIRED}, got {columns}"
        )
    nx = _positive(path, items, "XCells", end_line, integer=True)
    ny = _positive(path, items, "YCells", end_line, integer=True)
    dx = _positive(path, items, "XStep", end_line)
    dy = _positive(path, items, "YStep", end_line)
    if "ZCells" in items and _positive(path, items, "ZCells", end_line, integer=True) > 1:
        raise EBSDFormatError(
            path, items["ZCells"][1], "3-D .ctf files (ZCells > 1) are not supported"
        )

    values, numbers = parse_table(path, lines, start, len(columns))
    n_points = nx * ny
    check_row_count(path, values, numbers, n_points)
    col = {name: k for k, name in enumerate(columns)}
    phase = integer_column(path, values, numbers, col["Phase"], "Phase")
    unknown = np.flatnonzero(~np.isin(phase, [0, *phases]))
    if unknown.size:
        raise EBSDFormatError(
            path,
            int(numbers[unknown[0]]),
            f"phase {phase[unknown[0]]} is not defined in the header",
        )
    quality = {}
    for name, k in col.items():
        if name in _REQUIRED:
            continue
        if name in _INTEGER_QUALITY:
            quality[name] = integer_column(path, values, numbers, k, name).reshape(ny, nx)
        else:
            quality[name] = values[:, k].reshape(ny, nx)
    euler = np.deg2rad(values[:, [col["Euler1"], col["Euler2"], col["Euler3"]]]).reshape(ny, nx, 3)
    return EBSDMap(
        euler=euler,
        quats=quats_from_euler(euler),
        phase=phase.reshape(ny, nx),
        xy=values[:, [col["X"], col["Y"]]].reshape(ny, nx, 2),
        step=(dx, dy),
        phases=phases,
        quality=quality,
        header={key: value for key, (value, _) in items.items()},
    )


def write_ctf(path, ebsd: EBSDMap) -> None:
    """Writes ``ebsd`` as an Oxford .ctf file.

    Euler angles are converted to degrees and written with 4 decimals, X and Y with 4 decimals,
    MAD with 4 decimals; Phase, Bands, Error, BC and BS as integers (rounded; 0 where the map lacks
    the column). Other quality columns are not written. Steps and lattice constants are written
    exactly. Phases must be numbered 1..n (0 in ``phase`` means not indexed).

    Args:
        path: file to write.
        ebsd: the map; its Euler angles are written as they are (no frame rotation).
    """
    numbers = sorted(ebsd.phases)
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"ebsd.phases: a .ctf numbers its phases 1..n, got {numbers}")
    ny, nx = ebsd.shape
    frame = ebsd.header.get(
        _FRAME_LINE, "Mag\t0\tCoverage\t100\tDevice\t0\tKV\t0\tTiltAngle\t70\tTiltAxis\t0"
    )
    out = [
        "Channel Text File",
        f"Prj\t{single_line(ebsd.header.get('Prj', 'jaxmicro'), 'Prj')}",
        f"Author\t{single_line(ebsd.header.get('Author', '[Unknown]'), 'Author')}",
        "JobMode\tGrid",
        f"XCells\t{nx}",
        f"YCells\t{ny}",
        f"XStep\t{ebsd.step[0]!r}",
        f"YStep\t{ebsd.step[1]!r}",
        "AcqE1\t0",
        "AcqE2\t0",
        "AcqE3\t0",
        f"{_FRAME_LINE}\t{single_line(frame, _FRAME_LINE)}",
        f"Phases\t{len(numbers)}",
    ]
    for number in numbers:
        phase = ebsd.phases[number]
        lengths = ";".join(repr(float(v)) for v in phase.lattice[:3])
        angles = ";".join(repr(float(v)) for v in phase.lattice[3:])
        name = single_line(phase.name, "phase name").replace("\t", " ")
        laue = LAUE_GROUPS.index(phase.laue_group) + 1
        out.append(f"{lengths}\t{angles}\t{name}\t{laue}\t{phase.space_group}\t\t\t")
    out.append("Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS")
    zeros = np.zeros((ny, nx))
    q = {name: ebsd.quality.get(name, zeros) for name in _QUALITY}
    degrees = np.rad2deg(np.asarray(ebsd.euler, dtype=np.float64))
    columns = [ebsd.phase, ebsd.xy[..., 0], ebsd.xy[..., 1], q["Bands"], q["Error"]]
    columns += [degrees[..., 0], degrees[..., 1], degrees[..., 2], q["MAD"], q["BC"], q["BS"]]
    table = np.stack([np.asarray(c, dtype=np.float64).ravel() for c in columns], axis=-1)
    integer = [0, 3, 4, 9, 10]
    table[:, integer] = np.rint(table[:, integer])
    formats = ("%d", "%.4f", "%.4f", "%d", "%d", "%.4f", "%.4f", "%.4f", "%.4f", "%d", "%d")
    rows = format_rows(table, formats, prefix="", sep="\t")
    Path(path).write_text("\n".join(out) + "\n" + rows, encoding="utf-8")
