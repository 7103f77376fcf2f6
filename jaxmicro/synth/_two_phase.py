"""Two-phase (binary) microstructures: non-overlapping disks/spheres by random sequential
addition (fibre composites) and thresholded Gaussian random fields. Both are periodic."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import _validate
from jaxmicro.synth._points import hard_core_points


def _check_shape(shape) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"shape: expected 2 or 3 positive sizes, got {shape}")
    return shape


def rsa_disks(
    key: jax.Array,
    shape: Sequence[int],
    radius: float,
    volume_fraction: float,
    *,
    gap: float = 0.0,
    max_rejections: int = 20000,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Non-overlapping disks (2D) or spheres (3D) placed by random sequential addition, periodic.

    Disks are added at uniform random centres, each rejected and redrawn while it overlaps one
    already placed, until ``round(volume_fraction * V / v_disk)`` disks are placed (the continuous
    area/volume fraction then equals the target up to rounding of the count) or the box jams
    (``max_rejections`` consecutive rejections; RSA jams near 0.547 in 2D and 0.38 in 3D). The
    binary field marks voxels whose centre lies within ``radius`` of a centre (minimum image).

    Jittable with ``static_argnames=("shape", "radius", "volume_fraction", "max_rejections")``;
    called eagerly it warns when fewer disks than wanted were placed.

    Args:
        key: a ``jax.random.key``.
        shape: grid shape, 2 or 3 sizes (voxels).
        radius: disk radius in voxels (static).
        volume_fraction: target fraction of the inclusion phase, in [0, 1) (static).
        gap: extra clearance between disk surfaces, voxels.
        max_rejections: consecutive rejections at which the box counts as jammed.

    Returns:
        ``(field, centres, count)``: the binary field (int32, 1 inside disks, shape ``shape``), the
        centres (n_max, d) in voxel units (rows ``>= count`` are unused and zero) and the number of
        disks placed.

    References: Lee & Yun, diffusion-based microstructure reconstruction, appendix A (RSA fibre
    composites, volume fraction 0.35); Torquato, Random Heterogeneous Materials (2002), §3.1.
    """
    shape = _check_shape(shape)
    d = len(shape)
    if not radius > 0:
        raise ValueError(f"radius: expected a positive radius, got {radius}")
    _validate.check_range(volume_fraction, "volume_fraction", 0.0, 1.0)
    unit = math.pi * radius**2 if d == 2 else 4.0 / 3.0 * math.pi * radius**3
    n = max(1, round(float(volume_fraction) * math.prod(shape) / unit))
    field, centres, count = _rsa_disks(
        key,
        gap,
        shape=shape,
        radius=float(radius),
        n=n,
        max_rejections=int(max_rejections),
    )
    if _validate.is_concrete(count) and int(count) < n:
        warnings.warn(
            f"rsa_disks: the box jammed after {int(count)} of {n} disks (volume fraction "
            f"{int(count) * unit / math.prod(shape):.3f} of {volume_fraction}); RSA cannot pack "
            "denser than about 0.547 (2D) / 0.38 (3D)",
            stacklevel=2,
        )
    return field, centres, count


