"""NumPy ``.npz`` archives with JSON metadata, loadable without pickle.

The metadata travel as the UTF-8 bytes of a JSON document in the reserved array ``__metadata__``
(uint8), so ``load_npz`` runs with ``allow_pickle=False`` and a file cannot execute code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

_METADATA = "__metadata__"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def save_npz(path, arrays: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> None:
    """Saves arrays (compressed) and JSON metadata in one ``.npz`` file.

    Args:
        path: file to write; NumPy appends ``.npz`` if the name lacks it.
        arrays: name -> array (NumPy or JAX, copied to the host). Object arrays are refused.
        metadata: JSON-serialisable mapping (NumPy scalars and arrays become numbers and lists).
            Tuples come back as lists, NumPy scalars as Python numbers.

    Raises:
        ValueError: the reserved name ``__metadata__``, an object array, or metadata that JSON
            cannot hold (NaN is refused too, as it is not valid JSON).
    """
    out = {}
    for name, value in arrays.items():
        if name == _METADATA:
            raise ValueError(f"arrays: the name {_METADATA!r} is reserved for the metadata")
        a = np.asarray(value)
        if a.dtype == object:
            raise ValueError(f"arrays[{name!r}]: object arrays cannot be saved without pickle")
        out[name] = a
    try:
        text = json.dumps(dict(metadata or {}), default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"metadata: {error}") from None
    out[_METADATA] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(path, **out)


def load_npz(path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Loads what :func:`save_npz` wrote.

    Args:
        path: the ``.npz`` file.

    Returns:
        (arrays, metadata): name -> array, and the metadata mapping ({} if the file has none).
    """
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name != _METADATA}
        metadata = (
            json.loads(data[_METADATA].tobytes().decode("utf-8")) if _METADATA in data.files else {}
        )
    return arrays, metadata
