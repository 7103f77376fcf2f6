"""Descriptor-based microstructure reconstruction (MCR) with the whole loop jitted.

- ``spec``: :class:`Spec`, :class:`Descriptor` / :func:`descriptor`, :func:`characterize` ->
  :class:`Target`, :func:`loss`, :func:`loss_terms`, :func:`orthogonal_targets`,
  :func:`interpolate_targets`.
- ``lbfgsb``: :func:`minimize_lbfgsb` -> :class:`LbfgsbResult` (L-BFGS-B in JAX, SciPy's algorithm).
- ``solve``: :func:`reconstruct`, :func:`reconstruct_ensemble`, :func:`orientations_of`.
- ``report`` (import it as ``jaxmicro.reconstruct.report``): images, loss curves, descriptor and
  relative-variogram-error maps, ``result.json`` records, shared by the CLI and the experiments.

References:
    SHSH-MCR paper (mcr-shsh); Seibert et al., MCRpy, IMMJ 11 (2022) 450.
"""

from .lbfgsb import STATUS, LbfgsbResult, minimize_lbfgsb
from .solve import (
    OPTIMIZERS,
    Result,
    initial_field,
    minimize,
    orientations_of,
    reconstruct,
    reconstruct_ensemble,
)
from .spec import (
    DESCRIPTORS,
    Descriptor,
    Spec,
    Target,
    characterize,
    coarsen,
    descriptor,
    interpolate_targets,
    loss,
    loss_terms,
    orthogonal_targets,
    relative_error,
)

__all__ = [
    "STATUS",
    "LbfgsbResult",
    "minimize_lbfgsb",
    "DESCRIPTORS",
    "OPTIMIZERS",
    "Descriptor",
    "Result",
    "Spec",
    "Target",
    "characterize",
    "coarsen",
    "descriptor",
    "initial_field",
    "interpolate_targets",
    "loss",
    "loss_terms",
    "minimize",
    "orientations_of",
    "orthogonal_targets",
    "reconstruct",
    "reconstruct_ensemble",
    "relative_error",
]
