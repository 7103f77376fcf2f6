"""The one dataset layer: building, loading, labelling, cutting into blocks, and training fields.

- ``make_dataset`` / ``KINDS`` / ``default_params`` / ``read_metadata``: sharded ``.npz`` datasets
  (``jaxmicro data make KIND ...`` on the command line); ``write_dataset``: the same format from
  arrays (e.g. reconstructions or latents).
- ``Loader``: deterministic shuffled batches, resumable (``state`` / ``restore`` / ``batch_at``),
  each process reading only its rows of a global batch.
- ``training_fields`` / ``resolve_representation`` / ``REPRESENTATIONS`` / ``boundary_field``:
  stored samples -> float fields in [-1, 1] that a diffusion model trains on.
- ``grainpaint_blocks``, ``extract_blocks``, ``random_crops``: blocks and crops of volumes.
- ``grain_sphericity``, ``mean_intercept_lengths``: per-sample labels.

``jaxmicro.train.fit`` reads its data only through this layer.
"""

from jaxmicro.data._blocks import extract_blocks, grainpaint_blocks, random_crops
from jaxmicro.data._build import KINDS, default_params, make_dataset, read_metadata, write_dataset
from jaxmicro.data._fields import (
    REPRESENTATIONS,
    boundary_field,
    resolve_representation,
    training_fields,
)
from jaxmicro.data._labels import grain_sphericity, mean_intercept_lengths
from jaxmicro.data._loader import Loader

__all__ = [
    "KINDS",
    "Loader",
    "REPRESENTATIONS",
    "boundary_field",
    "default_params",
    "extract_blocks",
    "grain_sphericity",
    "grainpaint_blocks",
    "make_dataset",
    "mean_intercept_lengths",
    "random_crops",
    "read_metadata",
    "resolve_representation",
    "training_fields",
    "write_dataset",
]
