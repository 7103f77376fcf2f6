"""Fuzzing the .ang and .ctf parsers: any damaged file either parses or raises EBSDFormatError.

Never an IndexError, KeyError, OverflowError, UnicodeDecodeError...: the property is checked on
truncations, random byte mutations, deleted and duplicated lines, and bad tokens in data lines
(where the reported line number must be the damaged line).
"""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jaxmicro.io import EBSDFormatError, EBSDMap, read_ang, read_ctf

DATA = Path(__file__).parent / "data"
FORMATS = {
    "ang": (DATA / "io_two_phase.ang", read_ang),
    "ctf": (DATA / "io_three_phase.ctf", read_ctf),
}
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BAD_TOKENS = ["abc", "nan", "-inf", "1e999", "--1", "0x10", "1,5", "12.5.3", "#", "\u00b5m"]


def parse(kind: str, data: bytes):
    """Parses ``data`` as a ``kind`` file: returns the map or the EBSDFormatError raised."""
    reader = FORMATS[kind][1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz.{kind}"
        path.write_bytes(data)
        try:
            result = reader(path)
        except EBSDFormatError as error:
            assert error.path == str(path)
            assert error.line is None or 1 <= error.line <= data.count(b"\n") + 1
            assert str(error).startswith(str(path))
            return error
    assert isinstance(result, EBSDMap)
    return result


def sample(kind: str) -> bytes:
    return FORMATS[kind][0].read_bytes()


@pytest.mark.parametrize("kind", FORMATS)
@FUZZ
@given(fraction=st.floats(0.0, 1.0))
def test_truncation(kind, fraction):
    data = sample(kind)
    cut = int(fraction * len(data))
    result = parse(kind, data[:cut])
    body = data.rstrip()
    last_field = max(body.rfind(b" "), body.rfind(b"\t"))
    # A cut before the last field of the last row removes fields: the file must be refused (a cut
    # inside the last number leaves a shorter, valid number).
    if cut <= last_field:
        assert isinstance(result, EBSDFormatError)


@pytest.mark.parametrize("kind", FORMATS)
@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=8))
def test_random_byte_mutations(kind, edits):
    data = bytearray(sample(kind))
    for where, byte in edits:
        data[min(int(where * len(data)), len(data) - 1)] = byte
    parse(kind, bytes(data))


@pytest.mark.parametrize("kind", FORMATS)
@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(["delete", "duplicate"]), st.floats(0.0, 1.0)),
        min_size=1,
        max_size=4,
    )
)
def test_deleted_and_duplicated_lines(kind, edits):
    lines = sample(kind).split(b"\n")
    for action, where in edits:
        k = min(int(where * len(lines)), len(lines) - 1)
        if action == "delete":
            del lines[k]
        else:
            lines.insert(k, lines[k])
    parse(kind, b"\n".join(lines))


def data_line_indices(kind: str, lines: list[bytes]) -> list[int]:
    if kind == "ang":
        return [i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith(b"#")]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(b"Phase\tX"))
    return [i for i in range(start + 1, len(lines)) if lines[i].strip()]


@pytest.mark.parametrize("kind", FORMATS)
@FUZZ
@given(
    row=st.floats(0.0, 1.0),
    column=st.floats(0.0, 1.0),
    action=st.sampled_from(["replace", "insert", "remove"]),
    token=st.sampled_from(BAD_TOKENS),
)
def test_bad_data_tokens_name_their_line(kind, row, column, action, token):
    lines = sample(kind).split(b"\n")
    rows = data_line_indices(kind, lines)
    k = rows[min(int(row * len(rows)), len(rows) - 1)]
    sep = b"\t" if kind == "ctf" else b" "
    tokens = lines[k].split()
    c = min(int(column * len(tokens)), len(tokens) - 1)
    if action == "replace":
        # A '#' opening the first .ang data row makes it a header line: the file then reads as
        # one point short, which is reported at the last line instead.
        assume(not (kind == "ang" and k == rows[0] and c == 0 and token == "#"))
        tokens[c] = token.encode()
    elif action == "insert":
        tokens.insert(c, b"1.0")
    else:
        del tokens[c]
    lines[k] = b"  " + sep.join(tokens) if kind == "ang" else sep.join(tokens)
    result = parse(kind, b"\n".join(lines))
    assert isinstance(result, EBSDFormatError)
    assert result.line == k + 1
