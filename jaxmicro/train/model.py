"""A trained diffusion model, loaded from a run folder or a shipped model, ready to sample.

``load_model(source)`` accepts a ``jaxmicro train`` run folder (newest or chosen checkpoint, EMA
or raw parameters), an exported model folder (``export_model``: EMA parameters as plain arrays,
no optimizer state, no orbax) or the name of a model shipped inside the package
(``jaxmicro.pretrained``). The ``Model`` it returns carries what sampling needs: the network, its
schedule, the condition statistics (so samples are asked for in physical values) and, for a
latent model, the autoencoder that decodes its samples. ``Model.eps_fn`` goes through
``denoiser``, the one output -> noise adapter.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxmicro.diffusion.schedule import Schedule
from jaxmicro.train.checkpoint import load_arrays, save_arrays
from jaxmicro.train.config import TrainConfig, load_config, make_schedule, save_config
from jaxmicro.train.denoiser import denoiser, unet_apply
from jaxmicro.train.source import CONDITIONS_FILE, ConditionStats

__all__ = ["Model", "load_model", "export_model", "PARAMS_FILE", "CARD_FILE"]

PARAMS_FILE = "params.npz"
CARD_FILE = "card.json"
AUTOENCODER_DIR = "autoencoder"


@dataclasses.dataclass(frozen=True)
class Model:
    """A diffusion model ready to sample.

    Attributes:
        config: the training config (schedule, shapes, parameterization, ...).
        network: the ``UNet`` with the loaded parameters.
        stats: how physical condition values map to the network's conditions.
        autoencoder: the decoder of a latent model (``jaxmicro.train.autoencoder``), or None.
        path: the folder it was loaded from.
        card: the model card (measured figures) of a shipped model, else ``{}``.
    """

    config: TrainConfig
    network: nnx.Module
    stats: ConditionStats
    autoencoder: object | None = None
    path: Path | None = None
    card: dict = dataclasses.field(default_factory=dict)

    @property
    def schedule(self) -> Schedule:
        """The float32 diffusion schedule the network was trained with."""
        return make_schedule(self.config, dtype=jnp.float32)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape ``(*spatial, C)`` of one sample the network denoises (latent for latent models)."""
        spatial = tuple(self.config.data.shape)
        if self.autoencoder is not None:
            f = self.autoencoder.config.downsampling
            spatial = tuple(s // f for s in spatial)
        return (*spatial, self.config.model.in_channels)

    @property
    def ddim_eta(self) -> float:
        """The DDIM stochasticity the card's figures were measured with (``card['sampling']
        ['eta']``); 0, deterministic DDIM, when the card does not say."""
        return float(self.card.get("sampling", {}).get("eta", 0.0))

    def conditions(self, values: dict | None = None, class_value=None) -> dict | None:
        """Network conditions from physical values (see ``ConditionStats.network_conditions``)."""
        return self.stats.network_conditions(values, class_value)

    def eps_fn(
        self,
        *,
        conditions: dict | None = None,
        guidance_scale: float | None = None,
        mesh: jax.sharding.Mesh | None = None,
        variance_channels: bool = False,
    ):
        """The denoiser ``eps_fn(x, t)`` of this model (``jaxmicro.train.denoiser``)."""
        return denoiser(
            unet_apply(self.network),
            self.schedule,
            parameterization=self.config.parameterization,
            learned_variance=self.config.model.learned_variance,
            conditions=conditions,
            guidance_scale=guidance_scale,
            mesh=mesh,
            variance_channels=variance_channels,
        )


def _stats(folder: Path) -> ConditionStats:
    path = folder / CONDITIONS_FILE
    if path.is_file():
        return ConditionStats.from_json(json.loads(path.read_text()))
    return ConditionStats((), *([np.zeros(0)] * 4))


def _autoencoder(folder: Path, config: TrainConfig):
    if not config.autoencoder:
        return None
    from jaxmicro.train.autoencoder import load_autoencoder

    shipped = folder / AUTOENCODER_DIR
    return load_autoencoder(shipped if shipped.is_dir() else config.autoencoder)


def _resolve(source) -> Path:
    path = Path(source)
    if path.is_dir():
        return path
    from jaxmicro import pretrained

    if isinstance(source, str) and source in pretrained.names():
        return pretrained.model_path(source)
    raise ValueError(
        f"model: {source!r} is neither a run folder nor a shipped model; shipped models: "
        f"{pretrained.names() or 'none'} (jaxmicro models)"
    )


def load_model(
    source,
    *,
    step: int | None = None,
    ema: bool = True,
    mesh: jax.sharding.Mesh | None = None,
) -> Model:
    """Loads a model to sample (see the module docstring).

    Args:
        source: run folder, exported model folder, or shipped model name.
        step: checkpoint step of a run folder (default: newest readable).
        ema: EMA (default) or raw parameters of a run folder (exported models hold EMA only).
        mesh: replicate the parameters over this mesh.

    Raises:
        ValueError: unknown name, a folder that is neither a run nor an exported model, or a
            raw-parameter request on an exported model.
    """
    from jaxmicro.train.loop import restore_run
    from jaxmicro.train.step import _model_parts, model_from_state

    folder = _resolve(source)
    card_path = folder / CARD_FILE
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    if (folder / PARAMS_FILE).is_file():
        if not ema or step is not None:
            raise ValueError("step, raw: an exported model holds one set of EMA parameters only")
        config = load_config(folder / "config.json")
        graphdef, params, rest = nnx.eval_shape(lambda: _model_parts(config, jax.random.key(0)))
        arrays = load_arrays(folder / PARAMS_FILE, {"params": params, "rest": rest})
        if mesh is not None:
            replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
            arrays = jax.device_put(arrays, replicated)
        network = nnx.merge(graphdef, arrays["params"], arrays["rest"])
    else:
        config, graphdef, state = restore_run(folder, step=step, mesh=mesh)
        network = model_from_state(graphdef, state, ema=ema)
    return Model(config, network, _stats(folder), _autoencoder(folder, config), folder, card)


def export_model(
    run_dir,
    dest,
    *,
    card: dict,
    step: int | None = None,
    files=(),
    overwrite: bool = False,
) -> Path:
    """Writes a self-contained model folder (the format of shipped models) from a run.

    The folder holds ``config.json``, ``params.npz`` (EMA parameters and the other model
    variables as plain arrays), ``conditions.json``, ``card.json`` and, for a latent model,
    ``autoencoder/`` (the exported VAE); ``files`` are copied in as well (e.g. ``reference.npy``).

    Args:
        run_dir: a ``fit`` run folder.
        dest: the new folder.
        card: the model card: at least ``name``, ``paper``, ``generates``, ``metrics`` (measured
            figures) and ``data_command`` (how its training data are regenerated).
        step: checkpoint step (default: newest).
        files: extra files to copy into the folder.
        overwrite: replace an existing folder.

    Returns:
        ``dest`` as a ``Path``.
    """
    from jaxmicro._outdir import prepare_output_dir

    missing = {"name", "paper", "generates", "metrics", "data_command"} - set(card)
    if missing:
        raise ValueError(f"card: missing entries {sorted(missing)}")
    model = load_model(run_dir, step=step)
    dest = prepare_output_dir(dest, overwrite=overwrite, name="dest")
    config = model.config
    if model.autoencoder is not None:
        from jaxmicro.train.autoencoder import export_autoencoder

        export_autoencoder(config.autoencoder, dest / AUTOENCODER_DIR)
        config = dataclasses.replace(config, autoencoder=AUTOENCODER_DIR)
    # Run-local paths do not travel with the model.
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, path=""))
    save_config(config, dest / "config.json")
    _, params, rest = nnx.split(model.network, nnx.Param, ...)
    save_arrays(dest / PARAMS_FILE, {"params": params, "rest": rest})
    (dest / CONDITIONS_FILE).write_text(json.dumps(model.stats.to_json(), indent=1))
    (dest / CARD_FILE).write_text(json.dumps(card, indent=1))
    for file in files:
        shutil.copy(file, dest / Path(file).name)
    return dest
