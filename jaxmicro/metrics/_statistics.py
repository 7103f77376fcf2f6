"""Discrepancies between microstructure statistics: correlation curves, 2-point maps, ODFs."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import descriptors
from .._validate import as_float_array, check_finite, check_ndim


def _trapezoid(y: jax.Array, r: jax.Array | None) -> jax.Array:
    if r is None:
        return jnp.sum(y[..., 1:] + y[..., :-1], axis=-1) / 2
    return jnp.sum((y[..., 1:] + y[..., :-1]) * jnp.diff(r), axis=-1) / 2


def correlation_discrepancy(reference, generated, *, r=None) -> jax.Array:
    """Discrepancy ``eps = A_c / A_ori x 100`` (percent) between two correlation curves.

    ``A_c`` is the area between the curves, ``integral |f_gen - f_ref| dr``, and ``A_ori`` the
    area under the reference curve, ``integral f_ref dr`` (trapezoid rule on the sample points,
    uniform unless ``r`` is given). Used for S2 and lineal-path curves.

    Args:
        reference: reference curve(s) ``(..., L)``, ``L >= 2``.
        generated: generated curve(s), broadcastable to ``reference``.
        r: optional distances ``(L,)`` of the sample points.

    Returns:
        ``(...)`` percent.

    References:
        Lee & Yun (ddpm-ddim-mcr) §2.3, eq. 23.
    """
    ref = as_float_array(reference, "reference")
    gen = as_float_array(generated, "generated").astype(ref.dtype)
    check_finite(ref, "reference")
    check_finite(gen, "generated")
    if ref.ndim == 0 or ref.shape[-1] < 2:
        raise ValueError(f"reference: expected curves (..., L) with L >= 2, got {ref.shape}")
    if r is not None:
        r = as_float_array(r, "r").astype(ref.dtype)
        if r.shape != ref.shape[-1:]:
            raise ValueError(f"r: expected shape {ref.shape[-1:]}, got {r.shape}")
    return 100 * _trapezoid(jnp.abs(gen - ref), r) / _trapezoid(ref, r)


@partial(jax.jit, static_argnames=("ndim", "max_radius"))
def _radial(corr, *, ndim, max_radius):
    spatial = corr.shape[-ndim:]
    grids = jnp.meshgrid(*(jnp.arange(n) - n // 2 for n in spatial), indexing="ij")
    dist = jnp.sqrt(sum(g.astype(corr.dtype) ** 2 for g in grids)).ravel()
    # lags beyond max_radius go to one extra shell that is dropped
    shell = jnp.minimum(jnp.round(dist).astype(jnp.int32), max_radius + 1)
    flat = jnp.moveaxis(corr.reshape(corr.shape[:-ndim] + (-1,)), -1, 0)
    sums = jax.ops.segment_sum(flat, shell, num_segments=max_radius + 2)[:-1]
    counts = jax.ops.segment_sum(jnp.ones_like(dist), shell, num_segments=max_radius + 2)[:-1]
    return jnp.moveaxis(sums / counts.reshape((-1,) + (1,) * (flat.ndim - 1)), 0, -1)


def radial_average(corr, *, ndim: int, max_radius: int | None = None) -> jax.Array:
    """Average of a centred lag map over shells of equal rounded distance ``|r|``.

    Args:
        corr: ``(..., *lags)`` with ``ndim`` lag axes, lag 0 at index ``n // 2`` (the layout of
            ``jaxmicro.descriptors.two_point``).
        ndim: number of lag axes (2 or 3).
        max_radius: largest shell kept (default: the smallest ``n // 2`` of the lag axes, so
            every shell is complete).

    Returns:
        ``(..., max_radius + 1)``: entry ``s`` averages the lags with ``round(|r|) = s``.
    """
    corr = as_float_array(corr, "corr")
    if ndim not in (2, 3) or corr.ndim < ndim:
        raise ValueError(f"ndim: expected 2 or 3 lag axes within corr.shape {corr.shape}")
    limit = min(n // 2 for n in corr.shape[-ndim:])
    max_radius = limit if max_radius is None else int(max_radius)
    if max_radius < 0:
        raise ValueError(f"max_radius: expected >= 0, got {max_radius}")
    return _radial(corr, ndim=ndim, max_radius=max_radius)


def _field_set(x, name: str) -> jax.Array:
    check_ndim(x, name, (4, 5), "(n_samples, *spatial, C) with 2 or 3 spatial axes")
    x = as_float_array(x, name)
    check_finite(x, name)
    return x


def two_point_mse(set_a, set_b, *, periodic: bool = True, max_lag: int | None = None):
    """Mean squared difference of the set-averaged 2-point statistics of two sets of fields.

    Args:
        set_a, set_b: ``(n, *spatial, C)`` fields (phase indicators or harmonic coefficients),
            2 or 3 spatial axes, the same spatial shape and C.
        periodic, max_lag: passed to ``jaxmicro.descriptors.two_point`` (all channel pairs).

    Returns:
        Scalar MSE over all channel pairs and lags.

    References:
        Buzzy et al. (rogsh-local-global) §5.1.3, Fig. 9 (2-point statistics of the ensemble
        against the reference).
    """
    a, b = _field_set(set_a, "set_a"), _field_set(set_b, "set_b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"set_b: expected fields of shape {a.shape[1:]}, got {b.shape[1:]}")

    def mean_stats(x):
        stats = jax.vmap(lambda m: descriptors.two_point(m, periodic=periodic, max_lag=max_lag))
        return jnp.mean(stats(x), axis=0)

    return jnp.mean((mean_stats(a) - mean_stats(b).astype(a.dtype)) ** 2)


# Lowest SHSH degrees whose features determine an orientation near every generic one, per
# symmetry: the Jacobian of the features with respect to the three rotations ``q -> dq * q`` has
# rank 3 (checked in tests/test_metrics.py). Hexagonal degrees 4 and 8 see only the c-axis
# (rank 2) and tetragonal/trigonal degree 4 likewise, so those need 12, 8 and 6.
ODF_DEGREES: dict[str, tuple[int, ...]] = {
    "cubic": (8,),
    "hexagonal": (4, 8, 12),
    "tetragonal": (4, 8),
    "trigonal": (4, 6),
    "orthorhombic": (4,),
    "monoclinic": (4,),
    "triclinic": (2,),
}


def odf_mse(q_a, q_b, symmetry: str, *, degrees=None) -> jax.Array:
    """Squared difference of the mean SHSH coefficients of two orientation sets (an ODF check).

    The mean of the symmetrized harmonics over all voxels is the ODF's expansion coefficient
    vector (up to normalization), so this compares the two ODFs in harmonic space, where the
    comparison does not depend on a kernel or a fundamental-zone convention. It only sees the
    degrees it is given: the default, ``ODF_DEGREES[symmetry]``, holds for each symmetry the
    lowest degrees whose harmonics determine the orientation (for hexagonal, degrees 4 and 8
    depend on the c-axis alone, so textures that differ by rotations about c would compare equal
    without degree 12).

    Args:
        q_a, q_b: unit quaternions ``(..., 4)`` (any leading shapes), scalar first, P = -1.
        symmetry: crystal symmetry name.
        degrees: SHSH degrees used (``jaxmicro.harmonics.shsh``); default
            ``ODF_DEGREES[symmetry]`` (cubic (8,), hexagonal (4, 8, 12), tetragonal (4, 8),
            trigonal (4, 6), orthorhombic and monoclinic (4,), triclinic (2,)).

    Returns:
        Scalar: mean over coefficients of ``(mean_a - mean_b)^2``.

    References:
        Buzzy et al. (rogsh-local-global) §5.1.3, Fig. 8 (ODF agreement); SHSH after the
        MCR-SHSH paper §2.
    """
    from .. import harmonics
    from ..orientations import check_symmetry

    check_symmetry(symmetry)
    degrees = ODF_DEGREES[symmetry] if degrees is None else tuple(degrees)
    qa = jnp.asarray(q_a).reshape(-1, 4)
    qb = jnp.asarray(q_b).reshape(-1, 4)
    fa = jnp.mean(harmonics.shsh(qa, symmetry, degrees=degrees), axis=0)
    fb = jnp.mean(harmonics.shsh(qb, symmetry, degrees=degrees), axis=0)
    return jnp.mean((fa - fb.astype(fa.dtype)) ** 2)


def phase_indicators(phases, n_phases: int | None = None) -> np.ndarray:
    """One-hot indicators ``(*spatial, P)`` (float32) of an integer phase field ``(*spatial)``."""
    phases = np.asarray(phases)
    n = int(phases.max()) + 1 if n_phases is None else int(n_phases)
    return (phases[..., None] == np.arange(n)).astype(np.float32)
