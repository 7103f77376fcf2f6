"""Effective properties of periodic microstructures by differentiable FFT homogenization.

A periodic cell of voxels with local moduli (conductivity or stiffness) is loaded by a mean
field; the Lippmann-Schwinger equation with the Moulinec-Suquet Green operator is solved by
conjugate gradients, and the effective modulus is the energy average over unit loads. Every
function is a pure JAX function: ``jit``, ``vmap`` over a batch of cells, ``grad`` with respect to
the local field (implicit differentiation of the converged solve: one more CG solve per load, with
memory independent of the iteration count), and sharding over a ``'batch'`` mesh axis by
``shard_map`` of the vmapped function.

- ``green``: Fourier projections onto compatible fields (the Green operators).
- ``solver``: CG, its implicit derivative, ``SolveInfo`` and ``ConvergenceError``.
- ``conductivity``: ``effective_conductivity`` (2D/3D, isotropic or tensor voxels),
  ``rotate_conductivity``.
- ``elasticity``: ``effective_stiffness`` (3D; 2D in plane strain).
- ``stiffness``: Mandel notation, ``isotropic_stiffness``, ``cubic_stiffness``,
  ``hexagonal_stiffness``, ``rotate_stiffness`` (orientation fields of quaternions).
- ``phases``: ``mix_phases`` (soft phase fields -> local moduli, linear mixing).

Conventions: spatial axes first, tensor axes last; voxels are unit cubes; Mandel notation
``(11, 22, 33, sqrt2 23, sqrt2 13, sqrt2 12)`` for stiffness (2D: ``(11, 22, sqrt2 12)``);
orientations as in ``jaxmicro.orientations`` (passive ``g``, sample -> crystal). Plain calls
validate their arguments, run one jitted kernel and raise ``ConvergenceError`` if CG did not
converge; the ``*_with_info`` variants return ``(result, SolveInfo)`` and never raise on
convergence, for use inside ``jit``. Equations and measured costs: docs/properties.md.
"""

from jaxmicro.properties.conductivity import (
    effective_conductivity,
    effective_conductivity_with_info,
    rotate_conductivity,
)
from jaxmicro.properties.elasticity import effective_stiffness, effective_stiffness_with_info
from jaxmicro.properties.phases import mix_phases
from jaxmicro.properties.solver import ConvergenceError, SolveInfo
from jaxmicro.properties.stiffness import (
    cubic_stiffness,
    hexagonal_stiffness,
    isotropic_stiffness,
    mandel_rotation,
    mandel_to_voigt,
    rotate_stiffness,
    voigt_to_mandel,
)

__all__ = [
    "ConvergenceError",
    "SolveInfo",
    "cubic_stiffness",
    "effective_conductivity",
    "effective_conductivity_with_info",
    "effective_stiffness",
    "effective_stiffness_with_info",
    "hexagonal_stiffness",
    "isotropic_stiffness",
    "mandel_rotation",
    "mandel_to_voigt",
    "mix_phases",
    "rotate_conductivity",
    "rotate_stiffness",
    "voigt_to_mandel",
]
