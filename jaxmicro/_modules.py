"""Loading a Python file as a module (experiment configs and their sibling modules)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_file_module(path, name: str = "path") -> ModuleType:
    """Imports the Python file ``path`` (e.g. ``experiments/<paper>/config.py``) and returns it.

    The module is registered in ``sys.modules`` under a name made from its folder and stem before
    it runs, so dataclasses defined in it resolve their module; the same file loads once.

    Raises:
        ValueError: ``path`` is not a ``.py`` file (``name`` names the argument).
    """
    file = Path(path).resolve()
    if file.suffix != ".py" or not file.is_file():
        raise ValueError(f"{name}: no Python file {str(path)!r}")
    module_name = f"_jaxmicro_file_{file.parent.name}_{file.stem}"
    loaded = sys.modules.get(module_name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")) == file:
        return loaded
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
