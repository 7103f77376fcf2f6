"""Effective conductivity of periodic cells (thermal, electrical or diffusive).

The field is the gradient ``e`` of a periodic potential fluctuation plus a mean ``E``; the flux is
``j = k(x) e``; equilibrium is ``div j = 0``. The effective tensor maps mean gradients to mean
fluxes, ``<j> = K E``. Solved by the FFT Lippmann-Schwinger scheme with conjugate gradients of
``jaxmicro.properties.solver``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.orientations import quat_to_matrix
from jaxmicro.properties import solver


def effective_conductivity(k, *, tol: float = 1e-6, maxiter: int = 1000) -> jax.Array:
    """Effective conductivity tensor of a periodic cell.

    Args:
        k: local conductivity, isotropic ``(*spatial)`` (positive) or a tensor ``(*spatial, d, d)``
          (symmetric positive definite), with ``d = len(spatial)`` in {2, 3} spatial axes of cubic
          voxels. Batches: ``jax.vmap``.
        tol: relative residual of the CG solves (see ``solver``); float32 fields reach about 1e-6.
        maxiter: CG iteration limit per load.

    Returns:
        ``K`` ``(d, d)``, symmetric, in the dtype of ``k``, such that ``<j> = K <e>``.

    Raises:
        ConvergenceError: a plain (eager) call whose solve did not converge. Under ``jit``,
          ``vmap`` or ``grad`` the check is skipped and the last iterate is used: read
          convergence from ``effective_conductivity_with_info``.

    References:
        Moulinec & Suquet 1998 (Lippmann-Schwinger scheme, eqs. (9)-(11)); Zeman et al. 2010
        (conjugate gradients).
    """
    k = _checked_conductivity(k)
    out, info = _effective_conductivity(k, tol, maxiter)
    solver.check_converged(info, tol, maxiter, "effective_conductivity")
    return out


def effective_conductivity_with_info(
    k, *, tol: float = 1e-6, maxiter: int = 1000
) -> tuple[jax.Array, solver.SolveInfo]:
    """``effective_conductivity`` and the ``SolveInfo`` of its ``d`` solves; never raises on
    non-convergence (for use under ``jit``)."""
    k = _checked_conductivity(k)
    return _effective_conductivity(k, tol, maxiter)


def rotate_conductivity(k_crystal, q) -> jax.Array:
    """Conductivity tensors of crystals with orientations ``q``, in the sample frame.

    With the passive ``g = quat_to_matrix(q)`` (sample -> crystal components), a gradient has
    crystal components ``g e`` and the sample-frame tensor is ``g^T k_crystal g``.

    Args:
        k_crystal: crystal-frame tensors ``(..., 3, 3)``.
        q: unit quaternions ``(..., 4)`` (package conventions), broadcastable against
          ``k_crystal``'s leading shape.

    Returns:
        ``(..., 3, 3)``.
    """
    k_crystal = _validate.as_float_array(k_crystal, "k_crystal")
    _validate.check_trailing(k_crystal, "k_crystal", 3)
    g = quat_to_matrix(q)
    return jnp.einsum("...ki,...kl,...lj->...ij", g, k_crystal, g)


@jax.jit
def _effective_conductivity(k, tol, maxiter):
    scalar = k.ndim in (2, 3)
    shape = k.shape if scalar else k.shape[:-2]
    d = len(shape)

    def apply_local(e):
        return k[..., None] * e if scalar else jnp.einsum("...ij,...j->...i", k, e)

    return solver.effective_modulus(apply_local, "vector", shape, d, k.dtype, tol, maxiter)


def _checked_conductivity(k) -> jax.Array:
    k = _validate.as_float_array(k, "k")
    _validate.check_ndim(k, "k", (2, 3, 4, 5), "(*spatial) or (*spatial, d, d), d = 2 or 3")
    if k.ndim in (4, 5):
        d = k.ndim - 2
        if k.shape[-2:] != (d, d):
            raise ValueError(
                f"k: a tensor field with {d} spatial axes needs trailing axes ({d}, {d}), "
                f"got shape {k.shape}"
            )
    _validate.check_finite(k, "k")
    if _validate.is_concrete(k) and k.size:
        a = np.asarray(k)
        if k.ndim in (2, 3):
            if a.min() <= 0:
                raise ValueError(f"k: conductivities must be positive, got min {a.min():.4g}")
        else:
            asym = np.abs(a - np.swapaxes(a, -1, -2)).max()
            if asym > 1e-6 * np.abs(a).max():
                raise ValueError(f"k: tensors must be symmetric, largest asymmetry {asym:.3g}")
            diag = np.diagonal(a, axis1=-2, axis2=-1)
            if diag.min() <= 0:
                raise ValueError(
                    f"k: tensors must be positive definite, got a diagonal entry {diag.min():.4g}"
                )
    return k
