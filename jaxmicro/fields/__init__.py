"""Gaussian random fields with prescribed 1- and 2-point statistics.

The global (second-order) model of Local-Global Decomposition: samples whose ensemble mean and
cross-covariances equal those of a reference microstructure, drawn in O(C S log S).
"""

from jaxmicro.fields.gaussian import grf_from_reference, grf_from_spectra, grf_from_two_point

__all__ = ["grf_from_reference", "grf_from_spectra", "grf_from_two_point"]
