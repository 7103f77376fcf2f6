"""A KL-regularized convolutional autoencoder for latent diffusion, in 2D or 3D.

The encoder maps ``x: (B, *spatial, C)`` to the mean and log-variance of a diagonal Gaussian
posterior over latents ``(B, *spatial / 2**(L-1), latent_channels)``; the decoder maps latents back.
With the default 3D configuration a ``64^3 x 3`` RGB-orientation volume becomes a ``16^3 x 4``
latent, as in PolyCrysDiff (§2.1, §4.1), which follows Stable Diffusion's autoencoder (Rombach et
al. 2022, §3.1) with 3D convolutions.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmicro.nn.layers import (
    Attention,
    Downsample,
    ResBlock,
    Upsample,
    conv,
    group_norm,
)

__all__ = ["VAEConfig", "VAE", "kl_loss", "sample_latent", "vae_loss"]


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Architecture of a ``VAE``.

    Attributes:
        spatial_dims: 2 or 3.
        in_channels: data channels (3 for RGB orientation colours).
        channels: widths per level, finest first; the latent grid is ``2**(len - 1)`` times coarser.
        latent_channels: channels of the latent.
        num_res_blocks: residual blocks per level.
        num_groups: GroupNorm groups.
        mid_attention: self-attention in the bottleneck of encoder and decoder.
        periodic: wrap every convolution around the spatial axes (circular padding), for
            periodic volumes: encoder and decoder then commute with shifts by multiples of
            ``downsampling`` voxels. False: zero padding.
    """

    spatial_dims: int = 3
    in_channels: int = 3
    channels: tuple[int, ...] = (32, 64, 128)
    latent_channels: int = 4
    num_res_blocks: int = 1
    num_groups: int = 8
    mid_attention: bool = True
    periodic: bool = False

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.channels) - 1)


class VAE(nnx.Module):
    """Encoder-decoder pair; ``encode(x) -> (mean, logvar)``, ``decode(z) -> x``.

    References:
        Kingma & Welling (2014); Rombach et al. (2022), §3.1 and appendix G; PolyCrysDiff §2.1.
    """

    def __init__(self, config: VAEConfig, *, rngs: nnx.Rngs):
        if config.spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims: expected 2 or 3, got {config.spatial_dims}")
        self.config = config
        nd, ch, g = config.spatial_dims, config.channels, config.num_groups

        def res(cin, cout):
            return ResBlock(
                cin,
                cout,
                0,
                ndim=nd,
                num_groups=g,
                dropout_rate=0.0,
                rngs=rngs,
                periodic=config.periodic,
            )

        def mid(c):
            layers = [res(c, c)]
            if config.mid_attention:
                layers.append(Attention(c, num_heads=1, num_groups=g, rngs=rngs))
            return nnx.List(layers + [res(c, c)])

        enc = [conv(config.in_channels, ch[0], nd, rngs, periodic=config.periodic)]
        c = ch[0]
        for level, width in enumerate(ch):
            for _ in range(config.num_res_blocks):
                enc.append(res(c, width))
                c = width
            if level < len(ch) - 1:
                enc.append(Downsample(c, ndim=nd, rngs=rngs, periodic=config.periodic))
        self.encoder = nnx.List(enc + list(mid(c)))
        self.enc_norm = group_norm(c, g, rngs)
        self.enc_out = conv(c, 2 * config.latent_channels, nd, rngs, periodic=config.periodic)
        dec = [conv(config.latent_channels, c, nd, rngs, periodic=config.periodic)]
        dec += list(mid(c))
        for level in reversed(range(len(ch))):
            for _ in range(config.num_res_blocks + 1):
                dec.append(res(c, ch[level]))
                c = ch[level]
            if level > 0:
                dec.append(Upsample(c, ndim=nd, rngs=rngs, periodic=config.periodic))
        self.decoder = nnx.List(dec)
        self.dec_norm = group_norm(c, g, rngs)
        self.dec_out = conv(c, config.in_channels, nd, rngs, periodic=config.periodic)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Posterior parameters of ``x: (B, *spatial, C)``.

        Returns:
            ``(mean, logvar)``, each ``(B, *spatial / downsampling, latent_channels)``; logvar is
            clipped to [-30, 20] for numerical safety.
        """
        cfg = self.config
        if x.ndim != cfg.spatial_dims + 2 or x.shape[-1] != cfg.in_channels:
            raise ValueError(
                f"x: expected shape (B, *spatial[{cfg.spatial_dims}], {cfg.in_channels}), "
                f"got {x.shape}"
            )
        if any(s % cfg.downsampling for s in x.shape[1:-1]):
            raise ValueError(
                f"x: spatial sizes {x.shape[1:-1]} must be divisible by {cfg.downsampling}"
            )
        h = x
        for layer in self.encoder:
            h = layer(h)
        h = self.enc_out(nnx.silu(self.enc_norm(h)))
        mean, logvar = jnp.split(h, 2, axis=-1)
        return mean, jnp.clip(logvar, -30.0, 20.0)

    def decode(self, z: jax.Array) -> jax.Array:
        """Reconstruction ``(B, *spatial, C)`` of latents ``z: (B, *latent_spatial, latent_C)``."""
        if z.ndim != self.config.spatial_dims + 2 or z.shape[-1] != self.config.latent_channels:
            raise ValueError(
                f"z: expected shape (B, *spatial[{self.config.spatial_dims}], "
                f"{self.config.latent_channels}), got {z.shape}"
            )
        h = z
        for layer in self.decoder:
            h = layer(h)
        return self.dec_out(nnx.silu(self.dec_norm(h)))

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None):
        """Reconstructs ``x`` through a posterior sample (the mean when ``key`` is None).

        Returns:
            ``(reconstruction, mean, logvar)``.
        """
        mean, logvar = self.encode(x)
        z = mean if key is None else sample_latent(key, mean, logvar)
        return self.decode(z), mean, logvar


def sample_latent(key: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """Reparameterized sample ``mean + exp(logvar / 2) * eps`` of the posterior."""
    return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)


def kl_loss(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL divergence of ``N(mean, exp(logvar))`` from ``N(0, I)``, summed over each sample.

    Args:
        mean, logvar: ``(B, ...)`` posterior parameters.

    Returns:
        ``(B,)`` divergences in nats.

    References:
        Kingma & Welling (2014), appendix B.
    """
    kl = 0.5 * (jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar)
    return kl.reshape(kl.shape[0], -1).sum(-1)


def vae_loss(key: jax.Array, model: VAE, x: jax.Array, *, kl_weight: float = 1e-6):
    """Mean squared reconstruction error plus ``kl_weight`` times the per-voxel KL.

    Args:
        key: PRNG key of the posterior sample.
        model: the VAE.
        x: ``(B, *spatial, C)`` data in [-1, 1].
        kl_weight: weight of the KL term (small, as in latent diffusion, so the latent keeps
            detail while staying near unit scale).

    Returns:
        ``(loss, {'mse': ..., 'kl': ...})`` with scalar entries.

    References:
        Rombach et al. (2022), §3.1 (KL-reg autoencoder); PolyCrysDiff §4.1 (MSE reconstruction).
    """
    recon, mean, logvar = model(x, key=key)
    mse = jnp.mean(jnp.square(recon - x))
    kl = jnp.mean(kl_loss(mean, logvar)) / (x.size // x.shape[0])
    return mse + kl_weight * kl, {"mse": mse, "kl": kl}
