"""Grid geometry shared by the volume writers: spacing and origin per array axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def axis_values(value: float | Sequence[float], name: str, ndim: int) -> tuple[float, ...]:
    """Expands a scalar to ``ndim`` floats, or checks a sequence has ``ndim`` finite floats."""
    values = (
        np.broadcast_to(np.asarray(value, dtype=np.float64), (ndim,))
        if np.ndim(value) == 0
        else (np.asarray(value, dtype=np.float64))
    )
    if values.shape != (ndim,):
        raise ValueError(
            f"{name}: expected a scalar or {ndim} values (one per array axis), "
            f"got {np.shape(value)}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name}: values must be finite, got {tuple(values.tolist())}")
    return tuple(float(v) for v in values)


def grid_geometry(
    spacing: float | Sequence[float], origin: float | Sequence[float], ndim: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Validated (spacing, origin), each one float per array axis; spacing must be positive."""
    spacing = axis_values(spacing, "spacing", ndim)
    if min(spacing) <= 0:
        raise ValueError(f"spacing: values must be positive, got {spacing}")
    return spacing, axis_values(origin, "origin", ndim)
