"""Datasets of synthetic microstructures: building, loading, labelling and cutting into blocks.

- ``make_dataset`` / ``KINDS`` / ``default_params`` / ``read_metadata``: sharded ``.npz`` datasets
  (``jaxmicro data make KIND ...`` on the command line).
- ``Loader``: deterministic shuffled batches, resumable (``state`` / ``restore`` / ``batch_at``).
- ``grainpaint_blocks``, ``extract_blocks``, ``random_crops``: blocks and crops of volumes.
- ``grain_sphericity``, ``mean_intercept_lengths``: per-sample labels.
"""

from jaxmicro.data._blocks import extract_blocks, grainpaint_blocks, random_crops
from jaxmicro.data._build import KINDS, default_params, make_dataset, read_metadata
from jaxmicro.data._labels import grain_sphericity, mean_intercept_lengths
from jaxmicro.data._loader import Loader

__all__ = [
    "KINDS",
    "Loader",
    "default_params",
    "extract_blocks",
    "grain_sphericity",
    "grainpaint_blocks",
    "make_dataset",
    "mean_intercept_lengths",
    "random_crops",
    "read_metadata",
]
