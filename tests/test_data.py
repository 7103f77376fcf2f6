"""Tests of jaxmicro.data: blocks, labels, dataset building, the loader and the command."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmicro.cli
from jaxmicro import data


def test_grainpaint_blocks_for_100_cube():
    corners = data.grainpaint_blocks((100, 100, 100), 32)
    assert corners.shape == (83, 3)
    aligned = {tuple(c) for c in corners[:27]}
    assert aligned == {(a, b, c) for a in (0, 34, 68) for b in (0, 34, 68) for c in (0, 34, 68)}
    assert len({tuple(c) for c in corners}) == 83
    assert corners.min() >= 0 and corners.max() <= 100 - 32
    # Every boundary block straddles a boundary of the aligned grid along at least one axis.
    assert np.all(np.any(np.isin(corners[27:], (17, 51)), axis=1))
    everything = data.grainpaint_blocks((100, 100, 100), 32, n_boundary=None)
    assert len(everything) == 27 + 98
    np.testing.assert_array_equal(corners, data.grainpaint_blocks((100, 100, 100), 32))
    with pytest.raises(ValueError, match="n_boundary"):
        data.grainpaint_blocks((64, 64), 32, n_boundary=10)


def test_extract_blocks_and_crops():
    x = jnp.arange(12 * 10 * 2).reshape(12, 10, 2)
    corners = np.array([[0, 0], [5, 3], [8, 6]])
    blocks = data.extract_blocks(x, corners, (4, 4))
    assert blocks.shape == (3, 4, 4, 2)
    for b, (i, j) in zip(blocks, corners, strict=True):
        np.testing.assert_array_equal(b, x[i : i + 4, j : j + 4])
    crops = jax.jit(data.random_crops, static_argnames=("size", "num_samples", "periodic"))(
        jax.random.key(0), x, (5, 7), 20
    )
    assert crops.shape == (20, 5, 7, 2)
    values = np.asarray(x)
    for c in np.asarray(crops):  # each crop is an in-bounds window
        i, j = np.argwhere(values[..., 0] == c[0, 0, 0])[0]
        np.testing.assert_array_equal(c, values[i : i + 5, j : j + 7])
    wrapped = data.random_crops(jax.random.key(1), x, (12, 10), 3, periodic=True)
    for c in np.asarray(wrapped):
        i, j = np.argwhere(values[..., 0] == c[0, 0, 0])[0]
        np.testing.assert_array_equal(c, np.roll(values, (-i, -j), axis=(0, 1)))


def test_sphericity_and_intercepts():
    g = np.stack(np.meshgrid(*[np.arange(40) + 0.5] * 3, indexing="ij"))
    ball = (np.sum((g - 20) ** 2, 0) <= 144).astype(np.int32)
    assert abs(data.grain_sphericity(ball)[1] - 1.0) < 0.03
    cube = np.zeros((30, 30, 30), np.int32)
    cube[5:25, 5:25, 5:25] = 1
    # Axis-aligned faces read 3/2 too high: (pi/6)^(1/3) * 3/2.
    np.testing.assert_allclose(data.grain_sphericity(cube)[1], (np.pi / 6) ** (1 / 3) * 1.5)
    stripes = np.repeat(np.arange(8) % 2, 4)[:, None] * np.ones((1, 16), np.int64)
    np.testing.assert_allclose(data.mean_intercept_lengths(stripes), [4.0, np.inf])
    with pytest.raises(ValueError, match="ids"):
        data.grain_sphericity(np.zeros((4, 4), np.int32))


@pytest.mark.parametrize(
    "kind, size, params",
    [
        ("voronoi-rgb", 16, {"grains": (10, 30)}),
        ("potts", 16, {"block": 8, "sweeps": 3, "n_boundary": 5}),
        ("rsa", 32, {}),
        ("two-phase", 32, {}),
    ],
)
def test_make_dataset(tmp_path, kind, size, params):
    meta = data.make_dataset(
        kind, tmp_path, num_samples=3, size=size, shard_size=4, progress=False, **params
    )
    assert meta == data.read_metadata(tmp_path)
    per_source = 8 + 5 if kind == "potts" else 1
    assert meta["n_samples"] == 3 * per_source == len(meta["labels"])
    assert sum(s["count"] for s in meta["shards"]) == meta["n_samples"]
    first = np.load(tmp_path / meta["shards"][0]["file"])["x"]
    assert list(first.shape[1:]) == meta["sample_shape"]
    if kind == "voronoi-rgb":
        assert first.shape[1:] == (16, 16, 16, 3) and first.min() >= -1 and first.max() <= 1
        for label in meta["labels"]:
            assert 10 <= label["n_grains"] <= 30 and label["grains_present"] == label["n_grains"]
            assert 0.5 < label["mean_sphericity"] < 1.3 and label["colors_used"] <= 10
    if kind == "potts":
        assert first.shape[1:] == (8, 8, 8)
        for block, label in zip(first, meta["labels"][: len(first)], strict=True):
            assert block.min() == 0 and block.max() + 1 == label["n_grains"]
    if kind == "rsa":
        assert all(abs(label["volume_fraction"] - 0.35) < 0.05 for label in meta["labels"])
    # Reproducible from the seed.
    again = data.make_dataset(
        kind, tmp_path / "again", num_samples=1, size=size, progress=False, **params
    )
    np.testing.assert_array_equal(
        np.load(tmp_path / "again" / again["shards"][0]["file"])["x"][0], first[0]
    )


def test_make_dataset_validation(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        data.make_dataset("nope", tmp_path, num_samples=1, size=8)
    with pytest.raises(ValueError, match="params"):
        data.make_dataset("rsa", tmp_path, num_samples=1, size=8, grains=(1, 2))
    with pytest.raises(ValueError, match="directory"):
        data.read_metadata(tmp_path / "missing")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("two-phase")
    data.make_dataset("two-phase", out, num_samples=10, size=16, shard_size=3, progress=False)
    return out


def test_loader_is_deterministic_and_resumes(dataset):
    key = jax.random.key(0)
    a = data.Loader(dataset, 4, key)
    b = data.Loader(dataset, 4, key)
    assert a.steps_per_epoch == 2
    first = [next(a) for _ in range(5)]
    for step, batch in enumerate(first):
        np.testing.assert_array_equal(batch["x"], b.batch_at(step)["x"])
    state = json.loads(json.dumps(a.state()))
    c = data.Loader(dataset, 4, key)
    c.restore(state)
    np.testing.assert_array_equal(next(c)["index"], next(a)["index"])
    # Samples come from the right shard positions, labels travel along.
    batch = b.batch_at(3)
    meta = data.read_metadata(dataset)
    for x, i, vf in zip(batch["x"], batch["index"], batch["volume_fraction"], strict=True):
        assert vf == meta["labels"][i]["volume_fraction"] == pytest.approx(x.mean())


def test_loader_epochs_are_permutations(dataset):
    loader = data.Loader(dataset, 5, jax.random.key(1), drop_remainder=False)
    epoch0 = np.concatenate([loader.batch_at(s)["index"] for s in range(2)])
    epoch1 = np.concatenate([loader.batch_at(s)["index"] for s in range(2, 4)])
    assert sorted(epoch0) == list(range(10)) == sorted(epoch1)
    assert not np.array_equal(epoch0, epoch1)
    other = data.Loader(dataset, 5, jax.random.key(2))
    assert not np.array_equal(other.batch_at(0)["index"], loader.batch_at(0)["index"])
    with pytest.raises(ValueError, match="batch_size"):
        data.Loader(dataset, 11, jax.random.key(0))


def test_command_smoke(tmp_path, capsys):
    out = tmp_path / "rsa"
    argv = ["data", "make", "rsa", "-n", "2", "--size", "24", "--radius", "3", "--quiet"]
    assert jaxmicro.cli.main([*argv, "--out", str(out)]) == 0
    assert jaxmicro.cli.main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "wrote 2 samples" in text and "rsa: 2 samples of shape [24, 24]" in text
    assert data.read_metadata(out)["params"]["radius"] == 3.0
