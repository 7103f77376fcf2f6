"""Harmonic bases on orientation space: HSH, symmetrized HSH (SHSH), ROGSH, and their inverses.

- :func:`hsh`: real hyperspherical harmonics of one degree (Mason & Schuh 2008), polynomials in q;
  :func:`hsh_index` labels them.
- :func:`shsh`: HSH invariant under crystal symmetry and q -> -q, concatenated over degrees;
  :func:`shsh_basis`, :func:`shsh_dim`, :func:`shsh_size` describe the bases.
- :func:`shsh_to_quat`: SHSH features -> orientation (database lookup + Gauss-Newton refinement).
- :func:`rogsh`, :func:`rogsh_to_euler`: the reduced-order GSH bases of Buzzy et al. (2024).

References:
    J. K. Mason, C. A. Schuh, Acta Mater. 56 (2008) 6141; mcr-shsh §2.2.
"""

from ._inverse import shsh_to_quat
from .hsh import hsh, hsh_index
from .rogsh import rogsh, rogsh_to_euler
from .shsh import shsh, shsh_basis, shsh_dim, shsh_size

__all__ = [
    "hsh",
    "hsh_index",
    "rogsh",
    "rogsh_to_euler",
    "shsh",
    "shsh_basis",
    "shsh_dim",
    "shsh_size",
    "shsh_to_quat",
]
