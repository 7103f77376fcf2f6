"""EBSD readers and writers (.ang, .ctf): known values, header mappings, round trips, errors."""

from pathlib import Path

import jax
import numpy as np
import pytest

from jaxmicro.io import (
    LAUE_GROUPS,
    EBSDFormatError,
    EBSDMap,
    Phase,
    read_ang,
    read_ctf,
    write_ang,
    write_ctf,
)

DATA = Path(__file__).parent / "data"
ANG = DATA / "io_two_phase.ang"
CTF = DATA / "io_three_phase.ctf"


def reference_quats(euler):
    """Rowenhorst et al. (2015) eu2qu with P = -1, in NumPy, q0 >= 0."""
    phi1, Phi, phi2 = np.moveaxis(np.asarray(euler, dtype=np.float64), -1, 0)
    sigma, delta = (phi1 + phi2) / 2, (phi1 - phi2) / 2
    c, s = np.cos(Phi / 2), np.sin(Phi / 2)
    q = np.stack([c * np.cos(sigma), s * np.cos(delta), s * np.sin(delta), c * np.sin(sigma)], -1)
    return np.where(q[..., :1] < 0, -q, q)


def same_rotation(a, b, atol):
    a, b = np.asarray(a), np.asarray(b)
    return np.all(np.minimum(np.abs(a - b).max(-1), np.abs(a + b).max(-1)) <= atol)


def lines_of(path):
    return path.read_bytes().decode().replace("\r\n", "\n").split("\n")


def write_lines(path, lines):
    path.write_text("\n".join(lines))
    return path


# --- known values --------------------------------------------------------------------------------


def test_read_ang_known_values():
    m = read_ang(ANG)
    assert m.shape == (2, 3) and m.step == (0.5, 0.5)
    np.testing.assert_array_equal(m.phase, [[1, 1, 2], [2, 1, 0]])
    np.testing.assert_array_equal(m.euler[0, 0], [0.29248, 0.52573, 5.97469])  # radians, as stored
    np.testing.assert_array_equal(m.euler[1, 2], [12.56637] * 3)
    np.testing.assert_array_equal(m.xy[1, 2], [1.0, 0.5])
    np.testing.assert_array_equal(m.xy[..., 0], [[0, 0.5, 1], [0, 0.5, 1]])  # x runs fastest
    assert set(m.quality) == {"IQ", "CI", "SEM", "Fit"}
    np.testing.assert_array_equal(m.quality["IQ"][0], [1205.8, 1187.2, 980.4])
    np.testing.assert_array_equal(m.quality["CI"][1], [0.150, 1.000, -1.000])
    np.testing.assert_array_equal(m.quality["Fit"][0, 2], 1.246)
    ni, ti = m.phases[1], m.phases[2]
    assert (ni.name, ni.formula, ni.laue_group, ni.symmetry) == ("Nickel", "Ni", "m-3m", "cubic")
    assert ni.lattice == (3.52, 3.52, 3.52, 90.0, 90.0, 90.0)
    assert (ti.name, ti.laue_group, ti.symmetry) == ("Titanium (Alpha)", "6/mmm", "hexagonal")
    assert ti.lattice[5] == 120.0
    assert m.header["x-star"] == "0.509100" and m.header["SAMPLEID"] == "io-test"


def test_read_ctf_known_values_degrees_to_radians():
    m = read_ctf(CTF)
    assert m.shape == (2, 3) and m.step == (0.25, 0.25)
    np.testing.assert_array_equal(m.phase, [[1, 1, 2], [3, 0, 2]])
    np.testing.assert_allclose(m.euler[0, 0], np.deg2rad([123.456, 45.678, 12.345]), rtol=1e-15)
    np.testing.assert_allclose(m.euler[1, 0, 1], np.deg2rad(179.999), rtol=1e-15)
    np.testing.assert_array_equal(m.xy[1, 1], [0.25, 0.25])
    np.testing.assert_array_equal(m.quality["Bands"], [[8, 9, 7], [6, 0, 8]])
    np.testing.assert_array_equal(m.quality["Error"][1], [0, 3, 0])
    np.testing.assert_array_equal(m.quality["BC"][0], [152, 160, 131])
    np.testing.assert_array_equal(m.quality["MAD"][0, 1], 0.387)
    assert m.quality["BS"].dtype == np.int32 and m.quality["MAD"].dtype == np.float64
    assert [p.name for p in m.phases.values()] == ["Iron bcc", "Titanium", "Rutile"]
    assert [p.space_group for p in m.phases.values()] == [229, 194, 136]
    assert [p.symmetry for p in m.phases.values()] == ["cubic", "hexagonal", "tetragonal"]
    assert m.phases[3].lattice == (4.594, 4.594, 2.959, 90.0, 90.0, 90.0)
    assert m.header["Prj"].endswith("io_three_phase.cpr")