@functools.partial(jax.jit, static_argnames=("shape", "radius", "n", "max_rejections"))
def _rsa_disks(key, gap, *, shape, radius, n, max_rejections):
    """RSA of ``n`` disks and their painting: the kernel of ``rsa_disks``."""
    d = len(shape)
    gap = jnp.asarray(gap, jnp.result_type(float))
    dtype = gap.dtype
    centres, count, _ = hard_core_points(
        key,
        jnp.asarray(shape, dtype),
        n,
        2.0 * radius + gap,
        scale=jnp.ones(d, dtype),
        periodic=True,
        max_rejections=max_rejections,
        relax=False,
    )
    # Paint each disk through its bounding stencil, wrapping indices around the box.
    reach = int(math.ceil(radius)) + 1
    stencil = np.stack(np.meshgrid(*[np.arange(-reach, reach + 1)] * d, indexing="ij"), -1).reshape(
        -1, d
    )
    base = jnp.floor(centres).astype(jnp.int32)
    sites = base[:, None, :] + jnp.asarray(stencil, jnp.int32)[None]
    offset = sites.astype(dtype) + 0.5 - centres[:, None, :]
    inside = (jnp.sum(offset * offset, axis=-1) <= radius**2) & (jnp.arange(n) < count)[:, None]
    sites = sites % jnp.asarray(shape, jnp.int32)
    field = (
        jnp.zeros(shape, jnp.int32)
        .at[tuple(sites[..., a] for a in range(d))]
        .max(inside.astype(jnp.int32))
    )
    return field, centres, count


def gaussian_two_phase(
    key: jax.Array,
    shape: Sequence[int],
    correlation_length: float,
    volume_fraction: float,
    *,
    exact_fraction: bool = False,
    dtype=None,
) -> jax.Array:
    """Thresholded Gaussian random field (periodic), a two-phase microstructure.

    A stationary Gaussian field with covariance ``exp(-r^2 / (2 l^2))`` (``l`` the correlation
    length) is sampled spectrally (white noise filtered in Fourier space, unit variance) and
    phase 1 is where it exceeds ``Phi^-1(1 - volume_fraction)``, so the expected fraction is
    ``volume_fraction``; with ``exact_fraction`` the threshold is the field's own quantile instead.
    The two-point function of phase 1 is then known: at fraction 1/2,
    ``S2(r) = 1/4 + arcsin(rho(r)) / (2 pi)``.

    Args:
        key: a ``jax.random.key``.
        shape: grid shape, 2 or 3 sizes (voxels).
        correlation_length: ``l`` in voxels.
        volume_fraction: fraction of phase 1, in (0, 1).
        exact_fraction: threshold at the empirical quantile (fraction exact up to ties).
        dtype: floating dtype of the underlying field (default: JAX's default float).

    Returns:
        Binary field, int32, shape ``shape``.

    References: Torquato, Random Heterogeneous Materials (2002), §8.3 (level-cut Gaussian fields);
    Lee & Yun appendix A (two-point-correlation training data).
    """
    shape = _check_shape(shape)
    _validate.check_range(volume_fraction, "volume_fraction", 0.0, 1.0)
    if not correlation_length > 0:
        raise ValueError(f"correlation_length: expected > 0, got {correlation_length}")
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    return _gaussian_two_phase(
        key,
        jnp.asarray(correlation_length, dtype),
        jnp.asarray(volume_fraction, dtype),
        shape=shape,
        exact_fraction=bool(exact_fraction),
        dtype=dtype,
    )


@functools.partial(jax.jit, static_argnames=("shape", "exact_fraction", "dtype"))
def _gaussian_two_phase(key, correlation_length, volume_fraction, *, shape, exact_fraction, dtype):
    """Spectral sampling and thresholding: the kernel of ``gaussian_two_phase``."""
    noise = jax.random.normal(key, shape, dtype)
    k2 = sum(
        g**2
        for g in jnp.meshgrid(
            *[2 * jnp.pi * jnp.fft.fftfreq(n).astype(dtype) for n in shape], indexing="ij"
        )
    )
    # Filtering white noise by sqrt(S(k)) gives the covariance whose spectrum is S(k).
    filt = jnp.exp(-0.25 * correlation_length**2 * k2)
    field = jnp.fft.ifftn(jnp.fft.fftn(noise) * filt).real
    field = field / jnp.sqrt(jnp.mean(filt**2))
    if exact_fraction:
        threshold = jnp.quantile(field, 1.0 - volume_fraction)
    else:
        threshold = jax.scipy.special.ndtri(1.0 - volume_fraction)
    return (field > threshold).astype(jnp.int32)
