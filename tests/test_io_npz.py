"""NPZ archives with JSON metadata: round trips without pickle, validation."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.io import load_npz, save_npz


def test_round_trip(tmp_path):
    arrays = {
        "ids": np.arange(12, dtype=np.int32).reshape(3, 4),
        "quats": np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32),
        "mask": np.array([True, False]),
        "jax": jnp.linspace(0.0, 1.0, 7),
        "scalar": np.float64(2.5),
    }
    metadata = {"symmetry": "cubic", "spacing": [0.5, 0.5], "nested": {"seed": 3, "ok": True}}
    save_npz(tmp_path / "a.npz", arrays, metadata)
    back, meta = load_npz(tmp_path / "a.npz")
    assert meta == metadata
    assert list(back) == list(arrays)
    for name, values in arrays.items():
        values = np.asarray(values)
        assert back[name].dtype == values.dtype and back[name].shape == values.shape
        np.testing.assert_array_equal(back[name], values)


def test_numpy_metadata_becomes_json(tmp_path):
    save_npz(tmp_path / "b.npz", {"x": np.zeros(2)}, {"n": np.int64(4), "v": np.arange(3)})
    _, meta = load_npz(tmp_path / "b.npz")
    assert meta == {"n": 4, "v": [0, 1, 2]} and type(meta["n"]) is int


def test_no_metadata_and_no_pickle(tmp_path):
    save_npz(tmp_path / "c.npz", {"x": np.ones(3)})
    assert load_npz(tmp_path / "c.npz")[1] == {}
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:  # loads without pickle
        assert data["__metadata__"].dtype == np.uint8


def test_validation(tmp_path):
    path = tmp_path / "d.npz"
    with pytest.raises(ValueError, match="reserved"):
        save_npz(path, {"__metadata__": np.zeros(1)})
    with pytest.raises(ValueError, match="object arrays"):
        save_npz(path, {"x": np.array([{}, 1], dtype=object)})
    with pytest.raises(ValueError, match="metadata"):
        save_npz(path, {"x": np.zeros(1)}, {"f": object()})
    with pytest.raises(ValueError, match="metadata"):
        save_npz(path, {"x": np.zeros(1)}, {"bad": float("nan")})
