"""Neural networks (flax NNX): a 2D/3D UNet noise predictor and a KL-regularized autoencoder."""

from jaxmicro.nn.embedding import (
    FourierEmbedding,
    sinusoidal_embedding,
)
from jaxmicro.nn.unet import (
    UNET_CONFIGS,
    UNet,
    UNetConfig,
    count_params,
    unet_config,
)
from jaxmicro.nn.vae import (
    VAE,
    VAEConfig,
    kl_loss,
    sample_latent,
    vae_loss,
)

__all__ = [
    "FourierEmbedding",
    "UNET_CONFIGS",
    "UNet",
    "UNetConfig",
    "VAE",
    "VAEConfig",
    "count_params",
    "kl_loss",
    "sample_latent",
    "sinusoidal_embedding",
    "unet_config",
    "vae_loss",
]
