"""Descriptor-based microstructure reconstruction (MCR) with the whole loop jitted.

- ``spec``: :class:`Spec`, :class:`Descriptor` / :func:`descriptor`, :func:`characterize` ->
  :class:`Target` (which records its problem: :func:`problem_of`, :func:`check_target`),
  :func:`loss`, :func:`loss_terms`, :func:`orthogonal_targets`, :func:`interpolate_targets`.
- ``lbfgsb``: :func:`minimize_lbfgsb` -> :class:`LbfgsbResult` (L-BFGS-B in JAX, SciPy's algorithm).
- ``solve``: :func:`reconstruct`, :func:`reconstruct_ensemble`, :func:`orientations_of`.
- ``reference``: :func:`load_reference` (``.npy``, images, ``.ang``/``.ctf``),
  :func:`reference_field` (arrays), :func:`example_reference`.
- ``parse``: :func:`parse_descriptors` (``'two_point:1:max_lag=7,...'``),
  :func:`default_descriptors`, :func:`default_window`, :func:`parse_shape`.
- ``pipeline``: :func:`run_reconstruction` -> :class:`Reconstruction` (characterize, compile,
  solve, best of the starts), :func:`output_arrays`, :func:`run_record`, :func:`level_losses`,
  :func:`loss_histories`, :func:`check_memory`, :func:`release_memory`, :func:`spinner`:
  ``jaxmicro reconstruct`` as data.
- ``report`` (import it as ``jaxmicro.reconstruct.report``): images, loss curves, descriptor and
  relative-variogram-error maps, ``result.json`` records, shared by the CLI and the experiments.

References:
    SHSH-MCR paper (mcr-shsh); Seibert et al., MCRpy, IMMJ 11 (2022) 450.
"""

from .lbfgsb import STATUS, LbfgsbResult, minimize_lbfgsb
from .parse import default_descriptors, default_window, parse_descriptors, parse_shape
from .pipeline import (
    Reconstruction,
    check_memory,
    level_losses,
    loss_histories,
    memory_lower_bound,
    output_arrays,
    release_memory,
    run_reconstruction,
    run_record,
    spinner,
)
from .reference import example_reference, load_reference, reference_field
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
    check_target,
    coarsen,
    descriptor,
    interpolate_targets,
    loss,
    loss_terms,
    orthogonal_targets,
    problem_of,
    relative_error,
)

__all__ = [
    "STATUS",
    "LbfgsbResult",
    "minimize_lbfgsb",
    "DESCRIPTORS",
    "OPTIMIZERS",
    "Descriptor",
    "Reconstruction",
    "Result",
    "Spec",
    "Target",
    "characterize",
    "check_memory",
    "check_target",
    "coarsen",
    "default_descriptors",
    "default_window",
    "descriptor",
    "example_reference",
    "initial_field",
    "interpolate_targets",
    "level_losses",
    "load_reference",
    "loss",
    "loss_histories",
    "loss_terms",
    "memory_lower_bound",
    "minimize",
    "orientations_of",
    "orthogonal_targets",
    "output_arrays",
    "parse_descriptors",
    "parse_shape",
    "problem_of",
    "reconstruct",
    "reconstruct_ensemble",
    "reference_field",
    "relative_error",
    "release_memory",
    "run_reconstruction",
    "run_record",
    "spinner",
]
