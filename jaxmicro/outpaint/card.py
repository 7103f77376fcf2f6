"""What a shipped model's card says about outpainting: its default sampler and its example part.

A card may hold ``outpaint`` (keywords of :func:`jaxmicro.outpaint.outpaint`: ``resample``,
``jump``, ``plain_tail``, ``num_steps``, ``eta``, ``batch_size``) and ``example`` (``stl``, a
file in the model's folder, and its ``voxel`` size).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from .pipeline import outpaint

#: The sampler keywords of ``outpaint`` that a card may set (``batch_size`` is not part of the
#: sampler: it changes memory, not samples).
SAMPLER_KEYS = ("resample", "jump", "plain_tail", "num_steps", "eta")
_DEFAULTS = {
    name: inspect.signature(outpaint).parameters[name].default
    for name in (*SAMPLER_KEYS, "batch_size")
}


def card_sampler(card: dict | None, overrides: dict) -> dict:
    """The ``outpaint`` sampler keywords of a model with ``card``, given the caller's choices.

    Args:
        card: the model card (None or without ``outpaint``: the library's defaults).
        overrides: keyword -> value or None (not given), over ``SAMPLER_KEYS`` and ``batch_size``.

    Returns:
        A value for every key of ``SAMPLER_KEYS`` and ``batch_size``. The card's sampler is the
        default; any given sampler keyword replaces it as a whole (``outpaint``'s defaults fill the
        rest), so a partial override never mixes two samplers. ``batch_size`` is taken from the
        overrides, else the card, else the default, on its own.
    """
    from_card = card.get("outpaint", {}) if isinstance(card, dict) else {}
    explicit = any(overrides.get(name) is not None for name in SAMPLER_KEYS)
    settings = {}
    for name, default in _DEFAULTS.items():
        value = overrides.get(name)
        if value is None:
            use_card = name == "batch_size" or not explicit
            value = from_card.get(name, default) if use_card else default
        settings[name] = value
    return settings


def example_part(model_dir, card: dict | None, voxel: float | None) -> tuple[Path, float | None]:
    """The STL file and voxel size of a model's example part (``voxel`` None: the card's).

    Raises:
        ValueError: the model folder ships no example part.
    """
    example = card.get("example") if isinstance(card, dict) else None
    path = None if not example or model_dir is None else Path(model_dir) / example["stl"]
    if path is None or not path.is_file():
        raise ValueError("stl: 'example' needs a shipped model with an example part")
    return path, voxel if voxel is not None else example.get("voxel")
