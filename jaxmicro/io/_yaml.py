"""A small YAML emitter (block mappings, flow sequences and flow list items) for material.yaml.

PyYAML is not a dependency of jaxmicro; the configuration files we write need only mappings,
lists and scalars. Strings that are not plain identifiers are written JSON-quoted (valid YAML
double-quoted scalars); floats always carry a '.' so YAML 1.1 readers do not take '1e-05' for a
string.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def scalar(value) -> str:
    """One YAML scalar."""
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"YAML: cannot write the non-finite number {value}")
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if exponent and "." not in mantissa else text
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
            return value
        return json.dumps(value)
    raise ValueError(f"YAML: cannot write a value of type {type(value).__name__}")


def flow(value) -> str:
    """``value`` in flow style, on one line."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{scalar(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def block(mapping: Mapping, indent: int = 0) -> list[str]:
    """Lines of ``mapping`` in block style; lists of mappings become one flow item per line."""
    pad, lines = " " * indent, []
    for key, value in mapping.items():
        key = scalar(str(key))
        if isinstance(value, Mapping) and value:
            lines += [f"{pad}{key}:", *block(value, indent + 2)]
        elif isinstance(value, Sequence) and value and all(isinstance(v, Mapping) for v in value):
            lines += [f"{pad}{key}:", *(f"{pad}  - {flow(v)}" for v in value)]
        else:
            lines.append(f"{pad}{key}: {flow(value)}")
    return lines
