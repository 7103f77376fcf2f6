"""Pretrained models shipped inside the package, by name.

Each model is a folder ``jaxmicro/pretrained/models/<name>/`` written by
``jaxmicro.train.export_model`` from a run that this repository's experiment trained (its
``smoke`` variant): ``config.json``, ``params.npz`` (EMA parameters only, plain arrays),
``conditions.json``, ``card.json`` (paper, what it generates, the measured figures, the command
that regenerates its training data and the one that trains it), optional ``autoencoder/`` and
files such as ``reference.npy``. Nothing is downloaded: ``--model NAME`` works on a fresh install.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["MODELS_DIR", "names", "model_path", "list_models"]

MODELS_DIR = Path(__file__).parent / "models"


def names() -> list[str]:
    """Names of the shipped models (folders with a model card), sorted."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "card.json").is_file())


def model_path(name: str) -> Path:
    """The folder of shipped model ``name``.

    Raises:
        ValueError: no such model (the message lists the shipped ones).
    """
    if name not in names():
        raise ValueError(f"model: no shipped model {name!r}; shipped: {names() or 'none'}")
    return MODELS_DIR / name


def list_models() -> list[dict]:
    """One dict per shipped model: its card plus ``name``, ``path`` and ``size_mb``."""
    rows = []
    for name in names():
        path = MODELS_DIR / name
        card = json.loads((path / "card.json").read_text())
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        rows.append({**card, "name": name, "path": str(path), "size_mb": round(size / 1e6, 2)})
    return rows
