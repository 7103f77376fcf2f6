"""EBSD maps: the record that the .ang and .ctf readers return and the writers take.

An :class:`EBSDMap` is one square-grid orientation map held as host (NumPy) arrays indexed
``[row, column]`` = ``[y, x]``: row ``i`` holds the points of the i-th scan line, column ``j`` the
j-th point along it, as the vendors store them (x runs fastest in the files).

Conventions, stated once:

- ``euler`` holds Bunge angles (phi1, Phi, phi2) in **radians**, exactly the angles the file
  holds (.ang stores radians; .ctf stores degrees, which are converted and nothing else).
- **No reference-frame correction is applied.** TSL/EDAX and Oxford/HKL refer their Euler angles
  to sample frames that differ from the frame of the x, y map coordinates and from each other, and
  they align hexagonal and trigonal crystal frames differently (a or a* along x). DREAM3D, for
  instance, rotates TSL Euler frames by 90 degrees about [001] and Oxford sample frames by 180
  degrees about [010] after import. Apply the correction your analysis needs yourself; the readers
  never rotate silently, and a written file holds the angles it was given.
- ``quats`` = ``jaxmicro.orientations.euler_to_quat(euler)``: scalar first, P = -1, passive
  (sample frame to crystal frame), not reduced to a fundamental zone.
- ``phase`` is the file's phase column as stored. In .ctf files 0 means "not indexed" and phases
  count from 1. Older TSL single-phase files store 0 for the one phase in the header.

References:
    Rowenhorst et al., Consistent representations of and conversions between 3D rotations,
    Modelling Simul. Mater. Sci. Eng. 23 (2015) 083501 (conventions, P = -1).
    BlueQuartz EbsdLib, AngConstants.h / CtfPhase.cpp (TSL symmetry codes, Oxford Laue-group
    numbers).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import NamedTuple

import jax
import numpy as np

from jaxmicro.orientations import SYMMETRIES as SYMMETRIES  # the one list, re-exported
from jaxmicro.orientations import check_symmetry, euler_to_quat

# The eleven Laue classes, Hermann-Mauguin symbols; Oxford .ctf numbers them 1..11 in this order.
LAUE_GROUPS = ("-1", "2/m", "mmm", "4/m", "4/mmm", "-3", "-3m", "6/m", "6/mmm", "m-3", "m-3m")

# TSL/EDAX .ang "Symmetry" codes. Monoclinic has three codes for the unique axis (c, b, a).
ANG_SYMMETRY_CODES = {
    1: "-1",
    2: "2/m",
    20: "2/m",
    21: "2/m",
    22: "mmm",
    4: "4/m",
    42: "4/mmm",
    3: "-3",
    32: "-3m",
    6: "6/m",
    62: "6/mmm",
    23: "m-3",
    43: "m-3m",
}

# jaxmicro.orientations symmetry names are the rotation groups of the holohedral Laue classes. The
# four lower Laue classes (4/m, -3, 6/m, m-3) have smaller rotation groups that have no name there:
# they map to None rather than to a larger group, which would merge distinct orientations.
_SYMMETRY_OF_LAUE = {
    "m-3m": "cubic",
    "6/mmm": "hexagonal",
    "4/mmm": "tetragonal",
    "-3m": "trigonal",
    "mmm": "orthorhombic",
    "2/m": "monoclinic",
    "-1": "triclinic",
}
_LAUE_OF_SYMMETRY = {sym: laue for laue, sym in _SYMMETRY_OF_LAUE.items()}


class EBSDFormatError(ValueError):
    """A malformed .ang or .ctf file; the message starts with ``path:line:``.

    Attributes:
        path: the file name as given.
        line: 1-based line number of the offending line (None when no single line is at fault).
    """

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


class Phase(NamedTuple):
    """One crystallographic phase of a map's header.

    Attributes:
        name: material name.
        laue_group: Hermann-Mauguin symbol of the Laue class, one of ``LAUE_GROUPS``.
        lattice: (a, b, c, alpha, beta, gamma); lengths as in the file (Angstrom), angles in
            degrees.
        formula: chemical formula (.ang only; '' when absent).
        space_group: space-group number (.ctf only; 0 when absent).
    """

    name: str
    laue_group: str
    lattice: tuple[float, float, float, float, float, float]
    formula: str = ""
    space_group: int = 0

    @property
    def symmetry(self) -> str | None:
        """The ``jaxmicro.orientations`` symmetry name, or None where no named group matches.

        None for the lower Laue classes (4/m, -3, 6/m, m-3), and for 2/m when the lattice angles
        make a or c the unique axis (alpha or gamma not 90 degrees): 'monoclinic' has its 2-fold
        axis along y (unique axis b).
        """
        alpha, beta, gamma = self.lattice[3:]
        if self.laue_group == "2/m" and (alpha != 90 or gamma != 90) and beta == 90:
            return None
        return _SYMMETRY_OF_LAUE.get(self.laue_group)

    @classmethod
    def from_symmetry(
        cls,
        name: str,
        symmetry: str,
        lattice: tuple[float, ...] = (1.0, 1.0, 1.0, 90.0, 90.0, 90.0),
    ) -> Phase:
        """A phase of the holohedral Laue class of ``symmetry`` (e.g. 'cubic' -> 'm-3m')."""
        check_symmetry(symmetry)
        return cls(name, _LAUE_OF_SYMMETRY[symmetry], tuple(float(v) for v in lattice))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def quats_from_euler(euler: np.ndarray) -> np.ndarray:
    """float64 quaternions (..., 4) of Bunge angles (..., 3) through ``jaxmicro.orientations``.

    Files hold more digits than float32 keeps, so the conversion runs in float64 whatever the
    session's ``jax_enable_x64`` setting.
    """
    with jax.enable_x64(True):
        return np.asarray(euler_to_quat(np.asarray(euler, dtype=np.float64)))


@dataclasses.dataclass(frozen=True, eq=False)
class EBSDMap:
    """A square-grid EBSD map; arrays are read-only copies, validated on construction.

    Attributes:
        euler: (ny, nx, 3) Bunge angles in radians, as stored in the file.
        quats: (ny, nx, 4) float64 unit quaternions of ``euler`` (scalar first, P = -1, q0 >= 0).
        phase: (ny, nx) integer phase column, as stored.
        xy: (ny, nx, 2) map coordinates (x, y) in the file's length unit (usually micrometres).
        step: (dx, dy) grid steps in the same unit.
        phases: phase number -> :class:`Phase`, from the header.
        quality: name -> (ny, nx) per-point quality columns: .ang 'IQ', 'CI', 'SEM', 'Fit';
            .ctf 'Bands', 'Error', 'MAD', 'BC', 'BS' (plus any further columns, by name).
        header: other header items, key -> value text, kept for reference.
    """

    euler: np.ndarray
    quats: np.ndarray
    phase: np.ndarray
    xy: np.ndarray
    step: tuple[float, float]
    phases: Mapping[int, Phase]
    quality: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    header: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        euler = np.asarray(self.euler)
        if euler.ndim != 3 or euler.shape[-1] != 3:
            raise ValueError(f"euler: expected shape (ny, nx, 3), got {euler.shape}")
        shape = euler.shape[:2]
        expected = {"quats": (*shape, 4), "phase": shape, "xy": (*shape, 2)}
        for name, want in expected.items():
            got = np.shape(getattr(self, name))
            if got != want:
                raise ValueError(f"{name}: expected shape {want} to match euler, got {got}")
        if not np.issubdtype(np.asarray(self.phase).dtype, np.integer):
            raise ValueError(
                f"phase: expected an integer array, got {np.asarray(self.phase).dtype}"
            )
        step = tuple(float(s) for s in self.step)
        if len(step) != 2 or not all(np.isfinite(s) and s > 0 for s in step):
            raise ValueError(f"step: expected two positive steps (dx, dy), got {self.step}")
        for name, values in self.quality.items():
            if np.shape(values) != shape:
                raise ValueError(
                    f"quality[{name!r}]: expected shape {shape}, got {np.shape(values)}"
                )
        for number, phase in self.phases.items():
            if not isinstance(phase, Phase) or phase.laue_group not in LAUE_GROUPS:
                raise ValueError(f"phases[{number}]: expected a Phase with a known Laue group")
        setattr_ = object.__setattr__
        for name in ("euler", "quats", "phase", "xy"):
            setattr_(self, name, _readonly(getattr(self, name)))
        setattr_(self, "step", step)
        setattr_(
            self, "phases", types.MappingProxyType({int(k): v for k, v in self.phases.items()})
        )
        setattr_(
            self,
            "quality",
            types.MappingProxyType({str(k): _readonly(v) for k, v in self.quality.items()}),
        )
        setattr_(
            self, "header", types.MappingProxyType({str(k): str(v) for k, v in self.header.items()})
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx): rows and columns of the grid."""
        return self.phase.shape

    @classmethod
    def from_euler(
        cls,
        euler,
        phase,
        *,
        phases: Mapping[int, Phase],
        step: tuple[float, float] = (1.0, 1.0),
        quality: Mapping[str, np.ndarray] | None = None,
        xy=None,
        header: Mapping[str, str] | None = None,
    ) -> EBSDMap:
        """Builds a map from Euler angles, e.g. to write a synthetic microstructure.

        Args:
            euler: (ny, nx, 3) Bunge angles in radians.
            phase: (ny, nx) integer phase numbers (keys of ``phases``, or 0).
            phases: phase number -> :class:`Phase`.
            step: (dx, dy) grid steps.
            quality: optional per-point quality columns, each (ny, nx).
            xy: optional (ny, nx, 2) coordinates; default ``x = j dx``, ``y = i dy``.
            header: optional extra header items.

        Returns:
            The validated map, with ``quats`` computed by ``euler_to_quat``.
        """
        euler = np.asarray(euler, dtype=np.float64)
        if euler.ndim != 3 or euler.shape[-1] != 3:
            raise ValueError(f"euler: expected shape (ny, nx, 3), got {euler.shape}")
        if not np.all(np.isfinite(euler)):
            raise ValueError("euler: contains non-finite values")
        if xy is None:
            ny, nx = euler.shape[:2]
            jj, ii = np.meshgrid(np.arange(nx), np.arange(ny))
            xy = np.stack([jj * float(step[0]), ii * float(step[1])], axis=-1)
        return cls(
            euler=euler,
            quats=quats_from_euler(euler),
            phase=np.asarray(phase),
            xy=np.asarray(xy, dtype=np.float64),
            step=step,
            phases=phases,
            quality=dict(quality or {}),
            header=dict(header or {}),
        )
