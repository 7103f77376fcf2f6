"""Text forms of a reconstruction problem: descriptor lists and sizes as a command line gives them.

Descriptor lists are comma-separated entries ``name[:weight][:option=value]...``::

    two_point:1:max_lag=7:pairs=auto,three_point_variogram:0.1:max_lag=3,mean_variation:0.01

names as in :data:`jaxmicro.reconstruct.DESCRIPTORS`; values are read as int, float, ``none``
or text, and checked by :class:`jaxmicro.reconstruct.Descriptor` (unknown options are refused
with the list of accepted ones; lag lengths must be integers >= 1). Sizes are comma-separated
integers, ``64,64`` or ``64,64,64``.

Defaults (the lag window W of the two-point term: ``min(8, smallest size // 4)`` over the
reference and the reconstruction):

- orientations: ``two_point:1:max_lag=W,three_point_variogram:0.1:max_lag=3,
  mean_variation:0.01`` (weights from the SHSH-MCR weight sweeps, docs/reconstruct.md);
- phases: ``two_point:1:max_lag=W,mean_variation:0.1``.

References:
    SHSH-MCR paper (mcr-shsh), eq. 23 (the weighted loss), Figs. 6-8 (weights).
"""

from __future__ import annotations

from jaxmicro.reconstruct.spec import Descriptor, descriptor

MIN_SIZE = 4


def parse_descriptors(text: str, *, name: str = "descriptors") -> tuple[Descriptor, ...]:
    """``'two_point:1:max_lag=7,mean_variation:0.1'`` -> a tuple of :class:`Descriptor`.

    Args:
        text: comma-separated ``name[:weight][:option=value]...`` entries.
        name: the argument's name in error messages (e.g. ``'--descriptors'``).

    Returns:
        One :class:`Descriptor` per entry, in order (weight 1 where none is given).

    Raises:
        ValueError: naming ``name`` and the entry: no entry, a weight that is not a number, an
            item that is neither the weight nor ``option=value``, an option given twice, and
            every refusal of :class:`Descriptor` (unknown name or option, bad option value).
    """
    out = []
    for entry in filter(None, (e.strip() for e in str(text).split(","))):
        head, *rest = entry.split(":")
        weight, options = 1.0, {}
        for i, item in enumerate(rest):
            if "=" in item:
                key, value = (s.strip() for s in item.split("=", 1))
                if key in options:
                    raise ValueError(f"{name}: {entry!r}: option {key} is given twice")
                options[key] = _value(value)
            elif i == 0:
                try:
                    weight = float(item)
                except ValueError:
                    raise ValueError(
                        f"{name}: {entry!r}: expected a weight after the name, got {item!r}"
                    ) from None
            else:
                raise ValueError(f"{name}: {entry!r}: expected option=value, got {item!r}")
        try:
            out.append(descriptor(head.strip(), weight, **options))
        except ValueError as err:
            raise ValueError(f"{name}: {entry!r}: {err}") from None
    if not out:
        raise ValueError(f"{name}: no descriptor given")
    return tuple(out)


def _value(text: str):
    if text.lower() == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def default_window(*shapes: tuple[int, ...]) -> int:
    """The default lag window W: ``min(8, smallest size // 4)``, at least 1, over ``shapes``."""
    return max(1, min(8, min(min(s) for s in shapes) // 4))


def default_descriptors(
    representation: str, window: int, *, name: str = "window"
) -> tuple[Descriptor, ...]:
    """The default loss terms of a representation (see the module docstring).

    Args:
        representation: ``'orientations'`` or ``'phases'``.
        window: the two-point lag window W, an integer >= 1.
        name: the argument's name in error messages (e.g. ``'--window'``).

    Raises:
        ValueError: ``window`` is not an integer >= 1 (never raised to 1 silently).
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"{name}: the lag window must be an integer >= 1, got {window!r}")
    terms = f"two_point:1:max_lag={window},"
    if representation == "orientations":
        return parse_descriptors(terms + "three_point_variogram:0.1:max_lag=3,mean_variation:0.01")
    return parse_descriptors(terms + "mean_variation:0.1")


def parse_shape(
    text: str | None, reference_spatial: tuple[int, ...], *, name: str = "shape"
) -> tuple[int, ...]:
    """The reconstruction's spatial shape from ``'64,64'`` or ``'64,64,64'``.

    Args:
        text: comma-separated sizes, or None for the reference's own.
        reference_spatial: the reference's spatial shape (2 or 3 sizes).
        name: the argument's name in error messages (e.g. ``'--shape'``).

    Returns:
        2 or 3 sizes, each >= ``MIN_SIZE``; a 2D reference may drive a 3D shape (slice loss).

    Raises:
        ValueError: sizes that are not integers, not 2 or 3 of them, below ``MIN_SIZE``, or a
            2D shape for a 3D reference.
    """
    if text is None:
        return tuple(reference_spatial)
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise ValueError(f"{name}: expected sizes like 64,64 or 64,64,64, got {text!r}") from None
    if len(shape) not in (2, 3) or min(shape) < MIN_SIZE:
        raise ValueError(f"{name}: expected 2 or 3 sizes of at least {MIN_SIZE}, got {text!r}")
    if len(shape) < len(reference_spatial):
        raise ValueError(f"{name}: a 3D reference cannot drive a {len(shape)}D reconstruction")
    return shape
