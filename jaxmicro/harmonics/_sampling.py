"""Deterministic, nearly uniform point sets on S^3 for constant bases and lookup databases.

References:
    M. Alexa, Super-Fibonacci spirals: fast, low-discrepancy sampling of SO(3), CVPR 2022, Alg. 1.
"""

from __future__ import annotations

import numpy as np

# psi is the real root of psi^4 = psi + 4 (Alexa 2022); with sqrt(2) it makes the two spirals
# incommensurate.
_PHI = np.sqrt(2.0)
_PSI = 1.533751168755204288118041


def super_fibonacci(n: int) -> np.ndarray:
    """``n`` unit quaternions (float64, (n, 4), scalar first) spread nearly uniformly on S^3."""
    s = np.arange(n, dtype=np.float64) + 0.5
    r, big_r = np.sqrt(s / n), np.sqrt(1.0 - s / n)
    alpha, beta = 2.0 * np.pi * s / _PHI, 2.0 * np.pi * s / _PSI
    return np.stack(
        [r * np.sin(alpha), r * np.cos(alpha), big_r * np.sin(beta), big_r * np.cos(beta)], axis=-1
    )