@pytest.mark.parametrize("reader,path", [(read_ang, ANG), (read_ctf, CTF)])
def test_quats_follow_the_p_minus_one_convention(reader, path):
    m = reader(path)
    assert m.quats.shape == (2, 3, 4)
    assert same_rotation(m.quats, reference_quats(m.euler), 1e-12)
    np.testing.assert_allclose(np.linalg.norm(m.quats, axis=-1), 1.0, atol=1e-12)


def test_quats_are_float64_without_x64():
    with jax.enable_x64(False):
        m = read_ctf(CTF)
    assert m.euler.dtype == m.quats.dtype == np.float64
    assert same_rotation(m.quats, reference_quats(m.euler), 1e-12)


def test_map_arrays_are_read_only():
    m = read_ang(ANG)
    with pytest.raises(ValueError):
        m.euler[0, 0, 0] = 1.0
    with pytest.raises(TypeError):
        m.phases[3] = m.phases[1]


# --- symmetry mapping from headers ---------------------------------------------------------------

ANG_CODES = {
    43: ("m-3m", "cubic"),
    23: ("m-3", None),
    42: ("4/mmm", "tetragonal"),
    4: ("4/m", None),
    22: ("mmm", "orthorhombic"),
    20: ("2/m", "monoclinic"),
    62: ("6/mmm", "hexagonal"),
    6: ("6/m", None),
    32: ("-3m", "trigonal"),
    3: ("-3", None),
    1: ("-1", "triclinic"),
}


@pytest.mark.parametrize("code", sorted(ANG_CODES))
def test_ang_symmetry_codes(tmp_path, code):
    lines = [
        ln.replace("Symmetry              43", f"Symmetry              {code}")
        for ln in lines_of(ANG)
    ]
    phase = read_ang(write_lines(tmp_path / "s.ang", lines)).phases[1]
    assert (phase.laue_group, phase.symmetry) == ANG_CODES[code]


CTF_LAUE = {
    1: ("-1", "triclinic"),
    2: ("2/m", "monoclinic"),
    3: ("mmm", "orthorhombic"),
    4: ("4/m", None),
    5: ("4/mmm", "tetragonal"),
    6: ("-3", None),
    7: ("-3m", "trigonal"),
    8: ("6/m", None),
    9: ("6/mmm", "hexagonal"),
    10: ("m-3", None),
    11: ("m-3m", "cubic"),
}


@pytest.mark.parametrize("laue", sorted(CTF_LAUE))
def test_ctf_laue_groups(tmp_path, laue):
    lines = [ln.replace("Iron bcc\t11\t", f"Iron bcc\t{laue}\t") for ln in lines_of(CTF)]
    phase = read_ctf(write_lines(tmp_path / "s.ctf", lines)).phases[1]
    assert (phase.laue_group, phase.symmetry) == CTF_LAUE[laue]
    assert LAUE_GROUPS[laue - 1] == CTF_LAUE[laue][0]


def test_monoclinic_unique_axis():
    b_unique = Phase("m", "2/m", (5.0, 6.0, 7.0, 90.0, 100.0, 90.0))
    c_unique = Phase("m", "2/m", (5.0, 6.0, 7.0, 90.0, 90.0, 100.0))
    assert b_unique.symmetry == "monoclinic"  # orientations' monoclinic 2-fold is along y = b
    assert c_unique.symmetry is None


@pytest.mark.parametrize("code,lattice", [(2, "90 90 100"), (20, "90 100 90"), (21, "100 90 90")])
def test_ang_monoclinic_codes_round_trip(tmp_path, code, lattice):
    lines = [
        ln.replace("Symmetry              43", f"Symmetry              {code}").replace(
            "90.000  90.000  90.000", lattice
        )
        for ln in lines_of(ANG)
    ]
    m = read_ang(write_lines(tmp_path / "m.ang", lines))
    write_ang(tmp_path / "out.ang", m)
    assert f"# Symmetry              {code}" in (tmp_path / "out.ang").read_text()


def test_phase_from_symmetry():
    assert Phase.from_symmetry("Al", "cubic").laue_group == "m-3m"
    for sym in ("cubic", "hexagonal", "tetragonal", "trigonal", "orthorhombic", "monoclinic"):
        assert Phase.from_symmetry("x", sym).symmetry == sym
    with pytest.raises(ValueError, match="symmetry"):
        Phase.from_symmetry("x", "icosahedral")


