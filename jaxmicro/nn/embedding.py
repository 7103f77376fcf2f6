"""Embeddings of the diffusion step: sinusoidal and random Fourier features.

Both map integer (or real) steps ``t`` of shape ``(B,)`` to features ``(B, dim)``; the UNet follows
them with a two-layer MLP.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["sinusoidal_embedding", "FourierEmbedding", "FourierFrequencies"]


def sinusoidal_embedding(t: jax.Array, dim: int, *, max_period: float = 10_000.0, dtype=None):
    """Transformer-style sinusoidal features of the step.

    Args:
        t: ``(B,)`` steps (integers or reals, in units of diffusion steps).
        dim: even number of output features.
        max_period: longest period, in steps.
        dtype: output dtype (default: the default float dtype).

    Returns:
        ``(B, dim)`` array ``[cos(t f_k), sin(t f_k)]`` with ``f_k = max_period^(-k / (dim/2))``.

    References:
        Vaswani et al. (2017), §3.5; Ho, Jain, Abbeel (2020), appendix B.
    """
    if dim % 2:
        raise ValueError(f"dim: expected an even number of features, got {dim}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=dtype) / half)
    angles = jnp.asarray(t, dtype)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.cos(angles), jnp.sin(angles)], axis=-1)


class FourierFrequencies(nnx.Variable):
    """Fixed random frequencies: stored with the model, never trained."""


class FourierEmbedding(nnx.Module):
    """Gaussian random Fourier features of ``t / max_time``.

    Features are ``[sin(2 pi w tau), cos(2 pi w tau)]`` with ``tau = t / max_time`` in [0, 1) and
    ``w ~ N(0, scale^2)`` drawn once at construction.

    References:
        Tancik et al. (2020); Song et al. (2021), score SDE (Gaussian Fourier projection); used by
        Buzzy, Robertson, Kalidindi (2024), rogsh-local-global Fig. 16.
    """

    def __init__(self, dim: int, *, max_time: float, scale: float = 16.0, rngs: nnx.Rngs):
        if dim % 2:
            raise ValueError(f"dim: expected an even number of features, got {dim}")
        self.max_time = float(max_time)
        self.freqs = FourierFrequencies(scale * jax.random.normal(rngs.params(), (dim // 2,)))

    def __call__(self, t: jax.Array) -> jax.Array:
        w = self.freqs[...]
        tau = jnp.asarray(t, w.dtype)[:, None] / self.max_time
        angles = 2 * jnp.pi * tau * w[None, :]
        return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
