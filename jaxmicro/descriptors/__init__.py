"""Spatial statistics of microstructure fields and their gradients.

Fields are channels-last arrays ``(*spatial, C)`` with 2 or 3 spatial axes (N-phase indicators,
SHSH/ROGSH coefficient fields, any real features); batch with ``jax.vmap``. Every function is a
pure JAX function: jittable (static choices are keyword arguments), vmappable, differentiable
where the statistic is, and returns the dtype of its input. Lag windows are centred
(``numpy.fft.fftshift`` layout); ``window_lags`` lists the lag vectors of a window.

- ``correlations``: ``one_point``, ``two_point`` (FFT-based, periodic or masked non-periodic).
- ``variograms``: ``variogram`` (madogram), ``three_point_variogram``, ``mean_variation``.
- ``lineal``: ``lineal_path``, ``chord_length_distribution``.
- ``slices``: ``slice_descriptors`` (2D descriptors of 3D fields, per slice direction).

Boundaries: every descriptor takes ``periodic`` and defaults to ``periodic=True`` (wrap-around),
the convention of the fields they describe (synthetic and reconstructed volumes are periodic);
pass ``periodic=False`` for cut-out measurements.

Speed: each public function validates its arguments and calls one jitted kernel (static choices
as static arguments), so a plain call costs about what ``jax.jit`` of it does
(``benchmarks/api_overhead.py``).
"""

from jaxmicro.descriptors._fields import window_lags
from jaxmicro.descriptors.correlations import one_point, two_point
from jaxmicro.descriptors.lineal import chord_length_distribution, lineal_path
from jaxmicro.descriptors.slices import slice_descriptors
from jaxmicro.descriptors.variograms import mean_variation, three_point_variogram, variogram

__all__ = [
    "chord_length_distribution",
    "lineal_path",
    "mean_variation",
    "one_point",
    "slice_descriptors",
    "three_point_variogram",
    "two_point",
    "variogram",
    "window_lags",
]
