"""Training fields from stored samples: how a dataset's samples become ``(B, *spatial, C)`` inputs.

A dataset stores what a generator makes (grain IDs, binary phases, RGB colours in [-1, 1],
latents); a diffusion model trains on float fields in [-1, 1], channels last. The
``representation`` names the map between the two:

- ``'identity'``: float samples ``(*spatial, C)`` used as they are (RGB colours, latents);
- ``'binary'``: phases ``{0, 1}`` (``(*spatial)`` or ``(*spatial, 1)``) to ``{-1, +1}``;
- ``'boundaries'``: grain IDs to a grain-boundary indicator (+1 on boundaries, -1 inside);
- ``'grain-values'``: grain IDs to one uniform random value in [-1, 1] per grain, drawn anew for
  every visit of a sample (GrainPaint §2.4: a continuous grain-ID field);
- ``'auto'``: chosen from the dataset kind and dtype (``resolve_representation``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro._grid import boundary_mask

REPRESENTATIONS = ("auto", "identity", "binary", "boundaries", "grain-values")


def boundary_field(ids: jax.Array, *, periodic: bool = True) -> jax.Array:
    """Grain-boundary indicator of a label map: +1 where a face neighbour differs, -1 elsewhere.

    Args:
        ids: integer grain IDs, shape ``spatial`` (2D or 3D).
        periodic: neighbours wrap around (else the outer faces are not boundaries).

    Returns:
        ``(*spatial, 1)`` float field in {-1, +1}; boundaries are two voxels wide (both sides).
    """
    edge = boundary_mask(jnp.asarray(ids), periodic)
    return jnp.where(edge, 1.0, -1.0)[..., None]


# Kinds whose samples say how they are trained on ('auto').
_KIND_REPRESENTATION = {
    "rsa": "binary",
    "two-phase": "binary",
    "voronoi": "boundaries",
    "voronoi-rgb": "identity",
}


def resolve_representation(representation: str, metadata: dict) -> str:
    """The concrete representation of ``'auto'`` for a dataset with ``metadata``.

    ``'auto'``: binary kinds (``rsa``, ``two-phase``) and boolean samples -> ``'binary'``;
    ``voronoi`` grain IDs -> ``'boundaries'``; ``voronoi-rgb`` and float samples with a channel
    axis -> ``'identity'``; Potts grain IDs must be told (``'grain-values'`` as GrainPaint, or
    ``'boundaries'``).

    Raises:
        ValueError: unknown name, or ``'auto'`` on grain IDs (say ``'boundaries'`` or
            ``'grain-values'``).
    """
    if representation not in REPRESENTATIONS:
        raise ValueError(
            f"representation: expected one of {REPRESENTATIONS}, got {representation!r}"
        )
    if representation != "auto":
        return representation
    if metadata.get("kind") in _KIND_REPRESENTATION:
        return _KIND_REPRESENTATION[metadata["kind"]]
    dtype, shape = np.dtype(metadata["dtype"]), metadata["sample_shape"]
    if dtype == np.dtype(bool):
        return "binary"
    if np.issubdtype(dtype, np.floating) and len(shape) >= 3:
        return "identity"
    raise ValueError(
        f"representation: 'auto' cannot tell how to train on {dtype} samples of shape "
        f"{tuple(shape)} (kind {metadata.get('kind')!r}); say 'binary', 'boundaries', "
        "'grain-values' or 'identity'"
    )


def training_fields(
    samples: np.ndarray, representation: str, *, key=None, index=None
) -> np.ndarray:
    """``(B, *spatial, C)`` float32 fields in [-1, 1] from a batch of stored samples.

    Args:
        samples: ``(B, ...)`` samples as stored by a dataset.
        representation: see the module docstring (not ``'auto'``: resolve it first).
        key: PRNG key of ``'grain-values'``: sample ``i`` draws from ``fold_in(key, index[i])``.
        index: ``(B,)`` integers identifying the samples (default ``0..B-1``), e.g. their
            dataset positions, so a sample's values do not depend on which rows a process reads.

    Returns:
        float32 NumPy array.
    """
    x = np.asarray(samples)
    if representation == "identity":
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"samples: 'identity' needs float samples, got {x.dtype}")
        return x.astype(np.float32)
    if representation == "binary":
        values = np.unique(x)
        if not np.all(np.isin(values, (0, 1))):
            raise ValueError(f"samples: 'binary' needs values in {{0, 1}}, got {values[:5]}...")
        x = x[..., 0] if x.ndim >= 3 and x.shape[-1] == 1 and x.dtype != bool else x
        return (2.0 * x.astype(np.float32) - 1.0)[..., None]
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"samples: {representation!r} needs integer grain IDs, got {x.dtype}")
    if representation == "boundaries":
        return np.asarray(jax.vmap(boundary_field)(jnp.asarray(x)), np.float32)
    if representation == "grain-values":
        if key is None:
            raise ValueError("key: 'grain-values' draws random values; pass a PRNG key")
        n_ids = int(x.max()) + 1
        index = np.arange(x.shape[0]) if index is None else np.asarray(index)
        values = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i), (n_ids,)))(
            jnp.asarray(index)
        )
        values = 2.0 * np.asarray(values, np.float32) - 1.0
        return np.take_along_axis(values, x.reshape(x.shape[0], -1), axis=1).reshape(x.shape + (1,))
    raise ValueError(
        f"representation: expected one of {REPRESENTATIONS[1:]}, got {representation!r}"
    )