# --- round trips ---------------------------------------------------------------------------------


def assert_maps_close(a: EBSDMap, b: EBSDMap, *, euler_atol, xy_atol):
    assert a.shape == b.shape and a.step == b.step
    np.testing.assert_array_equal(a.phase, b.phase)
    np.testing.assert_allclose(a.euler, b.euler, rtol=0, atol=euler_atol)
    np.testing.assert_allclose(a.xy, b.xy, rtol=0, atol=xy_atol)
    assert dict(a.phases) == dict(b.phases)


def test_ang_round_trip(tmp_path):
    m = read_ang(ANG)
    write_ang(tmp_path / "out.ang", m)
    back = read_ang(tmp_path / "out.ang")
    assert_maps_close(m, back, euler_atol=5e-6, xy_atol=5e-6)  # 5 printed decimals
    for name in ("IQ", "CI", "SEM", "Fit"):
        np.testing.assert_allclose(back.quality[name], m.quality[name], rtol=0, atol=5e-6)
    for key in ("x-star", "y-star", "z-star", "WorkingDistance", "OPERATOR", "SAMPLEID"):
        assert back.header[key] == m.header[key]


def test_ctf_round_trip(tmp_path):
    m = read_ctf(CTF)
    write_ctf(tmp_path / "out.ctf", m)
    back = read_ctf(tmp_path / "out.ctf")
    assert_maps_close(m, back, euler_atol=np.deg2rad(5e-5), xy_atol=5e-5)  # 4 decimals
    for name in ("Bands", "Error", "BC", "BS"):
        np.testing.assert_array_equal(back.quality[name], m.quality[name])
    np.testing.assert_allclose(back.quality["MAD"], m.quality["MAD"], rtol=0, atol=5e-5)
    assert back.header["Prj"] == m.header["Prj"]


def test_cross_format_keeps_radians(tmp_path):
    ang = read_ang(ANG)
    write_ctf(tmp_path / "x.ctf", ang)
    text = (tmp_path / "x.ctf").read_text().split("\n")
    first = text[text.index("Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS") + 1]
    assert first.split("\t")[5] == f"{np.rad2deg(0.29248):.4f}"  # the .ctf holds degrees
    back = read_ctf(tmp_path / "x.ctf")
    np.testing.assert_allclose(back.euler, ang.euler, rtol=0, atol=np.deg2rad(5e-5))
    ctf = read_ctf(CTF)
    write_ang(tmp_path / "x.ang", ctf)
    np.testing.assert_allclose(read_ang(tmp_path / "x.ang").euler, ctf.euler, rtol=0, atol=5e-6)


def test_synthetic_map_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    euler = rng.uniform([0, 0, 0], [2 * np.pi, np.pi, 2 * np.pi], size=(4, 5, 3))
    phase = rng.integers(1, 3, size=(4, 5))
    phases = {1: Phase.from_symmetry("Al", "cubic", (4.05, 4.05, 4.05, 90, 90, 90))}
    phases[2] = Phase.from_symmetry("Mg", "hexagonal", (3.21, 3.21, 5.21, 90, 90, 120))
    m = EBSDMap.from_euler(euler, phase, phases=phases, step=(0.2, 0.3))
    assert same_rotation(m.quats, reference_quats(euler), 1e-12)
    np.testing.assert_allclose(m.xy[2, 3], [0.6, 0.6])
    for writer, reader, atol in ((write_ang, read_ang, 5e-6), (write_ctf, read_ctf, 1e-6)):
        writer(tmp_path / "syn", m)
        assert_maps_close(m, reader(tmp_path / "syn"), euler_atol=atol, xy_atol=5e-5)


def test_write_ctf_needs_phases_numbered_from_one(tmp_path):
    m = EBSDMap.from_euler(
        np.zeros((1, 2, 3)), np.array([[2, 2]]), phases={2: Phase.from_symmetry("a", "cubic")}
    )
    with pytest.raises(ValueError, match="1..n"):
        write_ctf(tmp_path / "x.ctf", m)


