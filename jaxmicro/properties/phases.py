"""Local properties of soft phase fields: the rule that maps phase fractions to a modulus.

MCR and the samplers produce phase fields with soft values: one channel in [0, 1] for two phases,
or ``P`` channels of phase probabilities. A voxel's modulus is the linear (Voigt-type) mixture of
the phase moduli, ``L(x) = sum_p phi_p(x) L_p``: exact for one-hot fields, affine and hence
smooth in the field, and positive definite whenever every ``L_p`` is and the fractions are
non-negative. It is a rule for soft voxels, not a homogenization of them (for that, solve a finer
cell).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmicro import _validate


def mix_phases(phases, moduli) -> jax.Array:
    """Local modulus of a soft phase field by linear mixing of the phase moduli.

    Args:
        phases: ``(*spatial, P)`` phase fractions (one-hot or probabilities summing to 1), or
          ``(*spatial, 1)`` the fraction ``m`` of phase 1 in a two-phase field (phase 0 gets
          ``1 - m``). Values in [0, 1] (checked on concrete input).
        moduli: ``(P, ...)`` one modulus per phase (``P = 2`` for a one-channel field): scalars
          ``(P,)``, conductivity tensors ``(P, d, d)`` or stiffness ``(P, 6, 6)``.

    Returns:
        ``(*spatial, ...)``, ``sum_p phi_p(x) moduli[p]``, in the promoted dtype.
    """
    phases = _validate.as_float_array(phases, "phases")
    moduli = _validate.as_float_array(moduli, "moduli")
    _validate.check_ndim(phases, "phases", (3, 4), "(*spatial, P) with 2 or 3 spatial axes")
    _validate.check_range(phases, "phases", 0.0, 1.0)
    if phases.shape[-1] == 1:
        phases = jnp.concatenate([1 - phases, phases], axis=-1)
    if moduli.ndim < 1 or moduli.shape[0] != phases.shape[-1]:
        raise ValueError(
            f"moduli: expected a leading axis of {phases.shape[-1]} (one per phase), "
            f"got shape {moduli.shape}"
        )
    _validate.check_finite(moduli, "moduli")
    return jnp.tensordot(phases, moduli, axes=1)
