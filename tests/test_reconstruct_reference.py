"""jaxmicro.reconstruct reference loading, text parsing and memory check (no solves: fast)."""

import subprocess
import sys

import numpy as np
import pytest

from jaxmicro.io import EBSDMap, Phase, write_ang, write_ctf
from jaxmicro.orientations import euler_to_quat, quat_to_euler
from jaxmicro.reconstruct import (
    Spec,
    check_memory,
    default_descriptors,
    default_window,
    descriptor,
    example_reference,
    load_reference,
    memory_lower_bound,
    parse_descriptors,
    parse_shape,
    reference_field,
    release_memory,
)

NICKEL = Phase("Nickel", "m-3m", (3.52, 3.52, 3.52, 90.0, 90.0, 90.0), formula="Ni")
TITANIUM = Phase("Titanium", "6/mmm", (2.95, 2.95, 4.68, 90.0, 90.0, 120.0), formula="Ti")


def grains_euler(n=12):
    """Three vertical bands of distinct orientations, Bunge angles in radians."""
    euler = np.zeros((n, n, 3))
    euler[:, : n // 3] = (0.3, 0.5, 1.0)
    euler[:, n // 3 : 2 * n // 3] = (2.0, 1.2, 0.4)
    euler[:, 2 * n // 3 :] = (4.0, 0.2, 5.0)
    return euler


def ebsd_map(euler, phase=TITANIUM):
    return EBSDMap.from_euler(euler, np.ones(euler.shape[:2], np.int32), phases={1: phase})


# --- descriptor text -------------------------------------------------------------------------


def test_parse_descriptors():
    got = parse_descriptors("two_point:2:max_lag=7:pairs=auto, mean_variation:100,one_point")
    assert got == (
        descriptor("two_point", 2.0, max_lag=7, pairs="auto"),
        descriptor("mean_variation", 100.0),
        descriptor("one_point", 1.0),
    )
    assert parse_descriptors("variogram:max_lag=3:order=1.5") == (
        descriptor("variogram", 1.0, max_lag=3, order=1.5),
    )
    assert parse_descriptors("two_point:max_lag=none") == (descriptor("two_point", max_lag=None),)
    names = [d.name for d in default_descriptors("orientations", 5)]
    assert names == ["two_point", "three_point_variogram", "mean_variation"]
    assert dict(default_descriptors("phases", 5)[0].options) == {"max_lag": 5}
    assert [d.name for d in default_descriptors("phases", 5)] == ["two_point", "mean_variation"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "no descriptor"),
        ("two_point:heavy", "expected a weight"),
        ("two_point:1:2", "expected option=value"),
        ("three_point", "descriptor name"),
        ("two_point:1:foo=3", r"unknown option 'foo'; accepted options: max_lag, pairs"),
        ("one_point:1:max_lag=3", "accepted options: none"),
        ("two_point:1:max_lag=0", r"max_lag: expected an integer >= 1"),
        ("two_point:1:max_lag=-2", r"max_lag: expected an integer >= 1"),
        ("two_point:1:max_lag=2.5", r"max_lag: expected an integer >= 1"),
        ("lineal_path:1:max_length=0", r"max_length: expected an integer >= 1"),
        ("lineal_path", "max_length is required"),
        ("variogram:1", "max_lag is required"),
        ("two_point:1:pairs=some", "'all' or 'auto'"),
        ("variogram:1:max_lag=3:order=0", "order"),
        ("mean_variation:1:smoothing=-1", "smoothing"),
        ("two_point:-1", "weight"),
        ("two_point:inf", "weight"),
        ("two_point:1:max_lag=3:max_lag=4", "given twice"),
        ("two_point,two_point:2", "more than once"),
    ],
)
def test_bad_descriptor_text_names_the_argument(text, match):
    with pytest.raises(ValueError, match=match) as err:
        terms = parse_descriptors(text, name="--descriptors")
        Spec(terms)  # duplicate names are a Spec's refusal
    assert "descriptors" in str(err.value)


def test_window_and_shape():
    assert default_window((48, 48), (48, 48)) == 8
    assert default_window((12, 12), (8, 8, 8)) == 2
    assert default_window((4, 4), (4, 4)) == 1
    with pytest.raises(ValueError, match="--window: the lag window must be an integer >= 1"):
        default_descriptors("phases", 0, name="--window")
    assert parse_shape(None, (12, 12)) == (12, 12)
    assert parse_shape("8,8,8", (12, 12)) == (8, 8, 8)
    for text, match in [("8", "2 or 3 sizes"), ("8,x", "sizes like"), ("3,8", "at least 4")]:
        with pytest.raises(ValueError, match=match):
            parse_shape(text, (12, 12), name="--shape")
    with pytest.raises(ValueError, match="3D reference"):
        parse_shape("8,8", (8, 8, 8))


def test_memory_bound_and_check():
    spec = Spec((descriptor("two_point", max_lag=2),))
    # 4 bytes x voxels x (C (2 + 2 m) + 2 F), m = 10 for L-BFGS-B, F = C for phases
    assert memory_lower_bound((10, 10), spec, 1) == 4 * 100 * (22 + 2)
    assert memory_lower_bound((10, 10), spec, 1, seeds=3, optimizer="adam") == 3 * 4 * 100 * 6
    orient = Spec((descriptor("two_point", max_lag=2),), representation="orientations")
    assert memory_lower_bound((10, 10), orient, 99) == 4 * 100 * (4 * 22 + 2 * 9)  # SHSH: 9
    assert check_memory((64, 64), spec, 1, available=10**9) == 4 * 64 * 64 * 24
    with pytest.raises(ValueError, match=r"--shape: a 100000x100000 .* needs at least 894 GiB"):
        check_memory((100000, 100000), spec, 1, name="--shape")


def test_release_memory_can_be_called_anywhere():
    assert release_memory() is None  # glibc's malloc_trim; nothing without it
    release_memory()


# --- references ------------------------------------------------------------------------------


@pytest.mark.slow  # 8 s of Voronoi compilation; the example's command test is slow too
def test_example_reference():
    q = np.asarray(example_reference())
    assert q.shape == (48, 48, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-5)
    assert 10 <= len(np.unique(q.reshape(-1, 4).round(4), axis=0)) <= 16  # 16 grains
    np.testing.assert_array_equal(q, np.asarray(example_reference()))


def test_load_reference_kinds(tmp_path):
    euler = grains_euler()
    np.save(tmp_path / "euler.npy", euler)
    field, rep, sym = load_reference(tmp_path / "euler.npy")
    assert rep == "orientations" and sym == "cubic" and field.shape == (12, 12, 4)
    assert field.dtype == np.float32
    np.testing.assert_allclose(field, euler_to_quat(euler), atol=1e-6)

    np.save(tmp_path / "quats.npy", np.asarray(euler_to_quat(euler)))
    assert load_reference(tmp_path / "quats.npy", symmetry="hexagonal")[1:] == (
        "orientations",
        "hexagonal",
    )

    labels = np.zeros((10, 10), np.int64)
    labels[:5, :] = 1
    labels[:, :3] = 2
    np.save(tmp_path / "labels.npy", labels)
    field, rep, _ = load_reference(tmp_path / "labels.npy")
    assert rep == "phases" and field.shape == (10, 10, 2)
    np.testing.assert_array_equal(field[..., 1], labels == 2)
    np.testing.assert_array_equal(field[..., 0], labels == 1)

    two = (labels > 0).astype(np.int32)
    np.save(tmp_path / "two.npy", two)
    assert load_reference(tmp_path / "two.npy")[0].shape == (10, 10, 1)  # two phases: one channel
    np.save(tmp_path / "bool.npy", two.astype(bool))
    np.testing.assert_array_equal(load_reference(tmp_path / "bool.npy")[0][..., 0], two)

    from skimage import io

    io.imsave(tmp_path / "disk.png", (two * 255).astype(np.uint8), check_contrast=False)
    field, rep, _ = load_reference(tmp_path / "disk.png")
    np.testing.assert_array_equal(field[..., 0], two)


def test_npy_references_leave_the_ebsd_readers_unimported(tmp_path):
    # jaxmicro.io brings SciPy and h5py (~40 MB resident at the command's memory peak)
    np.save(tmp_path / "euler.npy", grains_euler())
    code = (
        "import sys; from jaxmicro.reconstruct import load_reference; "
        "load_reference(sys.argv[1]); "
        "print(sorted({'jaxmicro.io', 'scipy', 'h5py'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "euler.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_ebsd_references_keep_radians_and_their_symmetry(tmp_path):
    euler = grains_euler(8)
    write_ang(tmp_path / "map.ang", ebsd_map(euler))
    field, rep, sym = load_reference(tmp_path / "map.ang")
    assert (rep, sym, field.shape) == ("orientations", "hexagonal", (8, 8, 4))
    np.testing.assert_allclose(quat_to_euler(field), euler, atol=1e-4)
    assert load_reference(tmp_path / "map.ang", symmetry="cubic")[2] == "cubic"
    # TSL marks non-indexed points with (4 pi, 4 pi, 4 pi): not mistaken for degrees
    marked = euler.copy()
    marked[0, 0] = 4 * np.pi
    write_ang(tmp_path / "marked.ang", ebsd_map(marked))
    assert load_reference(tmp_path / "marked.ang")[0].shape == (8, 8, 4)
    # .ctf stores degrees and its reader converts them: the same orientations come back
    write_ctf(tmp_path / "map.ctf", ebsd_map(euler, NICKEL))
    field, _, sym = load_reference(tmp_path / "map.ctf")
    assert sym == "cubic"
    np.testing.assert_allclose(quat_to_euler(field), euler, atol=1e-4)


def test_ang_in_degrees_is_refused(tmp_path):
    write_ang(tmp_path / "deg.ang", ebsd_map(np.rad2deg(grains_euler(8))))
    with pytest.raises(ValueError, match=r"--reference: .*deg.ang: .ang files store Euler angles "):
        load_reference(tmp_path / "deg.ang", name="--reference")


def write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "array, kwargs, match",
    [
        (np.zeros((8, 8, 5)), {"kind": "euler"}, "shape"),
        (np.full((8, 8, 3), np.nan), {}, "NaN"),
        (np.ones((8, 8, 4)), {}, "unit norm"),
        (np.full((8, 8, 3), 90.0), {}, "radians"),
        (np.zeros((8, 8), np.int64), {}, "single phase"),
        (np.full((8, 8), 1.5), {}, r"\[0, 1\]"),
        (np.full((8, 8), -1, np.int64), {}, ">= 0"),
        (np.where(np.eye(8) > 0, 2, 0), {}, r"absent: \[1\]"),
        (np.arange(64).reshape(8, 8), {}, "grain IDs"),
        (np.zeros((8, 8, 4), np.complex64) + 1, {}, "complex"),
        (np.array([["a"] * 8] * 8), {}, "not numeric"),
        (np.zeros((0, 8)), {}, "empty"),
        (np.zeros((3, 8)), {}, "at least 4"),
        (np.zeros(8), {}, "2 or 3 spatial axes"),
    ],
)
def test_bad_arrays_name_the_argument(tmp_path, array, kwargs, match):
    np.save(tmp_path / "ref.npy", array)
    with pytest.raises(ValueError, match=match) as err:
        load_reference(tmp_path / "ref.npy", name="--reference", **kwargs)
    assert str(err.value).startswith(f"--reference: {tmp_path / 'ref.npy'}: ")
    with pytest.raises(ValueError, match=match):
        reference_field(array, **kwargs)


@pytest.mark.parametrize(
    "name, data, match",
    [
        ("empty.npy", b"", r"empty \(0 bytes\)"),
        ("text.npy", b"0 1 0\n1 0 1\n", "not a NumPy .npy file"),
        ("cut.npy", None, "not a readable .npy file"),
        ("ref.txt", b"1", "expected .npy"),
        ("bad.png", b"not an image", "not a readable image"),
    ],
)
def test_bad_files_name_the_argument(tmp_path, name, data, match):
    if data is None:  # a valid header whose data was cut short
        np.save(tmp_path / "full.npy", np.zeros((16, 16)))
        data = (tmp_path / "full.npy").read_bytes()[:200]
    path = write_bytes(tmp_path / name, data)
    with pytest.raises(ValueError, match=match) as err:
        load_reference(path, name="--reference")
    assert str(err.value).startswith("--reference: ")


def test_bad_arguments():
    with pytest.raises(ValueError, match="no such file"):
        load_reference("/nonexistent/ref.npy")
    with pytest.raises(ValueError, match="symmetry: unknown value 'icosahedral'"):
        load_reference("/nonexistent/ref.npy", symmetry="icosahedral")
    with pytest.raises(ValueError, match="kind: unknown value 'grains'"):
        reference_field(np.zeros((8, 8)), kind="grains")


def test_diverged_results_are_refused_not_written_as_nan():
    from jaxmicro.reconstruct import Reconstruction, Result, output_arrays

    spec = Spec((descriptor("two_point", max_lag=2),), representation="orientations")
    q = np.zeros((8, 8, 4), np.float32)
    q[..., 0] = 1.0

    def outputs(field):
        result = Result(field, np.ones(3), 1.0, 1.0, 3)
        return output_arrays(Reconstruction(result, result, 0, None, spec, (8, 8), "sgd", 3, 0, 0))

    arrays = outputs(2.0 * q)  # unnormalized variables are fine
    assert set(arrays) == {"field", "quats", "euler"}
    np.testing.assert_allclose(arrays["quats"], q, atol=1e-6)
    for bad in (np.nan, 0.0, 3e38):  # NaN, a zero quaternion, a norm that overflows float32
        field = q.copy()
        field[2, 3] = bad
        with pytest.raises(ValueError, match="reconstruction: 1 voxel.* diverged"):
            outputs(field)