def test_ebsd_map_validation():
    phases = {1: Phase.from_symmetry("a", "cubic")}
    with pytest.raises(ValueError, match="euler"):
        EBSDMap.from_euler(np.zeros((2, 3)), np.zeros((2,), int), phases=phases)
    with pytest.raises(ValueError, match="phase"):
        EBSDMap.from_euler(np.zeros((2, 3, 3)), np.zeros((3, 2), int), phases=phases)
    with pytest.raises(ValueError, match="step"):
        EBSDMap.from_euler(np.zeros((2, 3, 3)), np.zeros((2, 3), int), phases=phases, step=(0, 1))
    with pytest.raises(ValueError, match="quality"):
        EBSDMap.from_euler(
            np.zeros((2, 3, 3)), np.zeros((2, 3), int), phases=phases, quality={"CI": np.zeros(3)}
        )
    with pytest.raises(ValueError, match="non-finite"):
        EBSDMap.from_euler(np.full((2, 3, 3), np.nan), np.zeros((2, 3), int), phases=phases)
    with pytest.raises(ValueError, match="single line"):
        bad = EBSDMap.from_euler(
            np.zeros((1, 1, 3)), np.ones((1, 1), int), phases={1: Phase("a\nb", "m-3m", (1,) * 6)}
        )
        write_ang("unused.ang", bad)


# --- hexagonal grids -----------------------------------------------------------------------------


def hex_ang(tmp_path):
    """A HexGrid map: rows of 3 and 2 points, rows sqrt(3)/2 * XSTEP apart."""
    header = [ln for ln in lines_of(ANG) if ln.startswith("#")]
    header = [
        ln.replace("SqrGrid", "HexGrid")
        .replace("NCOLS_EVEN: 3", "NCOLS_EVEN: 2")
        .replace("NROWS: 2", "NROWS: 3")
        .replace("XSTEP: 0.500000", "XSTEP: 1.000000")
        .replace("YSTEP: 0.500000", "YSTEP: 0.866025")
        for ln in header
    ]
    rows = []
    k = 0
    for r, (n, offset) in enumerate([(3, 0.0), (2, 0.5), (3, 0.0)]):
        for c in range(n):
            k += 1
            x, y = offset + c, r * 0.866025
            rows.append(f"  {0.1 * k:.5f} 0.50000 0.25000 {x:.5f} {y:.5f} 100.0 0.900 1 0.5 1.0")
    return write_lines(tmp_path / "hex.ang", header + rows)


def test_hex_grid_refused_with_line_number(tmp_path):
    path = hex_ang(tmp_path)
    grid_line = lines_of(path).index("# GRID: HexGrid") + 1
    with pytest.raises(EBSDFormatError, match="HexGrid") as info:
        read_ang(path)
    assert info.value.line == grid_line and f"hex.ang:{grid_line}:" in str(info.value)


def test_hex_grid_nearest_resampling(tmp_path):
    m = read_ang(hex_ang(tmp_path), hex_grid="nearest")
    # x in {0, 1, 2} (step XSTEP = 1), y in {0, 1} (extent 1.73 / 1): nearest measured points.
    assert m.shape == (2, 3) and m.step == (1.0, 1.0)
    np.testing.assert_allclose(m.xy[1, 2], [2.0, 1.0])
    # Point (0, 0) is measured point 1; (2, 1) is nearest to (1.5, 0.866), point 5.
    np.testing.assert_allclose(m.euler[0, 0, 0], 0.1)
    np.testing.assert_allclose(m.euler[1, 2, 0], 0.5)
    assert m.header["GRID"] == "SqrGrid"


# --- malformed files: exact line numbers ---------------------------------------------------------


def first_data_line(lines):
    return next(i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#"))


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda ln: ln + " 7.0", "expected 10 columns, got 11"),
        (lambda ln: " ".join(ln.split()[:-1]), "expected 10 columns, got 9"),
        (lambda ln: ln.replace("1205.8", "12O5.8"), "not a number"),
        (lambda ln: ln.replace("1205.8", "nan"), "not finite"),
        (lambda ln: ln.replace("  1  0.720", "  1.5  0.720"), "integer"),
        (lambda ln: ln.replace("  1  0.720", "  9  0.720"), "phase 9 is not defined"),
    ],
)
def test_ang_bad_data_line_is_reported(tmp_path, edit, message):
    lines = lines_of(ANG)
    k = first_data_line(lines)
    lines[k] = edit(lines[k])
    with pytest.raises(EBSDFormatError, match=message) as info:
        read_ang(write_lines(tmp_path / "bad.ang", lines))
    assert info.value.line == k + 1 and isinstance(info.value, ValueError)


