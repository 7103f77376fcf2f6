"""The latent half of latent diffusion: training the KL-VAE, encoding, decoding and export.

PolyCrysDiff (§2.1, §4.1) first trains a 3D KL-VAE on the voxel fields, then trains the diffusion
model on the latents of the training set, and decodes generated latents back to voxels. Here:

- ``fit_vae(config, out)`` trains ``jaxmicro.nn.VAE`` with the loop of the diffusion runs
  (``train_loop``: resumable, data-parallel, JSONL metrics, orbax checkpoints), on data from the
  one dataset layer (``config.data``, as ``TrainConfig.data``);
- ``load_autoencoder(path)`` gives an ``Autoencoder``: ``encode(x)`` (the posterior mean,
  standardized per latent channel) and ``decode(z)``, jitted;
- ``export_autoencoder(run, dest)`` writes the self-contained folder shipped inside latent models;
- ``encode_dataset(ae, data, out)`` writes the latents of a dataset as a ``jaxmicro.data`` folder
  (cached by fingerprint, resumable);
- ``reconstruction_quality(ae, fields)`` reports colour / phase / grain-count agreement.

A ``fit_vae`` run folder holds:

- ``vae_config.json``: the ``VAETrainConfig`` (the file name tells a VAE run from a diffusion run,
  whose config is ``config.json``);
- ``checkpoints/<step>/``: orbax checkpoints of a ``VAEState``;
- ``metrics.jsonl``: ``loss``, ``mse``, ``kl``, ``grad_norm`` and wall ``time`` per logged step;
- ``scale.json``: ``{"step", "shift", "scale", "num_samples"}``, the latent standardization of
  that checkpoint's EMA parameters (written by the ``fit_vae`` call that ends at that step,
  recomputed on load when stale);
- ``data/`` for a built-in data kind.

An exported folder holds ``vae_config.json`` (``{"format": "jaxmicro-vae/1", "model": VAEConfig,
"shift", "scale", "step", "name"}``) and ``params.npz`` (EMA parameters and the other model
variables as plain arrays, ``save_arrays``); it is read without orbax and without running code.

The latents are standardized per channel: ``shift`` is each channel's mean and ``scale`` the
inverse of its standard deviation, over the posterior means of up to 64 training fields (evenly
spaced in dataset order), so that the diffusion model sees latents of zero mean and unit variance
in every channel. ``encode`` gives ``(mean - shift) * scale``, ``decode`` inverts it. Rombach et al.
(2022, §4.3.2) divide by one global standard deviation; with a weak KL term the channel means can
dominate it (PolyCrysDiff smoke: means -0.74 and 1.71 against spreads of about 0.37, global std
0.99), which hides the structure under about 7x more noise at every level than the schedule
intends (docs/polycrysdiff.md). Records without ``shift`` (runs from before) load as a global
scale and no shift, as they were trained.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxmicro._outdir import prepare_output_dir
from jaxmicro.data import Loader, read_metadata, resolve_representation, training_fields
from jaxmicro.data import write_dataset as _write_dataset
from jaxmicro.nn import VAE, VAEConfig, vae_loss
from jaxmicro.train.checkpoint import (
    Checkpointer,
    abstract_with_shardings,
    load_arrays,
    save_arrays,
)
from jaxmicro.train.config import (
    DataConfig,
    check_lr_cycles,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from jaxmicro.train.loop import check_resumable, jit_run, start_state, train_loop
from jaxmicro.train.parallel import (
    batch_mesh,
    global_batch,
    local_batch_slice,
    sync,
)
from jaxmicro.train.source import resolve_data
from jaxmicro.train.step import ema_update, make_optimizer

__all__ = [
    "Autoencoder",
    "VAEState",
    "VAETrainConfig",
    "compare_reconstructions",
    "encode_dataset",
    "export_autoencoder",
    "fit_vae",
    "latent_standardization",
    "load_autoencoder",
    "load_vae_config",
    "load_vae_experiment_config",
    "reconstruction_quality",
]

VAE_CONFIG_FILE = "vae_config.json"
SCALE_FILE = "scale.json"
PARAMS_FILE = "params.npz"
EXPORT_FORMAT = "jaxmicro-vae/1"
SCALE_SAMPLES = 64
_PARTIAL = "_encoding"  # work folder of an unfinished encode_dataset, inside out_dir
_CHUNK = 64  # samples per resumable unit of encode_dataset


# --------------------------------------------------------------------------------------------
# Configuration


@dataclasses.dataclass(frozen=True)
class VAETrainConfig:
    """A VAE training run (``fit_vae``). Defaults follow PolyCrysDiff §4.1.

    Attributes:
        name: run name (for logs).
        model: the VAE architecture.
        data: the dataset, as in ``TrainConfig.data`` (folder or built-in kind; the samples
            become fields in [-1, 1] through ``data.representation``).
        batch_size: global batch (divisible by the number of devices). PolyCrysDiff: 2.
        num_train_steps: optimizer steps.
        learning_rate: peak learning rate of the warmup + cosine schedule (PolyCrysDiff states
            1e-6 with Adam; the default here trains small models in fewer steps).
        warmup_steps: linear warmup steps.
        lr_cycles, lr_cycle_decay: warm restarts, as in ``TrainConfig``.
        weight_decay: AdamW decoupled weight decay.
        grad_clip: global gradient-norm clip.
        ema_decay: EMA rate of the parameters that are loaded, exported and encoded with.
        kl_weight: weight of the per-voxel KL term in ``vae_loss`` (Rombach et al. 2022 use a
            small weight, about 1e-6, so the latent keeps detail).
        seed: seed of initialization and of the per-step keys (posterior samples).
        log_every: steps between JSONL metric lines.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        fast_compile: compile the train step with XLA's backend optimization off (tests and
            few-step smoke runs).
    """

    name: str = "vae"
    model: VAEConfig = dataclasses.field(default_factory=VAEConfig)
    data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(
            kind="voronoi-rgb",
            shape=(64, 64, 64),
            num_examples=2000,
            params=(),
            representation="identity",
        )
    )
    batch_size: int = 2
    num_train_steps: int = 10000
    learning_rate: float = 1e-4
    warmup_steps: int = 100
    lr_cycles: tuple[int, ...] = ()
    lr_cycle_decay: float = 1.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    kl_weight: float = 1e-6
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000
    fast_compile: bool = False

    def validate(self) -> VAETrainConfig:
        """Returns self, or raises ValueError naming the inconsistent field."""
        m = self.model
        if m.spatial_dims not in (2, 3):
            raise ValueError(f"model.spatial_dims: expected 2 or 3, got {m.spatial_dims}")
        if not m.channels or any(int(c) < 1 or c % m.num_groups for c in m.channels):
            raise ValueError(
                f"model.channels: expected positive widths divisible by model.num_groups "
                f"({m.num_groups}), got {m.channels}"
            )
        for name in ("in_channels", "latent_channels", "num_res_blocks"):
            if int(getattr(m, name)) < 1:
                raise ValueError(f"model.{name}: expected a positive integer")
        if self.data.shape:
            if len(self.data.shape) != m.spatial_dims:
                raise ValueError(
                    f"data.shape: {self.data.shape} has {len(self.data.shape)} axes but "
                    f"model.spatial_dims is {m.spatial_dims}"
                )
            if any(s % m.downsampling for s in self.data.shape):
                raise ValueError(
                    f"data.shape: sizes {self.data.shape} must be divisible by the VAE's "
                    f"downsampling {m.downsampling} (2 ** (len(model.channels) - 1))"
                )
        for name in ("batch_size", "num_train_steps", "log_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected >= 0, got {self.warmup_steps}")
        check_lr_cycles(self.lr_cycles, self.lr_cycle_decay, self.num_train_steps)
        for name in ("learning_rate", "grad_clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a finite positive number, got {value}")
        for name in ("weight_decay", "kl_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay: expected a rate in [0, 1), got {self.ema_decay}")
        return self


def load_vae_config(path: str | Path) -> VAETrainConfig:
    """Reads a ``VAETrainConfig`` written by ``fit_vae`` (ValueError naming a bad field)."""
    return load_config(path, VAETrainConfig)


def load_vae_experiment_config(spec: str) -> VAETrainConfig:
    """Config from ``'path/to/config.py:variant'``: the file's ``get_config(variant)``.

    Raises:
        ValueError: no such file, no ``get_config``, or it returns no ``VAETrainConfig``.
    """
    from jaxmicro.train.config import load_experiment_config

    return load_experiment_config(spec, VAETrainConfig)


# --------------------------------------------------------------------------------------------
# Training


class VAEState(NamedTuple):
    """Everything a VAE run needs to continue exactly; a pytree of arrays.

    Attributes:
        step: int32 scalar, optimizer steps taken (batch ``step`` is the next one read).
        rng: uint32 key data of the run's base key.
        params: ``nnx.State`` of the trainable parameters.
        rest: ``nnx.State`` of the model's other variables.
        opt_state: optax state.
        ema: ``nnx.State``, exponential moving average of ``params``.
    """

    step: jax.Array
    rng: jax.Array
    params: nnx.State
    rest: nnx.State
    opt_state: optax.OptState
    ema: nnx.State


def _vae_parts(model: VAEConfig, key):
    return nnx.split(VAE(model, rngs=nnx.Rngs(params=key)), nnx.Param, ...)


def _graphdef(model: VAEConfig):
    return nnx.eval_shape(lambda: _vae_parts(model, jax.random.key(0)))[0]


def init_vae_state(config: VAETrainConfig, optimizer: optax.GradientTransformation):
    """``(graphdef, init_fn)``; ``init_fn()`` returns the initial ``VAEState`` (jittable).

    Parameters come from ``fold_in(key(seed), 0)``; step keys from ``step_key`` (index 1).
    """
    graphdef = _graphdef(config.model)

    def init_fn():
        base = jax.random.key(config.seed)
        _, params, rest = _vae_parts(config.model, jax.random.fold_in(base, 0))
        return VAEState(
            step=jnp.zeros((), jnp.int32),
            rng=jax.random.key_data(base),
            params=params,
            rest=rest,
            opt_state=optimizer.init(params),
            ema=jax.tree.map(jnp.copy, params),
        )

    return graphdef, init_fn


def make_vae_train_step(config: VAETrainConfig, graphdef, optimizer):
    """Builds ``train_step(key, state, batch) -> (state, metrics)`` (pure; jit in the caller).

    ``batch['x']``: ``(B, *spatial, C)`` fields in [-1, 1]. The loss is ``vae_loss``: mean
    squared reconstruction error of a reparameterized posterior sample plus ``kl_weight`` times
    the per-voxel KL divergence from ``N(0, I)``.

    References:
        Kingma & Welling (2014), eq. 10; Rombach et al. (2022), §3.1; PolyCrysDiff §4.1.
    """

    def loss_fn(params, key, rest, x):
        return vae_loss(key, nnx.merge(graphdef, params, rest), x, kl_weight=config.kl_weight)

    def train_step(key: jax.Array, state: VAEState, batch: dict):
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, key, state.rest, batch["x"]
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = state._replace(
            step=state.step + 1,
            params=params,
            opt_state=opt_state,
            ema=ema_update(state.ema, params, config.ema_decay, state.step),
        )
        return new, dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))

    return train_step


def _compiled_vae(config: VAETrainConfig, mesh):
    """Jitted ``(graphdef, init_fn, init_jit, step_fn)``; compilation shared within a process."""
    return _compiled_vae_cached(json.dumps(config_to_dict(config), sort_keys=True), mesh)


@functools.cache
def _compiled_vae_cached(key: str, mesh):
    config = config_from_dict(VAETrainConfig, json.loads(key))
    optimizer = make_optimizer(config)
    graphdef, init_fn = init_vae_state(config, optimizer)
    train_step = make_vae_train_step(config, graphdef, optimizer)
    return (graphdef, init_fn, *jit_run(init_fn, train_step, mesh, config.fast_compile))


def _fields_of(loader: Loader, index, representation: str, seed: int) -> np.ndarray:
    """Training fields of dataset positions ``index`` (``grain-values`` keyed by position)."""
    return training_fields(
        loader.samples(index), representation, key=jax.random.key(seed), index=index
    )


def fit_vae(
    config: VAETrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    num_devices: int | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Trains (or continues) a VAE run; returns the metric records logged by this call.

    Batch ``step`` is a pure function of ``config.data.seed`` and ``step`` (``jaxmicro.data
    .Loader``) and the posterior samples use ``fold_in(fold_in(key(seed), 1), step)``, so an
    interrupted and resumed run logs the loss sequence of an uninterrupted one. At the end of
    the call the latent standardization of the final EMA parameters is written to
    ``scale.json``, unless it already holds that step's (a finished run called again).

    Args:
        config: the run.
        out_dir: run folder (see the module docstring); a new folder, or ``resume``.
        resume: continue from the newest checkpoint in ``out_dir`` (a fresh start if none).
        num_devices: devices of the data-parallel mesh (default: all).
        stop_after: take at most this many steps in this call, then checkpoint and return.
        progress: show a tqdm progress bar.

    Returns:
        Metric records ``{'step', 'loss', 'mse', 'kl', 'grad_norm', 'time'}`` of this call.

    Raises:
        ValueError: a non-empty ``out_dir`` without ``resume``; a resumed run whose ``model``
            differs; ``batch_size`` not divisible by the devices; fields whose channels are
            not ``model.in_channels`` or whose sizes are not divisible by the downsampling.
    """
    config = config.validate()
    out = Path(out_dir)
    if out.is_dir() and any(out.iterdir()) and not resume:
        if (out / "checkpoints").is_dir():
            raise ValueError(
                f"out_dir: {out} already holds checkpoints; resume or use a new folder"
            )
        raise ValueError(f"out_dir: {out} already holds files; use a new folder")
    if resume and (out / VAE_CONFIG_FILE).is_file():
        check_resumable(load_vae_config(out / VAE_CONFIG_FILE), config, ("model",), out)
    out = prepare_output_dir(out, resume=True, name="out_dir")
    mesh = batch_mesh(num_devices)
    if config.batch_size % mesh.size:
        raise ValueError(
            f"batch_size: {config.batch_size} is not divisible by the {mesh.size} devices"
        )
    data, folder, representation = resolve_data(config.data, out, config.model.spatial_dims)
    config = dataclasses.replace(config, data=data).validate()
    loader = Loader(folder, config.batch_size, jax.random.key(data.seed))
    rows = local_batch_slice(config.batch_size)

    def fields(step):
        raw = loader.batch_at(step, rows)
        key = jax.random.fold_in(jax.random.key(data.seed), step)
        return training_fields(raw["x"], representation, key=key, index=raw["index"])

    channels = fields(0).shape[-1]
    if channels != config.model.in_channels:
        raise ValueError(
            f"model.in_channels: {config.model.in_channels}, but the {representation!r} fields "
            f"of {folder} have {channels} channel(s)"
        )
    if jax.process_index() == 0:
        save_config(config, out / VAE_CONFIG_FILE)
    graphdef, init_fn, init_jit, step_fn = _compiled_vae(config, mesh)
    ckpt, state = start_state(out, init_fn, init_jit, mesh, resume)
    state, records = train_loop(
        out,
        state,
        step_fn,
        lambda step: global_batch({"x": fields(step)}, mesh),
        name=config.name,
        num_train_steps=config.num_train_steps,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        checkpointer=ckpt,
        stop_after=stop_after,
        progress=progress,
    )
    if jax.process_index() == 0:
        network = nnx.merge(graphdef, state.ema, state.rest)
        _standardization(out, config, Autoencoder(config.model, network, 1.0), int(state.step))
    return records


