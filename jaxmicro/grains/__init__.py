"""Grains: segmentation of generated fields into labelled grains, and per-grain properties.

Every segmentation returns int32 labels ``(*spatial)`` numbered 1..n in order of each grain's
first voxel (C order), with no voxel left unassigned; :func:`grain_properties` accepts such a
field (and treats label 0, if present, as unassigned). Three inputs are covered:

- colour-coded fields with a fixed palette (:func:`segment_palette`, PolyCrysDiff §4.2),
- orientation fields (:func:`segment_orientations`, disorientation threshold),
- continuous grain-ID fields from diffusion models (:func:`segment_continuous`, GrainPaint §2.6).

Boundaries: every function here defaults to ``periodic=False``: a grain cut by a face of the
box is not joined to the grain at the opposite face unless asked (``periodic=True``, for
generated periodic volumes such as ``jaxmicro.synth.voronoi``). This differs on purpose from the
descriptors and generators (``periodic=True``): segmentation must not merge distinct grains of a
non-periodic sample, while a missed join only splits one grain in two.

Labelling has data-dependent output sizes, so these are host-side NumPy/SciPy functions; the
per-voxel numerical kernels (palette quantization, neighbour disorientation, mean orientation)
are jitted JAX functions.
"""

from ._continuous import noise_scale, segment_continuous
from ._orientation import neighbour_disorientation, segment_orientations
from ._palette import quantize_palette, segment_palette
from ._properties import grain_properties

__all__ = [
    "grain_properties",
    "neighbour_disorientation",
    "noise_scale",
    "quantize_palette",
    "segment_continuous",
    "segment_orientations",
    "segment_palette",
]