def test_ang_truncated_and_overlong(tmp_path):
    lines = [ln for ln in lines_of(ANG) if ln.strip()]
    with pytest.raises(EBSDFormatError, match="5 of 6 points") as info:
        read_ang(write_lines(tmp_path / "t.ang", lines[:-1]))
    assert info.value.line == len(lines) - 1
    with pytest.raises(EBSDFormatError, match="more data rows") as info:
        read_ang(write_lines(tmp_path / "o.ang", lines + [lines[-1]]))
    assert info.value.line == len(lines) + 1


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("Symmetry              43", "Symmetry              44", "unknown Symmetry code 44"),
        ("LatticeConstants      3.520 3.520", "LatticeConstants      3.520", "expected 6 values"),
        ("NROWS: 2", "NROWS: two", "NROWS: not a number"),
        ("XSTEP: 0.500000", "XSTEP: -0.5", "positive"),
        ("NCOLS_EVEN: 3", "NCOLS_EVEN: 4", "NCOLS_EVEN must equal"),
        ("GRID: SqrGrid", "GRID: Triangles", "SqrGrid or HexGrid"),
    ],
)
def test_ang_bad_header_line_is_reported(tmp_path, old, new, message):
    lines = lines_of(ANG)
    k = next(i for i, ln in enumerate(lines) if old in ln)
    lines[k] = lines[k].replace(old, new)
    with pytest.raises(EBSDFormatError, match=message) as info:
        read_ang(write_lines(tmp_path / "bad.ang", lines))
    assert info.value.line == k + 1


def test_ang_missing_items(tmp_path):
    lines = [ln for ln in lines_of(ANG) if "NROWS" not in ln]
    with pytest.raises(EBSDFormatError, match="no NROWS line"):
        read_ang(write_lines(tmp_path / "a.ang", lines))
    lines = [ln for ln in lines_of(ANG) if not ln.startswith("# Phase")]
    with pytest.raises(EBSDFormatError, match="before any '# Phase'"):
        read_ang(write_lines(tmp_path / "b.ang", lines))
    lines = [ln for ln in lines_of(ANG) if ln.startswith("#")]
    with pytest.raises(EBSDFormatError, match="no data rows"):
        read_ang(write_lines(tmp_path / "c.ang", lines))


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("Channel Text File", "Channel Txt File", "first line"),
        ("Iron bcc\t11\t", "Iron bcc\t12\t", "Laue group: expected 1..11"),
        ("2.866;2.866;2.866", "2.866;2.866", "expected 3 values"),
        ("XCells\t3", "XCells\tthree", "XCells: not a number"),
        ("Phases\t3", "Phases\t9", "phase lines do not follow|Laue group|lattice"),
        ("123.4560\t45.6780", "123.4560\t45.6780\t1.0", "expected 11 columns, got 12"),
        ("1\t0.2500\t0.0000\t9", "1\t0.2500\t0.0000\t9.5", "Bands: expected an integer"),
        ("2\t0.5000\t0.0000\t7", "4\t0.5000\t0.0000\t7", "phase 4 is not defined"),
        ("\t359.9000\t", "\t359,9000\t", "not a number"),
    ],
)
def test_ctf_bad_line_is_reported(tmp_path, old, new, message):
    lines = lines_of(CTF)
    k = next(i for i, ln in enumerate(lines) if old in ln)
    lines[k] = lines[k].replace(old, new)
    with pytest.raises(EBSDFormatError, match=message) as info:
        read_ctf(write_lines(tmp_path / "bad.ctf", lines))
    assert info.value.line is not None and info.value.line >= k + 1


def test_ctf_truncated(tmp_path):
    lines = [ln for ln in lines_of(CTF) if ln.strip()]
    with pytest.raises(EBSDFormatError, match="5 of 6 points") as info:
        read_ctf(write_lines(tmp_path / "t.ctf", lines[:-1]))
    assert info.value.line == len(lines) - 1
    with pytest.raises(EBSDFormatError, match="no column line"):
        read_ctf(write_lines(tmp_path / "h.ctf", lines[:12]))


def test_ctf_3d_refused(tmp_path):
    lines = lines_of(CTF)
    lines.insert(6, "ZCells\t4")
    with pytest.raises(EBSDFormatError, match="3-D"):
        read_ctf(write_lines(tmp_path / "z.ctf", lines))


def test_hex_grid_argument_is_validated():
    with pytest.raises(ValueError, match="hex_grid"):
        read_ang(ANG, hex_grid="linear")


def test_symmetry_names_are_the_orientations_names():
    from jaxmicro import orientations
    from jaxmicro.io import ebsd

    assert set(ebsd.SYMMETRIES) == set(orientations.SYMMETRIES)
