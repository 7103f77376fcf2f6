"""File formats: EBSD maps in (.ang, .ctf), volumes out (VTK .vti, DREAM.3D, DAMASK), .npz archives.

Host code (NumPy), not JAX kernels. Conventions: Bunge Euler angles in radians, quaternions scalar
first with P = -1 (through ``jaxmicro.orientations``); volumes in array-axis order (nz, ny, nx),
the last axis being x, with ``spacing``/``origin`` given per array axis. EBSD readers never rotate
reference frames (see ``jaxmicro.io.ebsd``).
"""

from ._array import load_npy
from .ang import read_ang, write_ang
from .ctf import read_ctf, write_ctf
from .damask import DamaskGrid, read_damask, write_damask
from .dream3d import Dream3DVolume, read_dream3d, write_dream3d
from .ebsd import LAUE_GROUPS, EBSDFormatError, EBSDMap, Phase
from .npz import load_npz, save_npz
from .vtk import VTIData, read_vti, write_vti

__all__ = [
    "LAUE_GROUPS",
    "DamaskGrid",
    "Dream3DVolume",
    "EBSDFormatError",
    "EBSDMap",
    "Phase",
    "VTIData",
    "load_npy",
    "load_npz",
    "read_ang",
    "read_ctf",
    "read_damask",
    "read_dream3d",
    "read_vti",
    "save_npz",
    "write_ang",
    "write_ctf",
    "write_damask",
    "write_dream3d",
    "write_vti",
]
