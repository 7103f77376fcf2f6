"""Configuration of a diffusion training run, as frozen dataclasses that round-trip through JSON.

Experiments build a ``TrainConfig`` in code (``experiments/<name>/config.py``); the training loop
writes it to ``<out>/config.json`` so that ``jaxmicro sample`` can rebuild model and schedule.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import numpy as np

from jaxmicro.diffusion import (
    cosine_schedule,
    linear_schedule,
    schedule_from_betas,
    zero_terminal_snr,
)
from jaxmicro.diffusion.posterior import PARAMETERIZATIONS
from jaxmicro.diffusion.schedule import Schedule
from jaxmicro.nn import UNetConfig

__all__ = [
    "DataConfig",
    "TrainConfig",
    "make_schedule",
    "config_to_dict",
    "config_from_dict",
    "save_config",
    "load_config",
]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training fields come from: always a dataset folder of ``jaxmicro.data``.

    Either ``path`` names a folder written by ``jaxmicro data make`` (or
    ``jaxmicro.data.write_dataset``), or ``kind`` names a built-in generator
    (``jaxmicro.data.KINDS``) whose ``num_examples`` samples ``fit`` writes once into
    ``<run>/data`` and then reads the same way.

    Attributes:
        path: dataset folder (takes precedence over ``kind``).
        kind: built-in generator kind, e.g. ``'voronoi'``, ``'rsa'``, ``'two-phase'``.
        shape: spatial shape of one training field (for ``path`` it must match the dataset;
            ``()`` takes it from the dataset).
        num_examples: samples generated for ``kind`` (simulations for ``'potts'``).
        params: generator overrides for ``kind`` as ``(name, value)`` pairs.
        representation: stored sample -> training field (``jaxmicro.data.REPRESENTATIONS``).
        seed: seed of generation and of the shuffled order.
    """

    path: str = ""
    kind: str = "voronoi"
    shape: tuple[int, ...] = (32, 32)
    num_examples: int = 1024
    params: tuple = (("grains", (8, 16)),)
    representation: str = "auto"
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A diffusion training run.

    Attributes:
        name: run name (for logs).
        model: the UNet.
        data: the dataset.
        schedule: ``'linear'`` or ``'cosine'``, or either with ``'_zero_snr'`` appended: rescaled
            to zero terminal SNR (``jaxmicro.diffusion.zero_terminal_snr``; use
            ``parameterization='v'``).
        num_diffusion_steps: ``T``.
        beta_start, beta_end: bounds of the linear schedule.
        loss: ``'l2'``, ``'l1'`` or ``'hybrid'`` (needs ``model.learned_variance``).
        parameterization: ``'eps'``, ``'v'`` or ``'x0'``.
        conditions: names of numeric dataset labels that condition the model as scalars
            (``model.num_scalar_conditions`` of them), normalized by the dataset's mean and
            standard deviation (stored in ``<run>/conditions.json``; sampling takes physical
            values).
        class_label: name of an integer dataset label in ``[0, model.num_classes)`` that
            conditions the model through an embedding ('' for none).
        autoencoder: a trained VAE run (``jaxmicro.train.fit_vae``) or exported model folder:
            the data are encoded to latents once (cached in ``<run>/latents``) and the UNet is
            trained on them; sampling decodes.
        lambda_vlb: weight of ``L_vlb`` in the hybrid loss.
        cond_dropout: probability of replacing a sample's condition by the null token.
        batch_size: global batch (divisible by the number of devices).
        num_train_steps: optimizer steps.
        learning_rate: peak learning rate of the warmup + cosine schedule.
        warmup_steps: linear warmup steps.
        lr_cycles: lengths of successive warmup + cosine cycles (warm restarts), summing to
            ``num_train_steps``; empty: one cycle over the run (see ``learning_rate_schedule``).
        lr_cycle_decay: factor on the peak learning rate from one cycle to the next, in (0, 1].
        weight_decay: AdamW decoupled weight decay.
        grad_clip: global gradient-norm clip.
        ema_decay: EMA rate of the parameters used for sampling.
        compute_dtype: ``'float32'`` or ``'bfloat16'`` (parameters stay float32).
        seed: seed of initialization and of the per-step keys.
        log_every: steps between JSONL metric lines.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        sample_every: steps between sample PNGs (0: never).
        num_preview_samples: samples in each preview PNG.
        preview_ddim_steps: DDIM steps of the previews.
        fast_compile: compile the train step with XLA's backend optimization off (much faster
            compilation, slower steps: for tests and few-step smoke runs).
    """

    name: str = "run"
    model: UNetConfig = dataclasses.field(default_factory=UNetConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    schedule: str = "linear"
    num_diffusion_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    loss: str = "l2"
    parameterization: str = "eps"
    lambda_vlb: float = 0.001
    conditions: tuple[str, ...] = ()
    class_label: str = ""
    cond_dropout: float = 0.0
    autoencoder: str = ""
    batch_size: int = 16
    num_train_steps: int = 1000
    learning_rate: float = 1e-4
    warmup_steps: int = 100
    lr_cycles: tuple[int, ...] = ()
    lr_cycle_decay: float = 1.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    compute_dtype: str = "float32"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    sample_every: int = 0
    num_preview_samples: int = 16
    preview_ddim_steps: int = 50
    fast_compile: bool = False

    def validate(self) -> TrainConfig:
        """Returns self, or raises ValueError naming the inconsistent field."""
        if self.loss == "hybrid" and not self.model.learned_variance:
            raise ValueError("loss: 'hybrid' needs model.learned_variance=True")
        if self.loss != "hybrid" and self.model.learned_variance:
            raise ValueError("model.learned_variance: only the 'hybrid' loss trains the variance")
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(
                f"compute_dtype: expected 'float32' or 'bfloat16', got {self.compute_dtype!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization: expected one of {PARAMETERIZATIONS}, "
                f"got {self.parameterization!r}"
            )
        if len(self.conditions) != self.model.num_scalar_conditions:
            raise ValueError(
                f"conditions: {len(self.conditions)} scalar condition(s) {self.conditions} but "
                f"model.num_scalar_conditions is {self.model.num_scalar_conditions}"
            )
        if bool(self.class_label) != bool(self.model.num_classes):
            raise ValueError(
                f"class_label: {self.class_label!r} needs model.num_classes > 0 and vice versa "
                f"(got {self.model.num_classes})"
            )
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ValueError(f"cond_dropout: expected a rate in [0, 1), got {self.cond_dropout}")
        for name in ("batch_size", "num_train_steps", "log_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        check_lr_cycles(self.lr_cycles, self.lr_cycle_decay, self.num_train_steps)
        if self.data.shape and len(self.data.shape) != self.model.spatial_dims:
            raise ValueError(
                f"data.shape: {self.data.shape} has {len(self.data.shape)} axes but "
                f"model.spatial_dims is {self.model.spatial_dims}"
            )
        return self


def check_lr_cycles(lr_cycles: tuple[int, ...], lr_cycle_decay: float, num_train_steps: int):
    """Raises ValueError unless ``lr_cycles`` is empty or positive lengths summing to
    ``num_train_steps``, and ``lr_cycle_decay`` is in (0, 1]."""
    if lr_cycles and (
        any(int(n) < 1 for n in lr_cycles) or sum(int(n) for n in lr_cycles) != num_train_steps
    ):
        raise ValueError(
            f"lr_cycles: expected positive cycle lengths summing to num_train_steps "
            f"({num_train_steps}), got {tuple(lr_cycles)}"
        )
    if not 0.0 < lr_cycle_decay <= 1.0:
        raise ValueError(f"lr_cycle_decay: expected a factor in (0, 1], got {lr_cycle_decay}")


SCHEDULES = ("linear", "cosine", "linear_zero_snr", "cosine_zero_snr")

# XLA options of programs that run once (or few times), where compile time dominates.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def make_schedule(config: TrainConfig, *, dtype=None) -> Schedule:
    """The diffusion schedule of a run."""
    kind, _, zero_snr = config.schedule.partition("_")
    if kind == "cosine":
        schedule = cosine_schedule(config.num_diffusion_steps, dtype=dtype)
    else:
        schedule = linear_schedule(
            config.num_diffusion_steps, config.beta_start, config.beta_end, dtype=dtype
        )
    if zero_snr:
        betas = zero_terminal_snr(np.asarray(schedule.betas, np.float64))
        schedule = schedule_from_betas(betas, dtype=dtype)
    return schedule


def config_to_dict(config) -> dict:
    """Plain-JSON dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


