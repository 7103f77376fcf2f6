"""Training of diffusion models and autoencoders, and the one way to load and sample them.

- ``fit`` (diffusion, conditional or latent) and ``fit_vae`` (the KL-VAE of latent runs), both
  resumable, data-parallel and fed by the one dataset layer ``jaxmicro.data``;
- ``denoiser``: the only adapter from a network output to the noise prediction ``eps_fn(x, t)``
  that samplers read (parameterization, learned variance, conditions, guidance, sharding);
- ``load_model``: a run folder or a shipped model (``jaxmicro.pretrained``) -> ``Model`` with its
  config, schedule, conditions and decoder; ``generate`` samples it.
"""

from jaxmicro.train.autoencoder import Autoencoder as Autoencoder
from jaxmicro.train.autoencoder import VAETrainConfig as VAETrainConfig
from jaxmicro.train.autoencoder import encode_dataset as encode_dataset
from jaxmicro.train.autoencoder import export_autoencoder as export_autoencoder
from jaxmicro.train.autoencoder import fit_vae as fit_vae
from jaxmicro.train.autoencoder import load_autoencoder as load_autoencoder
from jaxmicro.train.autoencoder import reconstruction_quality as reconstruction_quality
from jaxmicro.train.checkpoint import Checkpointer as Checkpointer
from jaxmicro.train.checkpoint import abstract_with_shardings as abstract_with_shardings
from jaxmicro.train.checkpoint import load_arrays as load_arrays
from jaxmicro.train.checkpoint import save_arrays as save_arrays
from jaxmicro.train.config import DataConfig as DataConfig
from jaxmicro.train.config import TrainConfig as TrainConfig
from jaxmicro.train.config import load_config as load_config
from jaxmicro.train.config import load_experiment_config as load_experiment_config
from jaxmicro.train.config import make_schedule as make_schedule
from jaxmicro.train.config import save_config as save_config
from jaxmicro.train.denoiser import denoiser as denoiser
from jaxmicro.train.denoiser import unet_apply as unet_apply
from jaxmicro.train.loop import fit as fit
from jaxmicro.train.loop import restore_run as restore_run
from jaxmicro.train.model import Model as Model
from jaxmicro.train.model import export_model as export_model
from jaxmicro.train.model import load_model as load_model
from jaxmicro.train.parallel import batch_mesh as batch_mesh
from jaxmicro.train.parallel import batch_sharded as batch_sharded
from jaxmicro.train.parallel import global_batch as global_batch
from jaxmicro.train.parallel import initialize_distributed as initialize_distributed
from jaxmicro.train.parallel import replicated as replicated
from jaxmicro.train.sampling import generate as generate
from jaxmicro.train.sampling import save_grid as save_grid
from jaxmicro.train.source import ConditionStats as ConditionStats
from jaxmicro.train.source import training_source as training_source
from jaxmicro.train.step import TrainState as TrainState
from jaxmicro.train.step import ema_update as ema_update
from jaxmicro.train.step import init_state as init_state
from jaxmicro.train.step import make_optimizer as make_optimizer
from jaxmicro.train.step import make_train_step as make_train_step
from jaxmicro.train.step import model_from_state as model_from_state
from jaxmicro.train.step import step_key as step_key
