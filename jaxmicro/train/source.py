"""What a diffusion run trains on: batches of fields and conditions from the one dataset layer.

``training_source(config, out)`` resolves ``config.data`` to a ``jaxmicro.data`` folder (a
``jaxmicro data make`` folder, or a built-in kind generated once into ``<out>/data``), encodes it
to latents once when the run has an autoencoder (``<out>/latents``), and writes the label
statistics of the conditions to ``<out>/conditions.json``. Batch ``step`` is a pure function of
the data seed and the step (``jaxmicro.data.Loader``), so a resumed run sees the batches an
uninterrupted one would have seen, and each process reads only its rows of the global batch.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from jaxmicro.data import Loader, make_dataset, read_metadata, resolve_representation
from jaxmicro.data import training_fields as to_fields
from jaxmicro.train.config import DataConfig, TrainConfig

__all__ = [
    "ConditionStats",
    "TrainingSource",
    "condition_stats",
    "resolve_data",
    "training_source",
]

CONDITIONS_FILE = "conditions.json"


class ConditionStats(NamedTuple):
    """How physical label values become network conditions (and back).

    Attributes:
        names: scalar conditions, in the order of the network's scalar tokens.
        mean, std: ``(K,)`` dataset statistics; a condition enters as ``(value - mean) / std``.
        low, high: ``(K,)`` range of the training labels (sampling outside it extrapolates).
        class_label: name of the class label ('' for none).
        num_classes: its number of classes.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray
    class_label: str = ""
    num_classes: int = 0

    def to_json(self) -> dict:
        return {
            "scalars": [
                {"name": n, "mean": float(m), "std": float(s), "min": float(lo), "max": float(hi)}
                for n, m, s, lo, hi in zip(
                    self.names, self.mean, self.std, self.low, self.high, strict=True
                )
            ],
            "class_label": self.class_label,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_json(cls, values: dict) -> ConditionStats:
        rows = values.get("scalars", [])

        def column(key):
            return np.asarray([r[key] for r in rows], np.float64)

        return cls(
            tuple(r["name"] for r in rows),
            column("mean"),
            column("std"),
            column("min"),
            column("max"),
            values.get("class_label", ""),
            int(values.get("num_classes", 0)),
        )

    def network_conditions(self, values: dict | None = None, class_value=None) -> dict | None:
        """Network conditions from physical values: ``{'scalars': (K,), 'labels': ()}``.

        Args:
            values: name -> physical value (scalar or ``(B,)``) for every scalar condition.
            class_value: the class (int or ``(B,)``) of a class-conditioned model.

        Returns:
            The conditions dict of ``jaxmicro.train.denoiser``, or None when nothing is given
            (the unconditional, null-token model).

        Raises:
            ValueError: a missing or unknown name, or a non-finite value.
        """
        values = dict(values or {})
        if not values and class_value is None:
            return None
        unknown = set(values) - set(self.names)
        if unknown:
            raise ValueError(
                f"condition: unknown name(s) {sorted(unknown)}; this model takes "
                f"{list(self.names) or 'no scalar conditions'}"
                + (f" and the class {self.class_label!r}" if self.class_label else "")
            )
        out = {}
        if self.names:
            missing = [n for n in self.names if n not in values]
            if missing:
                raise ValueError(f"condition: give every scalar condition; missing {missing}")
            raw = np.stack([np.asarray(values[n], np.float64) for n in self.names], axis=-1)
            if not np.all(np.isfinite(raw)):
                raise ValueError(f"condition: values must be finite, got {values}")
            out["scalars"] = ((raw - self.mean) / self.std).astype(np.float32)
        if self.class_label:
            if class_value is None:
                raise ValueError(f"condition: give the class {self.class_label!r}")
            labels = np.asarray(class_value)
            if np.any((labels < 0) | (labels >= self.num_classes)):
                raise ValueError(
                    f"condition: {self.class_label} must lie in [0, {self.num_classes}), "
                    f"got {class_value}"
                )
            out["labels"] = labels.astype(np.int32)
        return out


def condition_stats(config: TrainConfig, labels: dict[str, np.ndarray]) -> ConditionStats:
    """Statistics of the run's conditions over a dataset's labels (name -> ``(n,)``)."""
    available = sorted(labels)
    for name in (*config.conditions, *([config.class_label] if config.class_label else [])):
        if name not in labels:
            raise ValueError(
                f"conditions: the dataset has no numeric label {name!r}; it has {available}"
            )
    columns = [np.asarray(labels[n], np.float64) for n in config.conditions]
    mean = np.asarray([c.mean() for c in columns])
    std = np.asarray([c.std() if c.std() > 0 else 1.0 for c in columns])
    low = np.asarray([c.min() for c in columns])
    high = np.asarray([c.max() for c in columns])
    num_classes = config.model.num_classes
    if config.class_label:
        classes = np.asarray(labels[config.class_label])
        bad = np.any(classes != np.round(classes)) or classes.min() < 0
        if bad or classes.max() >= num_classes:
            raise ValueError(
                f"class_label: {config.class_label!r} must hold integers in [0, {num_classes})"
            )
    return ConditionStats(
        tuple(config.conditions), mean, std, low, high, config.class_label, num_classes
    )


@dataclasses.dataclass
class TrainingSource:
    """Batches of a run. ``batch(step, rows)`` -> ``{'x', 'scalars'?, 'labels'?}`` NumPy arrays.

    Attributes:
        config: the run's config with ``data.shape`` filled in from the dataset.
        folder: the dataset folder read (latents for a latent run).
        loader: the deterministic loader over it.
        representation: the resolved sample -> field map.
        stats: condition statistics.
    """

    config: TrainConfig
    folder: Path
    loader: Loader
    representation: str
    stats: ConditionStats

    def batch(self, step: int, rows: slice | None = None) -> dict[str, np.ndarray]:
        raw = self.loader.batch_at(step, rows)
        key = jax.random.fold_in(jax.random.key(self.config.data.seed), step)
        x = to_fields(raw["x"], self.representation, key=key, index=raw["index"])
        batch = {"x": x}
        if self.stats.names:
            values = np.stack([raw[n] for n in self.stats.names], axis=-1)
            batch["scalars"] = ((values - self.stats.mean) / self.stats.std).astype(np.float32)
        if self.stats.class_label:
            batch["labels"] = raw[self.stats.class_label].astype(np.int32)
        return batch


def _dataset_folder(data: DataConfig, out: Path) -> Path:
    if data.path:
        folder = Path(data.path)
        read_metadata(folder)  # a clear error if it is not a dataset folder
        return folder
    folder = out / "data"
    if not (folder / "metadata.json").is_file():
        if not data.shape:
            raise ValueError("data.shape: a built-in kind needs the shape of its fields")
        if len(set(data.shape)) != 1:
            raise ValueError(
                f"data.shape: built-in kinds make square/cubic fields, got {data.shape}"
            )
        if jax.process_index() == 0:
            make_dataset(
                data.kind,
                folder,
                num_samples=data.num_examples,
                size=data.shape[0],
                dim=len(data.shape),
                seed=data.seed,
                overwrite=True,  # a partial folder of an interrupted first call
                progress=False,
                **dict(data.params),
            )
        _sync("jaxmicro-dataset")
    return folder


def resolve_data(data: DataConfig, out: str | Path, spatial_dims: int):
    """``(data, folder, representation)``: the dataset folder of ``data`` (generated into
    ``<out>/data`` for a built-in kind), its resolved representation, and ``data`` with its
    ``shape`` filled in from the dataset.

    Raises:
        ValueError: the samples do not fit a ``spatial_dims`` model, or their spatial shape
            disagrees with ``data.shape``.
    """
    folder = _dataset_folder(data, Path(out))
    meta = read_metadata(folder)
    representation = resolve_representation(data.representation, meta)
    sample_shape = tuple(meta["sample_shape"])
    n = spatial_dims
    if len(sample_shape) not in (n, n + 1):
        raise ValueError(
            f"data: samples of shape {sample_shape} in {folder} do not fit a "
            f"{n}-dimensional model (expected (*spatial) or (*spatial, C))"
        )
    spatial = sample_shape[:n]
    if data.shape and tuple(data.shape) != spatial:
        raise ValueError(
            f"data.shape: the config says {tuple(data.shape)} but the dataset {folder} "
            f"holds fields of spatial shape {spatial}"
        )
    return dataclasses.replace(data, shape=spatial), folder, representation


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def training_source(config: TrainConfig, out: str | Path) -> TrainingSource:
    """The batches of run ``config`` writing into ``out`` (see the module docstring).

    Raises:
        ValueError: the dataset's sample shape disagrees with ``config.data.shape``, a condition
            is not a numeric label of the dataset, or the representation does not apply.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data, folder, representation = resolve_data(config.data, out, config.model.spatial_dims)
    config = dataclasses.replace(config, data=data)
    if config.autoencoder:
        from jaxmicro.train.autoencoder import encode_dataset, load_autoencoder

        latents = out / "latents"
        encode_dataset(
            load_autoencoder(config.autoencoder),
            folder,
            latents,
            representation=representation,
            progress=False,
        )
        folder, representation = latents, "identity"
    loader = Loader(folder, config.batch_size, jax.random.key(config.data.seed))
    stats = condition_stats(config, loader.labels)
    if jax.process_index() == 0:
        (out / CONDITIONS_FILE).write_text(json.dumps(stats.to_json(), indent=1))
    return TrainingSource(config.validate(), folder, loader, representation, stats)
