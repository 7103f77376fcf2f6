"""DAMASK grid-solver input: a ``.vti`` grid of material indices and a ``material.yaml``.

``write_damask`` writes, into one directory,

- ``<name>.vti``: VTK ImageData with the int32 cell array ``material`` (DAMASK's label), the
  0-based index of each cell's entry in the material list. DAMASK reads the grid's cell counts,
  physical size (= cells x spacing) and origin from it. The volume is (nz, ny, nx) in array-axis
  order (the last axis is DAMASK's x); a 2-D (ny, nx) map becomes one cell thick.
- ``material.yaml``: a ``homogenization`` section (default ``SX``: one constituent, mechanical
  type ``pass``), a ``phase`` section (one entry per phase, from ``phase_config``; an empty mapping
  where none is given, to be completed with lattice and mechanical properties before a DAMASK
  run), and a ``material`` list with **one entry per grain**, in grain order::

      - {homogenization: SX, constituents: [{phase: Ni, v: 1.0, O: [q0, q1, q2, q3]}]}

  ``O`` is the grain's unit quaternion, scalar first, P = -1, passive (sample to crystal), with
  q0 >= 0: the convention DAMASK uses, the same as ``jaxmicro.orientations``.

``read_damask`` reads back what ``write_damask`` writes (it parses that layout, it is not a
general YAML reader).

References:
    Roters et al., DAMASK - The Düsseldorf Advanced Material Simulation Kit, Comput. Mater. Sci.
    158 (2019) 420 (grid solver, material configuration); Rowenhorst et al., MSMSE 23 (2015)
    083501 (P = -1 quaternions, which DAMASK follows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._geometry import axis_values
from ._yaml import block
from .ebsd import quats_from_euler
from .vtk import read_vti, write_vti

_DEFAULT_HOMOGENIZATION = {"SX": {"N_constituents": 1, "mechanical": {"type": "pass"}}}
_ENTRY = re.compile(
    r"^\s*-\s*\{homogenization:\s*(?P<h>[^,]+),\s*constituents:\s*\[\{phase:\s*(?P<p>.+?),"
    r"\s*v:\s*(?P<v>[^,]+),\s*O:\s*\[(?P<o>[^\]]+)\]\}\]\}\s*$"
)


class DamaskGrid(NamedTuple):
    """What :func:`read_damask` returns.

    Attributes:
        material: (nz, ny, nx) int32 material (grain) index per cell.
        quats: (n_grains, 4) float64 orientations, scalar first, P = -1.
        phases: (n_grains,) phase name of each grain.
        spacing: (dz, dy, dx).
        origin: (oz, oy, ox).
    """

    material: np.ndarray
    quats: np.ndarray
    phases: tuple[str, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]


def _grain_quats(orientations) -> np.ndarray:
    """(n, 4) unit quaternions with q0 >= 0 from (n, 4) quaternions or (n, 3) Bunge angles."""
    o = np.asarray(orientations, dtype=np.float64)
    if o.ndim != 2 or o.shape[1] not in (3, 4):
        raise ValueError(
            f"orientations: expected (n_grains, 4) quaternions or (n_grains, 3) Euler angles, "
            f"got {o.shape}"
        )
    if not np.all(np.isfinite(o)):
        raise ValueError("orientations: contains non-finite values")
    q = np.asarray(quats_from_euler(o), dtype=np.float64) if o.shape[1] == 3 else o
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    if np.any(np.abs(norms - 1.0) > 1e-3):
        raise ValueError("orientations: quaternions must have unit norm (tolerance 1e-3)")
    # DAMASK checks unit norm to ~1e-8 and wants the q0 >= 0 representative.
    q = q / norms
    return np.where(q[:, :1] < 0, -q, q)


def write_damask(
    directory,
    feature_ids,
    orientations,
    phases,
    *,
    phase_names: Mapping[int, str] | None = None,
    phase_config: Mapping[str, Mapping] | None = None,
    homogenization: Mapping[str, Mapping] | None = None,
    spacing: float | Sequence[float] = 1.0,
    origin: float | Sequence[float] = 0.0,
    name: str = "grid",
) -> tuple[Path, Path]:
    """Writes a DAMASK grid (``<name>.vti``) and ``material.yaml`` with one material per grain.

    Args:
        directory: output directory (created if missing).
        feature_ids: (nz, ny, nx) or (ny, nx) integer grain ids in [0, n_grains).
        orientations: (n_grains, 4) unit quaternions (scalar first, P = -1) or (n_grains, 3)
            Bunge angles in radians, converted with ``jaxmicro.orientations.euler_to_quat``.
        phases: (n_grains,) integer phase of each grain.
        phase_names: phase integer -> name; default ``phase<p>``.
        phase_config: name -> DAMASK phase configuration (e.g. ``{'lattice': 'cF', ...}``);
            phases without one are written as empty mappings.
        homogenization: name -> configuration; default ``{'SX': {'N_constituents': 1,
            'mechanical': {'type': 'pass'}}}``. Every material uses the first one.
        spacing: cell size, scalar or per array axis (dz, dy, dx).
        origin: grid origin, scalar or per array axis.
        name: grid file stem.

    Returns:
        (grid path, material.yaml path).

    Raises:
        ValueError: mismatched grain counts, ids out of range, non-unit quaternions, a phase
            without a name, non-finite values.
    """
    ids = np.asarray(feature_ids)
    if ids.ndim not in (2, 3) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"feature_ids: expected a 2-D or 3-D integer array, got {ids.dtype} {ids.shape}"
        )
    quats = _grain_quats(orientations)
    phases = np.asarray(phases)
    if phases.shape != (len(quats),) or not np.issubdtype(phases.dtype, np.integer):
        raise ValueError(
            f"phases: expected ({len(quats)},) integers, one per grain, "
            f"got {phases.dtype} {phases.shape}"
        )
    if ids.size and (ids.min() < 0 or ids.max() >= len(quats)):
        raise ValueError(
            f"feature_ids: expected ids in [0, {len(quats)}), got [{ids.min()}, {ids.max()}]"
        )
    names = (
        dict(phase_names)
        if phase_names is not None
        else {int(p): f"phase{p}" for p in np.unique(phases)}
    )
    missing = sorted(set(np.unique(phases).tolist()) - set(names))
    if missing:
        raise ValueError(f"phase_names: no name for phases {missing}")
    homogenization = dict(homogenization or _DEFAULT_HOMOGENIZATION)
    h_name = next(iter(homogenization))
    phase_config = dict(phase_config or {})
    used = list(dict.fromkeys(names[int(p)] for p in phases))

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if ids.ndim == 2:
        ids = ids[None]
        spacing = (1.0, *axis_values(spacing, "spacing", 2))
        origin = (0.0, *axis_values(origin, "origin", 2))
    grid_path = directory / f"{name}.vti"
    write_vti(grid_path, {"material": ids.astype(np.int32)}, spacing=spacing, origin=origin, ndim=3)

    materials = [
        {
            "homogenization": h_name,
            "constituents": [{"phase": names[int(p)], "v": 1.0, "O": [float(c) for c in q]}],
        }
        for q, p in zip(quats, phases, strict=True)
    ]
    config = {
        "homogenization": homogenization,
        "phase": {phase: dict(phase_config.get(phase, {})) for phase in used},
        "material": materials,
    }
    header = [
        "# DAMASK material configuration written by jaxmicro.io.write_damask.",
        "# One material per grain (index = grid 'material' value); O = unit quaternion",
        "# (q0, q1, q2, q3), scalar first, P = -1, passive sample -> crystal, q0 >= 0.",
        "# Empty phase entries must be completed (lattice, mechanical) before a DAMASK run.",
    ]
    yaml_path = directory / "material.yaml"
    yaml_path.write_text("\n".join(header + block(config)) + "\n", encoding="utf-8")
    return grid_path, yaml_path


def read_damask(directory, *, name: str = "grid") -> DamaskGrid:
    """Reads a grid and material list written by :func:`write_damask`.

    Args:
        directory: the directory given to ``write_damask``.
        name: grid file stem.

    Returns:
        :class:`DamaskGrid`.

    Raises:
        ValueError: a material entry not in the layout ``write_damask`` writes, or no
            ``material`` cell array.
    """
    directory = Path(directory)
    grid = read_vti(directory / f"{name}.vti")
    if "material" not in grid.fields:
        raise ValueError(f"{directory / f'{name}.vti'}: no 'material' cell array")
    quats, phases = [], []
    lines = (directory / "material.yaml").read_text(encoding="utf-8").split("\n")
    start = lines.index("material:") + 1 if "material:" in lines else len(lines)
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        match = _ENTRY.match(line)
        if match is None:
            raise ValueError(
                f"{directory / 'material.yaml'}:{number}: not a write_damask material entry"
            )
        phase = match.group("p").strip()
        phases.append(json.loads(phase) if phase.startswith('"') else phase)
        quats.append([float(c) for c in match.group("o").split(",")])
    return DamaskGrid(
        material=grid.fields["material"],
        quats=np.asarray(quats, dtype=np.float64).reshape(-1, 4),
        phases=tuple(phases),
        spacing=grid.spacing,
        origin=grid.origin,
    )
