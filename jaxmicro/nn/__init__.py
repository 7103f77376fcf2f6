"""Neural networks (flax NNX): a 2D/3D UNet noise predictor and a KL-regularized autoencoder."""

from jaxmicro.nn.embedding import FourierEmbedding as FourierEmbedding
from jaxmicro.nn.embedding import sinusoidal_embedding as sinusoidal_embedding
from jaxmicro.nn.unet import UNET_CONFIGS as UNET_CONFIGS
from jaxmicro.nn.unet import UNet as UNet
from jaxmicro.nn.unet import UNetConfig as UNetConfig
from jaxmicro.nn.unet import count_params as count_params
from jaxmicro.nn.unet import unet_config as unet_config
from jaxmicro.nn.vae import VAE as VAE
from jaxmicro.nn.vae import VAEConfig as VAEConfig
from jaxmicro.nn.vae import kl_loss as kl_loss
from jaxmicro.nn.vae import sample_latent as sample_latent
from jaxmicro.nn.vae import vae_loss as vae_loss
