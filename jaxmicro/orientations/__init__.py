"""Crystal orientations: quaternions, Bunge Euler angles, rotation matrices and crystal symmetry.

Conventions (stated once, used by the whole package):

- **Bunge Euler angles** ``(phi1, Phi, phi2)`` in radians: rotate about z by phi1, about the new
  x by Phi, about the new z by phi2. Returned angles lie in ``[0, 2 pi) x [0, pi] x [0, 2 pi)``.
- **Passive rotations.** The matrix ``g`` maps sample-frame components to crystal-frame
  components, ``v_crystal = g @ v_sample``; ``g = R_z(phi2) R_x(Phi) R_z(phi1)`` with
  ``R_z(a) = [[cos a, sin a, 0], [-sin a, cos a, 0], [0, 0, 1]]``.
- **Quaternions** are scalar first, ``(q0, q1, q2, q3)``, with P = -1 (Rowenhorst et al. 2015,
  Modelling Simul. Mater. Sci. Eng. 23 083501; DAMASK's convention). The axis-angle pair
  ``(n, w)`` is ``(cos w/2, n sin w/2)``, a passive rotation by w about n. Functions that create
  quaternions return q0 >= 0; ``q`` and ``-q`` are the same rotation everywhere. orix stores the
  conjugate of this tuple for the same matrix.
- **Products** use the P = -1 cross-product sign, so matrices compose in the same order:
  ``g(a * b) = g(a) g(b)`` (``b`` first, then ``a``).
- **Crystal symmetry** acts on the left, ``g -> S g``, i.e. ``q -> s * q``; sample symmetry
  would act on the right, ``q -> q * r``. The misorientation of ``q1`` to ``q2`` is
  ``q2 * conj(q1)`` (``g2 g1^T``).
- **Arrays:** the component axis is last (``(..., 4)``, ``(..., 3)``, ``(..., 3, 3)``), any
  leading shape; the input dtype is preserved (float32 stays float32).
- **Validation** at the public boundary raises ``ValueError`` naming the argument for: wrong
  trailing size, unknown symmetry name, NaN/inf, quaternion norms off 1 by more than
  ``UNIT_NORM_ATOL`` = 1e-3 (within that tolerance inputs are used as given; angle-type results
  do not depend on the norm). Value checks need concrete arrays: inside ``jit``/``vmap``/``grad``
  they are skipped and invalid values propagate as NaN or unnormalized results, unless the
  transformed function is wrapped in ``jaxmicro.checks.checked`` (the checks then run on device
  as ``checkify`` checks and raise the same ``ValueError``). Symmetry names are static: jit with
  ``static_argnames="symmetry"``.
- Everything is a pure, jittable, vmappable JAX function, differentiable wherever the map is
  smooth (see each function for its singular points).
"""

from jaxmicro.orientations.ipf import IPF_SYMMETRIES, ipf_color
from jaxmicro.orientations.quaternion import (
    UNIT_NORM_ATOL,
    axis_angle_to_quat,
    euler_to_quat,
    matrix_to_quat,
    quat_angle,
    quat_conjugate,
    quat_multiply,
    quat_rotate,
    quat_to_euler,
    quat_to_matrix,
    random_quats,
)
from jaxmicro.orientations.symmetry import (
    SYMMETRIES,
    check_symmetry,
    misorientation_angle,
    symmetry_quats,
    to_fundamental_zone,
)

__all__ = [
    "IPF_SYMMETRIES",
    "SYMMETRIES",
    "UNIT_NORM_ATOL",
    "axis_angle_to_quat",
    "check_symmetry",
    "euler_to_quat",
    "ipf_color",
    "matrix_to_quat",
    "misorientation_angle",
    "quat_angle",
    "quat_conjugate",
    "quat_multiply",
    "quat_rotate",
    "quat_to_euler",
    "quat_to_matrix",
    "random_quats",
    "symmetry_quats",
    "to_fundamental_zone",
]