def _tuples(value):
    """Lists (from JSON) as tuples, recursively, so configs stay hashable."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def _check_type(cls, name: str, hint, value) -> None:
    """Raises ValueError when a JSON value cannot be the field's type."""
    origin = typing.get_origin(hint) or hint
    allowed = {int: (int,), float: (int, float), str: (str,), bool: (bool,), tuple: (tuple,)}
    expected = allowed.get(origin)
    ok = expected is None or (
        isinstance(value, expected) and not (origin in (int, float) and isinstance(value, bool))
    )
    if not ok:
        raise ValueError(
            f"config: field {cls.__name__}.{name} expects {getattr(origin, '__name__', origin)}, "
            f"got {type(value).__name__} {value!r}"
        )


def config_from_dict(cls, values: dict):
    """Rebuilds dataclass ``cls`` from ``config_to_dict`` output (lists become tuples).

    Raises:
        ValueError: ``values`` is not a dict, or a field has a value of the wrong type (named).
    """
    if not isinstance(values, dict):
        raise ValueError(f"config: expected an object for {cls.__name__}, got {type(values)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            continue
        value, hint = _tuples(values[field.name]), hints[field.name]
        if dataclasses.is_dataclass(hint):
            value = config_from_dict(hint, values[field.name])
        else:
            _check_type(cls, field.name, hint, value)
        kwargs[field.name] = value
    return cls(**kwargs)


def replace_fields(config, overrides: dict):
    """``config`` (a config dataclass) with ``overrides`` from JSON: lists become tuples and each
    value is type-checked as ``config_from_dict`` checks it (e.g. a command's ``--model '{...}'``).

    Raises:
        ValueError: a field ``config`` does not have, or a value of the wrong type (both named).
    """
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"config: {type(config).__name__} has no field {', '.join(unknown)}")
    return config_from_dict(type(config), {**config_to_dict(config), **overrides})


