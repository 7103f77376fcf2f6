"""Configuration of a diffusion training run, as frozen dataclasses that round-trip through JSON.

Experiments build a ``TrainConfig`` in code (``experiments/<name>/config.py``); the training loop
writes it to ``<out>/config.json`` so that ``jaxmicro sample`` can rebuild model and schedule.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

from jaxmicro.diffusion import cosine_schedule, linear_schedule
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
    """Where training fields come from.

    Attributes:
        kind: ``'voronoi_boundaries'`` (synthetic grain-boundary maps, see ``jaxmicro.train.data``)
            or ``'npy'`` (an array ``(N, *spatial, C)`` in [-1, 1] stored at ``path``).
        shape: spatial shape of one field.
        num_examples: size of the synthetic dataset.
        n_grains: grain counts to draw from (each compiled once).
        regularity: seed regularity of the Voronoi tessellation, in [0, 1].
        seed: seed of dataset generation and shuffling.
        path: file of ``kind='npy'``.
    """

    kind: str = "voronoi_boundaries"
    shape: tuple[int, ...] = (32, 32)
    num_examples: int = 1024
    n_grains: tuple[int, ...] = (8, 12, 16)
    regularity: float = 0.5
    seed: int = 0
    path: str = ""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A diffusion training run.

    Attributes:
        name: run name (for logs).
        model: the UNet.
        data: the dataset.
        schedule: ``'linear'`` or ``'cosine'``.
        num_diffusion_steps: ``T``.
        beta_start, beta_end: bounds of the linear schedule.
        loss: ``'l2'``, ``'l1'`` or ``'hybrid'`` (needs ``model.learned_variance``).
        parameterization: ``'eps'`` or ``'v'``.
        lambda_vlb: weight of ``L_vlb`` in the hybrid loss.
        cond_dropout: probability of replacing a sample's condition by the null token.
        batch_size: global batch (divisible by the number of devices).
        num_train_steps: optimizer steps.
        learning_rate: peak learning rate of the warmup + cosine schedule.
        warmup_steps: linear warmup steps.
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
    cond_dropout: float = 0.0
    batch_size: int = 16
    num_train_steps: int = 1000
    learning_rate: float = 1e-4
    warmup_steps: int = 100
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
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule: expected 'linear' or 'cosine', got {self.schedule!r}")
        if len(self.data.shape) != self.model.spatial_dims:
            raise ValueError(
                f"data.shape: {self.data.shape} has {len(self.data.shape)} axes but "
                f"model.spatial_dims is {self.model.spatial_dims}"
            )
        return self


# XLA options of programs that run once (or few times), where compile time dominates.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def make_schedule(config: TrainConfig, *, dtype=None) -> Schedule:
    """The diffusion schedule of a run."""
    if config.schedule == "cosine":
        return cosine_schedule(config.num_diffusion_steps, dtype=dtype)
    return linear_schedule(
        config.num_diffusion_steps, config.beta_start, config.beta_end, dtype=dtype
    )


def config_to_dict(config) -> dict:
    """Plain-JSON dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


def config_from_dict(cls, values: dict):
    """Rebuilds dataclass ``cls`` from ``config_to_dict`` output (lists become tuples)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            continue
        value, hint = values[field.name], hints[field.name]
        if dataclasses.is_dataclass(hint):
            value = config_from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[field.name] = value
    return cls(**kwargs)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Writes ``config`` as JSON."""
    Path(path).write_text(json.dumps(config_to_dict(config), indent=2))


def load_config(path: str | Path) -> TrainConfig:
    """Reads a ``TrainConfig`` written by ``save_config``."""
    return config_from_dict(TrainConfig, json.loads(Path(path).read_text())).validate()


def load_experiment_config(spec: str) -> TrainConfig:
    """Config from ``'path/to/config.py:variant'``: calls the file's ``get_config(variant)``."""
    import importlib.util

    path, _, variant = spec.partition(":")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"config: no file {path!r} (expected path/to/config.py:variant)")
    module_spec = importlib.util.spec_from_file_location(f"_jaxmicro_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config: {path} defines no get_config(variant)")
    config = module.get_config(variant) if variant else module.get_config()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config: get_config returned {type(config).__name__}, not a TrainConfig")
    return config.validate()
