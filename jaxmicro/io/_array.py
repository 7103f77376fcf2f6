"""Reading one NumPy array from a user's file, with an answer for every bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_npy(path, name: str = "path", *, real: bool = True) -> np.ndarray:
    """Reads a ``.npy`` array without pickle; every bad file is a ``ValueError`` naming ``name``.

    Args:
        path: the file.
        name: the argument's name in messages (e.g. ``'--reference'``).
        real: refuse complex arrays (their imaginary part would be dropped silently).

    Raises:
        ValueError: missing, empty or non-NumPy file; object (pickled) or complex array; an
            empty array.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{name}: no file {file}")
    if file.stat().st_size == 0:
        raise ValueError(f"{name}: {file} is empty (0 bytes)")
    try:
        array = np.load(file, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            message = f"{name}: {file} holds Python objects; only plain arrays are read"
            raise ValueError(message) from None
        raise ValueError(f"{name}: {file} is not a NumPy .npy file ({err})") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"{name}: {file} is not a readable .npy file ({err})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name}: {file} is an archive (.npz), expected one array (.npy)")
    if real and np.iscomplexobj(array):
        raise ValueError(f"{name}: {file} holds complex values; expected a real array")
    if array.size == 0:
        raise ValueError(f"{name}: {file} holds an empty array of shape {array.shape}")
    return array