def save_config(config, path: str | Path) -> None:
    """Writes ``config`` (a ``TrainConfig`` or another config dataclass) as JSON."""
    Path(path).write_text(json.dumps(config_to_dict(config), indent=2))


def load_config(path: str | Path, cls: type = TrainConfig):
    """Reads a config of class ``cls`` written by ``save_config`` (ValueError names bad fields)."""
    try:
        values = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"config: {path} is not valid JSON ({err})") from None
    return config_from_dict(cls, values).validate()


def load_experiment_config(spec: str, expected: type = TrainConfig):
    """Config from ``'path/to/config.py:variant'``: calls the file's ``get_config(variant)``.

    Args:
        spec: ``path/to/config.py:variant`` (the variant may be omitted).
        expected: the config class ``get_config`` must return (``TrainConfig`` or, for
            autoencoder runs, ``VAETrainConfig``).

    Raises:
        ValueError: no such file, no ``get_config``, or a config of another class.
    """
    from jaxmicro._modules import load_file_module

    path, _, variant = spec.partition(":")
    if not path.endswith(".py"):
        raise ValueError(f"config: no Python file {path!r} (expected path/to/config.py:variant)")
    module = load_file_module(path, "config")
    if not hasattr(module, "get_config"):
        raise ValueError(f"config: {path} defines no get_config(variant)")
    config = module.get_config(variant) if variant else module.get_config()
    if not isinstance(config, expected):
        raise ValueError(
            f"config: get_config returned {type(config).__name__}, not a {expected.__name__}"
        )
    return config.validate()