def _scale_fields(config: VAETrainConfig, run: Path) -> np.ndarray:
    """Up to ``SCALE_SAMPLES`` training fields, evenly spaced in dataset order."""
    _, folder, representation = resolve_data(config.data, run, config.model.spatial_dims)
    loader = Loader(folder, 1, jax.random.key(0))
    index = np.unique(np.linspace(0, loader.n - 1, min(loader.n, SCALE_SAMPLES)).round())
    index = index.astype(np.int64)
    return _fields_of(loader, index, representation, config.data.seed)


def _standardization(run: Path, config: VAETrainConfig, unscaled: Autoencoder, step: int):
    """``(shift, scale)`` of the run's parameters at ``step``: read from ``scale.json`` when it
    belongs to ``step`` (a record without ``shift``: a global scale, as trained before), else
    computed from the training fields and stored there (only computed in a read-only folder)."""
    path = run / SCALE_FILE
    if path.is_file():
        record = json.loads(path.read_text())
        if record.get("step") == step:
            return record.get("shift", 0.0), record["scale"]
    fields = _scale_fields(config, run)
    shift, scale = latent_standardization(unscaled, fields)
    record = {"step": int(step), "shift": shift, "scale": scale, "num_samples": len(fields)}
    tmp = run / f".{SCALE_FILE}.tmp"
    try:
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)
    except OSError:  # a read-only run folder: computed, not cached
        pass
    return shift, scale


