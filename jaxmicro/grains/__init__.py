"""Grains: segmentation of generated fields into labelled grains, and per-grain properties.

Every segmentation returns int32 labels ``(*spatial)`` numbered 1..n in order of each grain's
first voxel (C order), with no voxel left unassigned; :func:`grain_properties` accepts such a
field (and treats label 0, if present, as unassigned). Three inputs are covered:

- colour-coded fields with a fixed palette (:func:`segment_palette`, PolyCrysDiff §4.2),
- orientation fields (:func:`segment_orientations`, disorientation threshold),
- continuous grain-ID fields from diffusion models (:func:`segment_continuous`, GrainPaint §2.6).

Labelling has data-dependent output sizes, so these are host-side NumPy/SciPy functions; the
per-voxel numerical kernels (palette quantization, neighbour disorientation, mean orientation)
are jitted JAX functions.
"""

from ._continuous import noise_scale, segment_continuous
from ._orientation import neighbor_disorientation, segment_orientations
from ._palette import quantize_palette, segment_palette
from ._properties import grain_properties

__all__ = [
    "grain_properties",
    "neighbor_disorientation",
    "noise_scale",
    "quantize_palette",
    "segment_continuous",
    "segment_orientations",
    "segment_palette",
]
