"""Line-numbered parsing for the .ang and .ctf readers: every failure is an EBSDFormatError."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .ebsd import EBSDFormatError


def read_lines(path) -> list[str]:
    """The file's lines (line ``k`` at index ``k - 1``), split on LF only, CR stripped.

    Splitting on LF alone keeps the line numbers equal to those an editor shows; vendor files are
    ASCII but may carry Latin-1 symbols (micro, degree), hence the fallback.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [line.rstrip("\r") for line in text.split("\n")]


def parse_number(path, line: int, token: str, what: str, *, integer: bool = False) -> float:
    """``token`` as a finite float (or an integer), else an EBSDFormatError naming ``what``."""
    try:
        value = float(token)
    except ValueError:
        raise EBSDFormatError(path, line, f"{what}: not a number: {token!r}") from None
    if not np.isfinite(value):
        raise EBSDFormatError(path, line, f"{what}: not finite: {token!r}")
    if integer:
        if value != int(value):
            raise EBSDFormatError(path, line, f"{what}: expected an integer, got {token!r}")
        return int(value)
    return value


def parse_table(path, lines: list[str], start: int, ncols: int | None = None):
    """Whitespace-separated numeric rows of ``lines[start:]``, blank lines skipped.

    Args:
        path: file name for error messages.
        lines: all lines of the file.
        start: index of the first data line.
        ncols: required number of columns; None takes the most common row width.

    Returns:
        (values, line_numbers): (n_rows, ncols) float64 array, (n_rows,) 1-based line numbers.

    Raises:
        EBSDFormatError: no rows, a row of the wrong width, a non-numeric or non-finite value.
    """
    numbers = np.asarray([i + 1 for i in range(start, len(lines)) if lines[i].strip()], dtype=int)
    if numbers.size == 0:
        raise EBSDFormatError(path, len(lines), "no data rows after the header")
    try:  # fast path: NumPy's C parser, for well-formed files
        values = np.loadtxt(io.StringIO("\n".join(lines[start:])), comments=None, ndmin=2)
        width_ok = ncols is None or values.shape[1] == ncols
        if width_ok and len(values) == len(numbers) and np.all(np.isfinite(values)):
            return values, numbers
    except ValueError:
        pass
    # Slow path, only to name the first offending line and token.
    rows = [lines[n - 1].split() for n in numbers]
    if ncols is None:  # the most common width, so that the odd row out is the one reported
        widths, counts = np.unique([len(tokens) for tokens in rows], return_counts=True)
        ncols = int(widths[np.argmax(counts)])
    for tokens, number in zip(rows, numbers, strict=True):
        if len(tokens) != ncols:
            raise EBSDFormatError(path, int(number), f"expected {ncols} columns, got {len(tokens)}")
    for tokens, number in zip(rows, numbers, strict=True):
        for column, token in enumerate(tokens):
            parse_number(path, int(number), token, f"column {column + 1}")
    # Every token is a finite float, yet NumPy refused the table: report it rather than guess.
    raise EBSDFormatError(path, int(numbers[0]), "the data rows could not be parsed as a table")


def check_row_count(path, values: np.ndarray, numbers: np.ndarray, n_points: int) -> None:
    """Raises an EBSDFormatError at the first line past the grid, or at the last line if short."""
    if len(values) < n_points:
        raise EBSDFormatError(
            path, int(numbers[-1]), f"the data end after {len(values)} of {n_points} points"
        )
    if len(values) > n_points:
        raise EBSDFormatError(
            path, int(numbers[n_points]), f"more data rows than the grid's {n_points} points"
        )


def integer_column(path, values: np.ndarray, numbers: np.ndarray, column: int, what: str):
    """Column ``column`` of a parsed table as int32; EBSDFormatError at the first bad row."""
    col = values[:, column]
    bad = np.flatnonzero((col != np.round(col)) | (np.abs(col) > np.iinfo(np.int32).max))
    if bad.size:
        raise EBSDFormatError(
            path, int(numbers[bad[0]]), f"{what}: expected an integer, got {col[bad[0]]}"
        )
    return col.astype(np.int32)


def single_line(value: str, what: str) -> str:
    """``value`` unchanged, or a ValueError if it would break the line-based format."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"{what}: must be a single line, got {value!r}")
    return value


def format_rows(table: np.ndarray, formats: tuple[str, ...], *, prefix: str, sep: str) -> str:
    """The rows of ``table`` as text lines, column k formatted by ``formats[k]``."""
    fmt = prefix + sep.join(formats) + "\n"
    return "".join(fmt % tuple(row) for row in table.tolist())
