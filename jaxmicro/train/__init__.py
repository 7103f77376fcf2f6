"""Training of diffusion models and autoencoders, and the one way to load and sample them.

- ``fit`` (diffusion, conditional or latent) and ``fit_vae`` (the KL-VAE of latent runs), both
  resumable, data-parallel and fed by the one dataset layer ``jaxmicro.data``;
- ``denoiser``: the only adapter from a network output to the noise prediction ``eps_fn(x, t)``
  that samplers read (parameterization, learned variance, conditions, guidance, sharding);
- ``load_model``: a run folder or a shipped model (``jaxmicro.pretrained``) -> ``Model`` with its
  config, schedule, conditions and decoder; ``generate`` samples it.
"""

from jaxmicro.train.autoencoder import (
    Autoencoder,
    VAETrainConfig,
    encode_dataset,
    export_autoencoder,
    fit_vae,
    load_autoencoder,
    reconstruction_quality,
)
from jaxmicro.train.checkpoint import (
    Checkpointer,
    abstract_with_shardings,
    load_arrays,
    save_arrays,
    saved_steps,
)
from jaxmicro.train.config import (
    DataConfig,
    TrainConfig,
    load_config,
    load_experiment_config,
    make_schedule,
    replace_fields,
    save_config,
)
from jaxmicro.train.denoiser import (
    denoiser,
    unet_apply,
)
from jaxmicro.train.loop import (
    fit,
    logged_seconds,
    read_metrics,
    restore_run,
)
from jaxmicro.train.model import (
    Model,
    export_model,
    load_model,
)
from jaxmicro.train.parallel import (
    batch_mesh,
    batch_sharded,
    global_batch,
    initialize_distributed,
    replicated,
)
from jaxmicro.train.sampling import (
    generate,
    save_grid,
)
from jaxmicro.train.source import (
    ConditionStats,
    training_source,
)
from jaxmicro.train.step import (
    TrainState,
    ema_update,
    init_state,
    learning_rate_schedule,
    make_optimizer,
    make_train_step,
    model_from_state,
    step_key,
)

__all__ = [
    "Autoencoder",
    "Checkpointer",
    "ConditionStats",
    "DataConfig",
    "Model",
    "TrainConfig",
    "TrainState",
    "VAETrainConfig",
    "abstract_with_shardings",
    "batch_mesh",
    "batch_sharded",
    "denoiser",
    "ema_update",
    "encode_dataset",
    "export_autoencoder",
    "export_model",
    "fit",
    "fit_vae",
    "generate",
    "global_batch",
    "init_state",
    "initialize_distributed",
    "learning_rate_schedule",
    "load_arrays",
    "load_autoencoder",
    "load_config",
    "replace_fields",
    "load_experiment_config",
    "load_model",
    "logged_seconds",
    "make_optimizer",
    "make_schedule",
    "make_train_step",
    "model_from_state",
    "read_metrics",
    "reconstruction_quality",
    "replicated",
    "restore_run",
    "save_arrays",
    "save_config",
    "save_grid",
    "saved_steps",
    "step_key",
    "training_source",
    "unet_apply",
]
