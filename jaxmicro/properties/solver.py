"""The Lippmann-Schwinger solve shared by every property: conjugate gradients, differentiated
implicitly.

A periodic cell with local modulus ``L(x)`` (a conductivity or a stiffness, acting on the field
``e``: temperature gradient or strain) is loaded by a mean field ``E``. With ``e = E + e~`` and
``e~`` compatible with zero mean, the Lippmann-Schwinger equation with the Green operator
``Gamma0`` of a reference medium ``L0``,

    e + Gamma0 (L - L0) e = E,

reduces (because ``Gamma0 L0 e~ = e~`` and ``Gamma0 E = 0``) to the equilibrium condition
``Gamma0 L e = 0``, i.e. the linear system

    A e~ = b,    A e~ = G (L G e~),    b = -G (L E),

with ``G`` the orthogonal projection onto compatible fields (``jaxmicro.properties.green``). On
compatible fields ``A`` is symmetric and positive definite, so it is solved by conjugate gradients
(the accelerated scheme of Zeman et al. 2010, who show that CG on the Lippmann-Schwinger equation
needs no choice of reference medium; the Galerkin reading is Vondrejc et al. 2014). CG starts from
``e~ = 0`` and runs on compatible half spectra (``rfftn`` of the fields, inner products with
Parseval weights), where both projections of ``G L G`` are pointwise: one iteration costs one
``irfftn`` and one ``rfftn`` of the field plus pointwise products. The effective modulus is the
energy average

    L_eff[a, b] = mean_x e_a(x) . L(x) e_b(x),

over the unit loads ``E = e_a``: exactly symmetric, and its error is quadratic in the residual.

Gradients. The solve is wrapped in ``jax.lax.custom_linear_solve`` (``symmetric=True``): the
derivative of ``e~`` is one more CG solve with ``A`` (forward or adjoint), never a
differentiation of the iterations, so memory does not depend on the iteration count. The
right-hand side of every solve is projected first, so that adjoint right-hand sides (which are
not compatible) are solved on compatible fields, where ``A`` is invertible.

Convergence. CG stops when ``||r|| <= tol ||b||`` (relative residual of the projected
equilibrium equation) or after ``maxiter`` iterations. ``SolveInfo`` reports both per load.

References: H. Moulinec, P. Suquet, Comput. Methods Appl. Mech. Engrg. 157 (1998) 69-94, eq. (9)
(Lippmann-Schwinger); J. Zeman, J. Vondrejc, J. Novak, I. Marek, Accelerating a FFT-based solver
for numerical homogenization of periodic media by conjugate gradients, J. Comput. Phys. 229 (2010)
8065-8071; J. Vondrejc, J. Zeman, I. Marek, An FFT-based Galerkin method for homogenization of
periodic media, Comput. Math. Appl. 68 (2014) 156-173.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.properties import green


class SolveInfo(NamedTuple):
    """Convergence of the CG solves, one entry per unit load (column of the effective tensor).

    Attributes:
        iterations: CG iterations, int32 ``(L,)``.
        residual: final relative residual ``||r|| / ||b||`` ``(L,)`` (0 where ``b = 0``, i.e. the
          load needs no fluctuation, as in a homogeneous cell).
        converged: ``residual <= tol``, bool ``(L,)``.
    """

    iterations: jax.Array
    residual: jax.Array
    converged: jax.Array


class ConvergenceError(RuntimeError):
    """Raised by an eager call whose CG solve did not reach ``tol`` within ``maxiter``."""


def conjugate_gradients(matvec: Callable, b: jax.Array, tol, maxiter, dot: Callable):
    """Unpreconditioned CG for ``matvec(x) = b`` from ``x = 0`` (``lax.while_loop``).

    ``dot(a, b)`` is the real inner product of the space (here: of half spectra, with Parseval
    weights). Returns ``(x, (iterations, relative_residual))``.
    """
    bb = dot(b, b)
    threshold = jnp.asarray(tol, bb.dtype) ** 2 * bb

    def cond(state):
        _, _, _, rr, i = state
        return (i < maxiter) & (rr > threshold)

    def body(state):
        x, r, p, rr, i = state
        ap = matvec(p)
        alpha = rr / dot(p, ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = dot(r, r)
        p = r + (rr_new / rr) * p
        return x, r, p, rr_new, i + 1

    init = (jnp.zeros_like(b), b, b, bb, jnp.zeros((), jnp.int32))
    x, _, _, rr, iterations = jax.lax.while_loop(cond, body, init)
    positive = bb > 0
    residual = jnp.where(positive, jnp.sqrt(rr / jnp.where(positive, bb, 1.0)), 0.0)
    return x, (iterations, residual)


def effective_modulus(apply_local: Callable, kind: str, shape, ncomp, dtype, tol, maxiter):
    """Effective modulus ``(c, c)`` and ``SolveInfo`` of a periodic cell (see module docstring).

    Args:
        apply_local: ``e -> L(x) e`` on fields ``(*shape, c)`` (closes over the local modulus).
        kind: ``"vector"`` or ``"symmetric"``, the fields' Green operator (``green``).
        shape: spatial shape.
        ncomp: ``c``, the number of field components (``d`` or the Mandel size).
        dtype: real dtype of the fields.
        tol: relative residual tolerance.
        maxiter: iteration limit per load.
    """
    tol = jnp.asarray(tol, dtype)
    axes = tuple(range(len(shape)))
    g_hat = green.fourier_projector(shape, dtype, kind)
    weights = green.rfft_weights(shape, dtype)

    def fft(f):
        return jnp.fft.rfftn(f, axes=axes)

    def ifft(f_hat):
        return jnp.fft.irfftn(f_hat, s=shape, axes=axes).astype(dtype)

    def matvec(x):
        # G L G: symmetric on all fields, for the derivative rules of custom_linear_solve.
        return ifft(g_hat(fft(apply_local(ifft(g_hat(fft(x)))))))

    def spectral_matvec(p_hat):
        # The CG vectors are compatible half spectra; projecting p before L (cheap here) keeps
        # round-off outside the compatible subspace from entering L (in float32 it would make
        # CG diverge), at one rfftn and one irfftn per iteration.
        return g_hat(fft(apply_local(ifft(g_hat(p_hat)))))

    def dot(a, b):
        return jnp.sum(weights * jnp.real(jnp.conj(a) * b))

    def solve(_, rhs):
        x_hat, aux = conjugate_gradients(spectral_matvec, g_hat(fft(rhs)), tol, maxiter, dot)
        return ifft(x_hat), aux

    def one_load(load):
        mean = jnp.broadcast_to(load, (*shape, ncomp))
        b = -ifft(g_hat(fft(apply_local(mean))))
        fluct, (iterations, residual) = jax.lax.custom_linear_solve(
            matvec, b, solve, symmetric=True, has_aux=True
        )
        return mean + fluct, iterations, residual

    fields, iterations, residual = jax.vmap(one_load)(jnp.eye(ncomp, dtype=dtype))
    fluxes = jax.vmap(apply_local)(fields)
    axes = tuple(range(1, len(shape) + 2))
    modulus = jnp.tensordot(fields, fluxes, axes=(axes, axes)) / np.prod(shape)
    modulus = 0.5 * (modulus + modulus.T)  # symmetric in exact arithmetic; make it so in floats
    iterations = jax.lax.stop_gradient(iterations)
    residual = jax.lax.stop_gradient(residual)
    return modulus, SolveInfo(iterations, residual, residual <= tol)


def check_converged(info: SolveInfo, tol, maxiter, name: str) -> None:
    """Raises ConvergenceError if a concrete ``info`` shows a load that did not converge."""
    if not (_validate.is_concrete(info.converged) and _validate.is_concrete(info.residual)):
        return
    converged = np.asarray(info.converged)
    if converged.all():
        return
    residual = np.asarray(info.residual)
    iterations = np.asarray(info.iterations)
    raise ConvergenceError(
        f"{name}: conjugate gradients did not reach tol={tol:g} within maxiter={maxiter} "
        f"(worst relative residual {residual.max():.3g} after {iterations.max()} iterations, "
        f"{converged.size - converged.sum()} of {converged.size} loads). Raise maxiter, loosen "
        "tol (float32 fields stall near 1e-6), or check that the local moduli are positive "
        "definite; the *_with_info variant returns the result with its SolveInfo instead."
    )
