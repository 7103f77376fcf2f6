"""Effective stiffness of periodic cells (linear elasticity, small strains).

The field is the strain ``eps = E + sym grad u`` with a periodic displacement fluctuation ``u``;
the stress is ``sigma = C(x) eps``; equilibrium is ``div sigma = 0``. The effective stiffness maps
mean strains to mean stresses, ``<sigma> = C_eff E``. Solved by the FFT Lippmann-Schwinger scheme
with conjugate gradients of ``jaxmicro.properties.solver``, on Mandel vectors
(``jaxmicro.properties.stiffness``).

2D cells are in **plane strain**: ``u = (u1(x1, x2), u2(x1, x2))``, ``u3 = 0`` and
``E_i3 = 0``; only the in-plane block of ``C`` (Mandel components ``(11, 22, 12)``) enters, and
the result is the ``3 x 3`` in-plane effective stiffness. For local stiffness that couples
in-plane strains to out-of-plane shear stresses (a generally rotated crystal), this constraint
suppresses the anti-plane displacement ``u3(x1, x2)`` that an extruded 3D cell could develop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.properties import solver

PLANE_STRAIN_COMPONENTS = (0, 1, 5)
"""Mandel components ``(11, 22, 12)`` of a 6-vector kept by 2D (plane strain) cells."""


def effective_stiffness(C, *, tol: float = 1e-6, maxiter: int = 1000) -> jax.Array:
    """Effective stiffness of a periodic cell, in Mandel notation.

    Args:
        C: local stiffness in Mandel notation (``(11, 22, 33, sqrt2 23, sqrt2 13, sqrt2 12)``,
          see ``jaxmicro.properties.stiffness``), symmetric positive definite per voxel:
          ``(n1, n2, n3, 6, 6)`` in 3D; in 2D (plane strain) ``(n1, n2, 6, 6)``, of which the
          ``(11, 22, 12)`` block is used, or that block ``(n1, n2, 3, 3)`` directly. Cubic voxels.
          Batches: ``jax.vmap``.
        tol: relative residual of the CG solves; float32 fields reach about 1e-6.
        maxiter: CG iteration limit per load.

    Returns:
        ``C_eff`` ``(6, 6)`` in 3D, ``(3, 3)`` in 2D (Mandel ``(11, 22, 12)``), symmetric, in the
        dtype of ``C``, with ``<sigma> = C_eff <eps>``.

    Raises:
        ConvergenceError: a plain (eager) call whose solve did not converge. Under ``jit``,
          ``vmap`` or ``grad`` the check is skipped: read convergence from
          ``effective_stiffness_with_info``.

    References:
        Moulinec & Suquet 1998 (Lippmann-Schwinger scheme, eqs. (9)-(11)); Zeman et al. 2010
        (conjugate gradients).
    """
    C = _checked_stiffness(C)
    out, info = _effective_stiffness(C, tol, maxiter)
    solver.check_converged(info, tol, maxiter, "effective_stiffness")
    return out


def effective_stiffness_with_info(
    C, *, tol: float = 1e-6, maxiter: int = 1000
) -> tuple[jax.Array, solver.SolveInfo]:
    """``effective_stiffness`` and the ``SolveInfo`` of its 3 (2D) or 6 (3D) solves; never raises
    on non-convergence (for use under ``jit``)."""
    C = _checked_stiffness(C)
    return _effective_stiffness(C, tol, maxiter)


@jax.jit
def _effective_stiffness(C, tol, maxiter):
    shape = C.shape[:-2]
    if len(shape) == 2 and C.shape[-1] == 6:
        idx = np.array(PLANE_STRAIN_COMPONENTS)
        C = C[..., idx[:, None], idx[None, :]]
    ncomp = C.shape[-1]

    def apply_local(eps):
        return jnp.einsum("...ij,...j->...i", C, eps)

    return solver.effective_modulus(apply_local, "symmetric", shape, ncomp, C.dtype, tol, maxiter)


def _checked_stiffness(C) -> jax.Array:
    C = _validate.as_float_array(C, "C")
    _validate.check_ndim(C, "C", (4, 5), "(*spatial, 6, 6) with 2 or 3 spatial axes")
    allowed = ((6, 6), (3, 3)) if C.ndim == 4 else ((6, 6),)
    if C.shape[-2:] not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(
            f"C: a field with {C.ndim - 2} spatial axes needs trailing axes {want}, "
            f"got shape {C.shape}"
        )
    _validate.check_finite(C, "C")
    if _validate.is_concrete(C) and C.size:
        a = np.asarray(C)
        asym = np.abs(a - np.swapaxes(a, -1, -2)).max()
        if asym > 1e-6 * np.abs(a).max():
            raise ValueError(
                f"C: stiffness matrices must be symmetric, largest asymmetry {asym:.3g}"
            )
        diag = np.diagonal(a, axis1=-2, axis2=-1)
        if diag.min() <= 0:
            raise ValueError(
                f"C: stiffness must be positive definite, got a diagonal entry {diag.min():.4g}"
            )
    return C