# --------------------------------------------------------------------------------------------
# The autoencoder of a trained run


@functools.partial(jax.jit, static_argnums=0)
def _encode_jit(graphdef, params, rest, shift, scale, x):
    mean, _ = nnx.merge(graphdef, params, rest).encode(x)
    return (mean - shift) * scale


@functools.partial(jax.jit, static_argnums=0)
def _decode_jit(graphdef, params, rest, shift, scale, z):
    return nnx.merge(graphdef, params, rest).decode(z / scale + shift)


def _per_channel(value, channels: int, name: str) -> tuple[float, ...]:
    """``value`` (a number or ``channels`` numbers) as ``channels`` floats."""
    v = np.asarray(value, np.float64)
    if v.ndim > 1 or (v.ndim == 1 and v.shape != (channels,)):
        raise ValueError(f"{name}: expected a number or {channels} (one per channel), got {value}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: expected finite values, got {value}")
    return tuple(float(a) for a in np.broadcast_to(v, (channels,)))


class Autoencoder:
    """A trained VAE as a pair of jitted maps between fields and standardized latents.

    ``encode(x)`` is ``(mean - shift) * scale`` of the posterior mean (deterministic);
    ``decode(z)`` decodes ``z / scale + shift``. Compiled programs are shared by every
    ``Autoencoder`` of the same architecture (one compile per input shape).

    Attributes:
        config: the ``VAEConfig``.
        scale: per latent channel, ``1 / std`` of the training latents (a number given to the
            constructor applies to every channel).
        shift: per latent channel, the mean of the training latents (default 0).
        path: the folder it was loaded from (None when built in memory).
        step: the training step of its parameters (None when unknown).
    """

    def __init__(
        self,
        config: VAEConfig,
        network: VAE,
        scale,
        shift=0.0,
        *,
        path: Path | None = None,
        step: int | None = None,
    ):
        channels = config.latent_channels
        self.scale = _per_channel(scale, channels, "scale")
        if min(self.scale) <= 0:
            raise ValueError(f"scale: expected positive values, got {scale}")
        self.shift = _per_channel(shift, channels, "shift")
        self.config = config
        self.path = path
        self.step = step
        graphdef, params, rest = nnx.split(network, nnx.Param, ...)
        # Uncommitted copies: inputs placed anywhere (e.g. sharded samples) decide the devices.
        self._graphdef = graphdef
        self._params, self._rest = jax.tree.map(
            lambda a: jnp.asarray(jax.device_get(a)), (params, rest)
        )

    @property
    def network(self) -> VAE:
        """The ``VAE`` module (a fresh merge of the stored parameters)."""
        return nnx.merge(self._graphdef, self._params, self._rest)

    @property
    def variables(self) -> dict:
        """``{'params': nnx.State, 'rest': nnx.State}``: the arrays of ``params.npz``."""
        return {"params": self._params, "rest": self._rest}

    def with_scale(self, scale, shift=0.0) -> Autoencoder:
        """The same network with another standardization (``with_scale(1.0)``: raw means)."""
        return Autoencoder(self.config, self.network, scale, shift, path=self.path, step=self.step)

    def _apply(self, fn, x, batch_size: int | None) -> jax.Array:
        x = jnp.asarray(x, jnp.float32)
        stats = jnp.asarray(self.shift, jnp.float32), jnp.asarray(self.scale, jnp.float32)
        n = x.shape[0] if x.ndim else 0
        if batch_size is None or n <= batch_size:
            return fn(self._graphdef, self._params, self._rest, *stats, x)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        chunks = []
        for start in range(0, n, batch_size):
            part = x[start : start + batch_size]
            rows = part.shape[0]
            if rows < batch_size:  # pad: one compiled shape for every chunk
                pad = jnp.zeros((batch_size - rows, *part.shape[1:]), part.dtype)
                part = jnp.concatenate([part, pad])
            chunks.append(fn(self._graphdef, self._params, self._rest, *stats, part)[:rows])
        return jnp.concatenate(chunks)

    def encode(self, x, *, batch_size: int | None = None) -> jax.Array:
        """Standardized posterior means of fields.

        Args:
            x: ``(B, *spatial, in_channels)`` fields in [-1, 1]; spatial sizes divisible by
                ``config.downsampling``.
            batch_size: encode at most this many fields per call (bounds memory).

        Returns:
            float32 ``(B, *spatial / downsampling, latent_channels)``.
        """
        return self._apply(_encode_jit, x, batch_size)

    def decode(self, z, *, batch_size: int | None = None) -> jax.Array:
        """Fields ``(B, *latent_spatial * downsampling, in_channels)`` of standardized latents."""
        return self._apply(_decode_jit, z, batch_size)

    def reconstruct(self, x, *, batch_size: int | None = None) -> jax.Array:
        """``decode(encode(x))``: the deterministic reconstruction of fields ``x``."""
        return self.decode(self.encode(x, batch_size=batch_size), batch_size=batch_size)

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of architecture, standardization and parameter values (equal for a run and
        its export; a global scale without shift hashes as before shifts existed)."""
        h = hashlib.sha256()
        h.update(json.dumps(config_to_dict(self.config), sort_keys=True).encode())
        if len(set(self.scale)) == 1 and not any(self.shift):
            h.update(repr(self.scale[0]).encode())
        else:
            h.update(repr((self.shift, self.scale)).encode())
        leaves = jax.tree_util.tree_flatten_with_path(self.variables)[0]
        for path, leaf in leaves:
            h.update(jax.tree_util.keystr(path).encode())
            h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        return (
            f"Autoencoder(latent {self.config.latent_channels} channels, downsampling "
            f"{self.config.downsampling}, shift {_short(self.shift)}, scale {_short(self.scale)}, "
            f"path {self.path})"
        )


def latent_standardization(
    autoencoder: Autoencoder, fields, *, batch_size: int = 8
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(shift, scale)``: per latent channel, the mean and ``1 / std`` of the posterior means of
    ``fields`` (``autoencoder``'s own standardization undone first), so that
    ``autoencoder.with_scale(scale, shift).encode(fields)`` has zero mean and unit standard
    deviation in every channel.

    Raises:
        ValueError: a channel is constant (no scale exists) or the latents are not finite.

    References:
        Rombach et al. (2022), §4.3.2 (rescaling the latents to unit variance; here per channel
        and centred first).
    """
    z = np.asarray(autoencoder.encode(fields, batch_size=batch_size), np.float64)
    z = z / np.asarray(autoencoder.scale) + np.asarray(autoencoder.shift)
    z = z.reshape(-1, z.shape[-1])
    mean, std = z.mean(0), z.std(0)
    if not (np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError(
            f"fields: the latent channels have standard deviations {std}; no scale exists"
        )
    return tuple(float(m) for m in mean), tuple(float(1 / s) for s in std)


def _short(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _restore_run(run: Path) -> tuple[VAETrainConfig, VAE, int]:
    config = load_vae_config(run / VAE_CONFIG_FILE)
    graphdef, init_fn = init_vae_state(config, make_optimizer(config))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    ckpt = Checkpointer(run / "checkpoints")
    try:
        state = ckpt.restore(abstract_with_shardings(jax.eval_shape(init_fn), device))
    finally:
        ckpt.close()
    return config, nnx.merge(graphdef, state.ema, state.rest), int(state.step)


def load_autoencoder(path: str | Path) -> Autoencoder:
    """The ``Autoencoder`` of a ``fit_vae`` run folder or of an exported folder.

    A run gives the EMA parameters of its newest readable checkpoint; its latent standardization
    comes from ``scale.json`` when that file belongs to the same step, else it is computed from
    the run's training data and stored there.

    Raises:
        ValueError: ``path`` is neither, or its files do not match the model.
    """
    folder = Path(path)
    config_path = folder / VAE_CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(
            f"autoencoder: {folder} has no {VAE_CONFIG_FILE} (neither a fit_vae run folder nor "
            "an exported autoencoder)"
        )
    try:
        values = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"autoencoder: {config_path} is not valid JSON ({err})") from None
    if isinstance(values, dict) and values.get("format") == EXPORT_FORMAT:
        model = config_from_dict(VAEConfig, values["model"])
        graphdef, params, rest = nnx.eval_shape(lambda: _vae_parts(model, jax.random.key(0)))
        arrays = load_arrays(folder / PARAMS_FILE, {"params": params, "rest": rest})
        network = nnx.merge(graphdef, arrays["params"], arrays["rest"])
        step = values.get("step")
        shift = values.get("shift", 0.0)
        return Autoencoder(model, network, values["scale"], shift, path=folder, step=step)
    if not (folder / "checkpoints").is_dir():
        raise ValueError(f"autoencoder: {folder} has {VAE_CONFIG_FILE} but no checkpoints/")
    config, network, step = _restore_run(folder)
    unscaled = Autoencoder(config.model, network, 1.0, path=folder, step=step)
    shift, scale = _standardization(folder, config, unscaled, step)
    return unscaled.with_scale(scale, shift)


def export_autoencoder(run_dir: str | Path, dest: str | Path, *, overwrite: bool = False) -> Path:
    """Writes a self-contained autoencoder folder (``vae_config.json`` + ``params.npz``).

    ``load_autoencoder(dest)`` then reads it without orbax (plain arrays, ``allow_pickle=False``)
    and decodes exactly as the run's EMA parameters do. The JSON is written last, so an
    interrupted export is not mistaken for a complete one.

    Args:
        run_dir: a ``fit_vae`` run folder (or an exported folder).
        dest: the new folder.
        overwrite: replace the contents of an existing non-empty ``dest``.

    Returns:
        ``dest`` as a ``Path``.
    """
    autoencoder = load_autoencoder(run_dir)
    dest = prepare_output_dir(dest, overwrite=overwrite, name="dest")
    save_arrays(dest / PARAMS_FILE, autoencoder.variables)
    name = ""
    if (Path(run_dir) / VAE_CONFIG_FILE).is_file():
        name = json.loads((Path(run_dir) / VAE_CONFIG_FILE).read_text()).get("name", "")
    record = {
        "format": EXPORT_FORMAT,
        "name": name,
        "model": config_to_dict(autoencoder.config),
        "shift": autoencoder.shift,
        "scale": autoencoder.scale,
        "step": autoencoder.step,
    }
    (dest / VAE_CONFIG_FILE).write_text(json.dumps(record, indent=2))
    return dest


# --------------------------------------------------------------------------------------------
# Datasets of latents


def _source_fingerprint(folder: Path, representation: str, autoencoder: Autoencoder) -> str:
    h = hashlib.sha256()
    h.update((folder / "metadata.json").read_bytes())
    for shard in read_metadata(folder)["shards"]:
        h.update(f"{shard['file']}:{(folder / shard['file']).stat().st_size}".encode())
    h.update(representation.encode())
    h.update(autoencoder.fingerprint.encode())
    return h.hexdigest()


def encode_dataset(
    autoencoder: Autoencoder,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    representation: str = "auto",
    batch_size: int = 8,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Writes the latents of every sample of a dataset as a ``jaxmicro.data`` folder.

    Each sample becomes a training field (``training_fields`` with the resolved
    ``representation``; ``'grain-values'`` draws from ``key(0)`` folded with the position) and
    then ``autoencoder.encode`` of it: float32 ``(N, *spatial / downsampling, latent_C)``, in
    dataset order, ``kind='latents'``, with every numeric label of the source copied. The
    metadata also holds ``source_dir``, ``representation``, ``shift``, ``scale``,
    ``downsampling`` and a ``fingerprint`` of source dataset and autoencoder.

    Cached and resumable: an ``out_dir`` that already holds the latents of the same fingerprint
    is returned as it is, without work. Work goes in chunks of 64 samples, each saved whole
    (write then rename) under ``out_dir/_encoding/``; an interrupted call leaves no
    ``metadata.json`` (written last), and the next call redoes only the missing chunks.

    Args:
        autoencoder: the encoder.
        data_dir: a ``jaxmicro.data`` dataset folder.
        out_dir: the latents folder: new, empty, an unfinished encode of the same fingerprint,
            or a finished one (returned as is).
        representation: sample -> field map (``jaxmicro.data.REPRESENTATIONS``).
        batch_size: fields per encoder call.
        overwrite: replace an ``out_dir`` that holds anything else.
        progress: show a tqdm progress bar.

    Returns:
        The latents dataset's metadata.

    Raises:
        ValueError: ``data_dir`` is not a dataset, its fields do not fit the encoder, or
            ``out_dir`` holds other files and ``overwrite`` is not set.
    """
    from tqdm.auto import tqdm

    if int(batch_size) < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    source = Path(data_dir)
    meta = read_metadata(source)
    representation = resolve_representation(representation, meta)
    fingerprint = _source_fingerprint(source, representation, autoencoder)
    out = Path(out_dir)
    if (out / "metadata.json").is_file():
        try:
            done = read_metadata(out)
        except ValueError:
            done = {}
        if done.get("kind") == "latents" and done.get("fingerprint") == fingerprint:
            return done
    partial = out / _PARTIAL
    progress_file = partial / "progress.json"
    ours = (
        progress_file.is_file()
        and json.loads(progress_file.read_text()).get("fingerprint") == fingerprint
        and not (out / "metadata.json").exists()
    )
    if jax.process_index() != 0:
        sync("jaxmicro-encode-dataset")
        return read_metadata(out)
    if (out / "metadata.json").is_file() and not overwrite:
        raise ValueError(
            f"out_dir: {out} holds another dataset (not the latents of {source} with this "
            "autoencoder); choose a new folder or pass overwrite"
        )
    out = prepare_output_dir(out, overwrite=overwrite and not ours, resume=ours, name="out_dir")
    partial.mkdir(exist_ok=True)
    tmp = partial / ".progress.tmp"
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "source": str(source)}))
    os.replace(tmp, progress_file)

    loader = Loader(source, 1, jax.random.key(0))
    n = loader.n
    chunks = [partial / f"chunk-{c:05d}.npy" for c in range(-(-n // _CHUNK))]
    todo = [c for c, path in enumerate(chunks) if not path.is_file()]
    bar = tqdm(
        total=n,
        initial=n - sum(min(_CHUNK, n - c * _CHUNK) for c in todo),
        disable=not progress,
        desc="encode",
    )
    with bar:
        for c in todo:
            index = np.arange(c * _CHUNK, min(n, (c + 1) * _CHUNK))
            fields = _fields_of(loader, index, representation, 0)
            z = np.asarray(autoencoder.encode(fields, batch_size=batch_size), np.float32)
            tmp = partial / f".chunk-{c:05d}.tmp"
            with open(tmp, "wb") as f:
                np.save(f, z)
            os.replace(tmp, chunks[c])
            bar.update(index.size)
    x = np.concatenate([np.load(path, allow_pickle=False) for path in chunks])
    labels = {k: (v.astype(np.int32) if v.dtype == bool else v) for k, v in loader.labels.items()}
    extra = {
        "source_dir": str(source.resolve()),
        "source_kind": meta.get("kind"),
        "representation": representation,
        "shift": list(autoencoder.shift),
        "scale": list(autoencoder.scale),
        "downsampling": autoencoder.config.downsampling,
        "autoencoder": str(autoencoder.path) if autoencoder.path is not None else None,
        "fingerprint": fingerprint,
    }
    staging = partial / "dataset"
    metadata = _write_dataset(staging, x, labels, kind="latents", extra=extra, overwrite=True)
    for shard in metadata["shards"]:
        os.replace(staging / shard["file"], out / shard["file"])
    os.replace(staging / "metadata.json", out / "metadata.json")  # last: the folder is complete
    shutil.rmtree(partial)
    sync("jaxmicro-encode-dataset")
    return metadata


# --------------------------------------------------------------------------------------------
# Quality in user units


def _default_min_size(spatial: tuple[int, ...]) -> int:
    """PolyCrysDiff's 200-voxel speck threshold at 64^3, scaled to the field's voxel count."""
    return max(1, round(200 * math.prod(spatial) / 64**3))


def compare_reconstructions(
    fields,
    reconstructions,
    *,
    palette=None,
    min_grain_size: int | None = None,
    progress: bool = False,
) -> dict:
    """Agreement of reconstructed fields with the originals, in units a user reads directly.

    Always: ``mse`` and ``mae`` (in field units, [-1, 1] range). With ``palette`` (colour fields
    in [-1, 1], the palette in [0, 1] as ``jaxmicro.synth.palette`` returns it, mapped to
    ``2 p - 1``): ``colour_agreement``, the fraction of voxels whose nearest palette colour is
    unchanged; and grains by ``jaxmicro.grains.segment_palette`` (face connectivity, specks
    below ``min_grain_size`` voxels absorbed): ``grains_mean`` / ``grains_reconstructed_mean``,
    ``grain_count_abs_diff`` (mean ``|n_rec - n|``), ``grain_count_rel_diff`` (mean
    ``|n_rec - n| / n``) and ``grain_count_agreement`` (fraction of fields with equal counts).
    Without a palette, single-channel fields: ``phase_agreement``, the fraction of voxels with
    the same sign (``x > 0``) in both.

    Args:
        fields: ``(N, *spatial, C)`` originals.
        reconstructions: same shape.
        palette: ``(P, C)`` colours in [0, 1] (PolyCrysDiff: ``jaxmicro.synth.palette(10)``).
        min_grain_size: speck threshold in voxels; default 200 at 64^3 (PolyCrysDiff §4.2)
            scaled to the field's voxel count (at least 1).
        progress: show a tqdm bar over the fields (segmentation is host-side).

    Returns:
        dict of floats (plus ``num_fields``).

    References:
        PolyCrysDiff §4.2 (colour quantization, connectivity segmentation, 200-voxel threshold).
    """
    from tqdm.auto import tqdm

    x = np.asarray(fields, np.float32)
    y = np.asarray(reconstructions, np.float32)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"fields: expected (N, *spatial, C) with 2 or 3 spatial axes, got {x.shape}"
        )
    if y.shape != x.shape:
        raise ValueError(f"reconstructions: expected shape {x.shape}, got {y.shape}")
    report = {
        "num_fields": int(x.shape[0]),
        "mse": float(np.mean(np.square(y - x, dtype=np.float64))),
        "mae": float(np.mean(np.abs(y - x), dtype=np.float64)),
    }
    if palette is None:
        if x.shape[-1] == 1:
            report["phase_agreement"] = float(np.mean((x > 0) == (y > 0)))
        return report
    from jaxmicro.grains import quantize_palette, segment_palette

    colours = 2.0 * np.asarray(palette, np.float32) - 1.0
    if colours.ndim != 2 or colours.shape[1] != x.shape[-1]:
        raise ValueError(
            f"palette: expected (P, {x.shape[-1]}) colours for {x.shape[-1]}-channel fields, "
            f"got shape {colours.shape}"
        )
    spatial = x.shape[1:-1]
    min_size = _default_min_size(spatial) if min_grain_size is None else int(min_grain_size)
    same, counts = 0, []
    for a, b in tqdm(zip(x, y, strict=True), total=len(x), disable=not progress, desc="grains"):
        ia = np.asarray(quantize_palette(jnp.asarray(a), jnp.asarray(colours)))
        ib = np.asarray(quantize_palette(jnp.asarray(b), jnp.asarray(colours)))
        same += int(np.sum(ia == ib))
        na = int(segment_palette(a, colours, min_size=min_size).max())
        nb = int(segment_palette(b, colours, min_size=min_size).max())
        counts.append((na, nb))
    n_true, n_rec = np.asarray(counts, np.float64).T
    diff = np.abs(n_rec - n_true)
    report.update(
        colour_agreement=same / float(np.prod(x.shape[:-1])),
        grains_mean=float(n_true.mean()),
        grains_reconstructed_mean=float(n_rec.mean()),
        grain_count_abs_diff=float(diff.mean()),
        grain_count_rel_diff=float(np.mean(diff / np.maximum(n_true, 1.0))),
        grain_count_agreement=float(np.mean(diff == 0)),
        min_grain_size=min_size,
    )
    return report


def reconstruction_quality(
    autoencoder: Autoencoder,
    fields,
    *,
    palette=None,
    min_grain_size: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> dict:
    """How well ``autoencoder`` reconstructs ``fields`` (``decode(encode(x))``, posterior mean).

    See ``compare_reconstructions`` for the entries (MSE; colour and grain-count agreement with a
    palette; phase agreement for single-channel fields).

    Args:
        autoencoder: the VAE.
        fields: ``(N, *spatial, in_channels)`` fields in [-1, 1].
        palette: ``(P, C)`` colours in [0, 1] (``jaxmicro.synth.palette(10)`` for PolyCrysDiff).
        min_grain_size: speck threshold in voxels (default: see ``compare_reconstructions``).
        batch_size: fields per encoder/decoder call.
        progress: show a tqdm bar over the segmentation.
    """
    x = np.asarray(fields, np.float32)
    y = autoencoder.reconstruct(x, batch_size=batch_size)
    return compare_reconstructions(
        x, y, palette=palette, min_grain_size=min_grain_size, progress=progress
    )
