"""Building blocks of the UNet and VAE, for any number of spatial dimensions.

Arrays are channels last, ``(B, *spatial, C)``. Dropout is functional: a block drops activations
only when it is given a PRNG key, so a model call without a key is deterministic (evaluation) and a
training call is a pure function of its key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = [
    "conv",
    "conv_by_slices",
    "dropout",
    "group_norm",
    "ResBlock",
    "Attention",
    "Downsample",
    "Upsample",
]


def dropout(key: jax.Array | None, x: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout of ``x`` with probability ``rate``; identity when ``key`` is None."""
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def group_norm(channels: int, num_groups: int, rngs: nnx.Rngs) -> nnx.GroupNorm:
    """GroupNorm over channels and all spatial axes; groups = gcd(channels, num_groups)."""
    groups = _gcd(channels, num_groups)
    return nnx.GroupNorm(channels, num_groups=groups, epsilon=1e-5, rngs=rngs)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def conv_by_slices(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    **kwargs,
):
    """A 3D convolution (channels last) as a sum of depth-shifted 2D convolutions.

    Drop-in for ``lax.conv_general_dilated`` on ``(B, D, H, W, C)`` inputs with ``(kd, kh, kw,
    C_in, C_out)`` kernels: ``y[:, z] = sum_dz conv2d(x[:, s z + dz - pad], w[dz])``. For unit
    depth stride each depth tap is one 2D convolution over all ``B * D`` planes whose output is
    shifted along depth, so no copy of the input is made; a stride ``s > 1`` convolves only the
    planes that tap reads. XLA:CPU hands 2D convolutions to its YNNPACK backend but runs 3D ones
    on a generic path, 4-10x slower at the UNet's shapes (3-16 against 25-110 GFLOP/s; see
    docs/diffusion.md); the result equals ``lax.conv_general_dilated`` up to float rounding,
    gradients included. Other ranks, dilations and groups go to ``lax.conv_general_dilated``.

    A ``'VALID'`` convolution (of any rank) runs as the ``'SAME'`` one, cropped: XLA:CPU runs
    2D ``'VALID'`` convolutions 2-2.5x slower at the UNet's shapes, and ``'CIRCULAR'`` layers
    (``periodic`` networks) are a wrap of the input followed by a ``'VALID'`` convolution.
    """
    dilations = tuple(lhs_dilation or ()) + tuple(rhs_dilation or ())
    plain = feature_group_count == 1 and all(d == 1 for d in dilations)
    if plain and _is_valid(padding):
        same = _valid_as_same_window(lhs.shape[1:-1], rhs.shape[:-2], window_strides)
        if same is not None:
            start, stop = same
            y = conv_by_slices(
                lhs, rhs, window_strides, "SAME", dimension_numbers=dimension_numbers, **kwargs
            )
            return jax.lax.slice(y, (0, *start, 0), (y.shape[0], *stop, y.shape[-1]))
    simple = lhs.ndim == 5 and plain
    if simple:
        if isinstance(padding, str):
            padding = jax.lax.padtype_to_pads(
                lhs.shape[1:4], rhs.shape[:3], window_strides, padding
            )
        depth, taps = _depth_taps(lhs.shape[1], rhs.shape[0], window_strides[0], padding[0])
    if not simple or not taps:  # not taps: every tap reads padding only
        return jax.lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation,
            rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count,
            **kwargs,
        )
    sd = window_strides[0]
    out = None
    for dz, (z_lo, z_hi), (p_lo, p_hi) in taps:
        # Unit stride: convolve every plane and slice the output, which fuses into the sum,
        # rather than copy the input; stride > 1: convolve only the planes this tap reads.
        x = lhs if sd == 1 else lhs[:, p_lo : p_hi + 1 : sd]
        y = jax.lax.conv_general_dilated(
            x.reshape((-1,) + x.shape[2:]),
            rhs[dz],
            window_strides[1:],
            tuple(padding[1:]),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            **kwargs,
        )
        y = y.reshape(x.shape[:2] + y.shape[1:])
        if sd == 1:
            y = y[:, p_lo : p_hi + 1]
        y = jnp.pad(y, ((0, 0), (z_lo, depth - 1 - z_hi), (0, 0), (0, 0), (0, 0)))
        out = y if out is None else out + y
    return out


def _is_valid(padding) -> bool:
    if isinstance(padding, str):
        return padding == "VALID"
    return all(tuple(p) == (0, 0) for p in padding)


def _valid_as_same_window(spatial, kernel, strides):
    """Where a ``'VALID'`` convolution's output sits inside the ``'SAME'`` one of the same input,
    as (start, stop) per spatial axis, or None where a stride makes them read different taps.

    ``'SAME'`` output ``j`` reads input ``s j + dz - lo`` (``lo`` its low padding), ``'VALID'``
    output ``z`` reads ``s z + dz``: they agree for ``j = z + lo / s`` when ``s`` divides ``lo``.
    """
    start, stop = [], []
    for n, k, s in zip(spatial, kernel, strides, strict=True):
        lo = max((-(-n // s) - 1) * s + k - n, 0) // 2
        if lo % s or n < k:
            return None
        start.append(lo // s)
        stop.append(lo // s + (n - k) // s + 1)
    return tuple(start), tuple(stop)


def _depth_taps(d: int, kd: int, stride: int, pads: tuple[int, int]):
    """Output depth and, per depth tap that reads real planes, (tap, output range, plane range).

    Output plane ``z`` reads input plane ``p = stride z + dz - pads[0]``; only ``0 <= p < d``
    contribute, the rest is zero padding.
    """
    depth = (d + pads[0] + pads[1] - kd) // stride + 1
    taps = []
    for dz in range(kd):
        z_lo = max(0, -((dz - pads[0]) // stride))
        z_hi = min(depth - 1, (d - 1 + pads[0] - dz) // stride)
        if z_lo <= z_hi:
            p_lo, p_hi = (stride * z + dz - pads[0] for z in (z_lo, z_hi))
            taps.append((dz, (z_lo, z_hi), (p_lo, p_hi)))
    return depth, taps


def conv(
    cin: int,
    cout: int,
    ndim: int,
    rngs: nnx.Rngs,
    *,
    kernel: int = 3,
    stride: int = 1,
    zero: bool = False,
    periodic: bool = False,
) -> nnx.Conv:
    """The networks' convolution: ``kernel`` wide on each of ``ndim`` spatial axes, through
    ``conv_by_slices``; ``periodic`` wraps every spatial axis (``'CIRCULAR'``: fields on a torus,
    so the output is periodic too), else zero padding (``'SAME'``); ``zero`` starts its kernel
    at zero (else LeCun normal, flax's default)."""
    init = nnx.initializers.zeros_init() if zero else nnx.initializers.lecun_normal()
    return nnx.Conv(
        cin,
        cout,
        (kernel,) * ndim,
        strides=stride,
        padding="CIRCULAR" if periodic else "SAME",
        kernel_init=init,
        conv_general_dilated=conv_by_slices,
        rngs=rngs,
    )


class ResBlock(nnx.Module):
    """Residual block: GN-SiLU-conv, add the projected embedding, GN-SiLU-dropout-conv, skip.

    The second convolution starts at zero so that every block starts as the identity.

    References:
        Ho, Jain, Abbeel (2020), appendix B (Wide-ResNet blocks with GroupNorm); Lee & Yun,
        ddpm-ddim-mcr §2.2.2.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        emb_dim: int,
        *,
        ndim: int,
        num_groups: int,
        dropout_rate: float,
        rngs: nnx.Rngs,
        periodic: bool = False,
    ):
        self.norm1 = group_norm(cin, num_groups, rngs)
        self.conv1 = conv(cin, cout, ndim, rngs, periodic=periodic)
        self.emb = nnx.Linear(emb_dim, cout, rngs=rngs) if emb_dim else None
        self.norm2 = group_norm(cout, num_groups, rngs)
        self.conv2 = conv(cout, cout, ndim, rngs, zero=True, periodic=periodic)
        self.skip = conv(cin, cout, ndim, rngs, kernel=1) if cin != cout else None
        self.dropout_rate = dropout_rate

    def __call__(self, x, emb=None, *, key=None):
        h = self.conv1(nnx.silu(self.norm1(x)))
        if self.emb is not None:
            e = self.emb(nnx.silu(emb))
            h = h + e.reshape(e.shape[:1] + (1,) * (h.ndim - 2) + e.shape[1:])
        h = dropout(key, nnx.silu(self.norm2(h)), self.dropout_rate)
        h = self.conv2(h)
        return (x if self.skip is None else self.skip(x)) + h


class Attention(nnx.Module):
    """Multi-head attention over the spatial positions, with a residual connection.

    Self-attention when called without ``context``; cross-attention to ``context`` tokens
    ``(B, L, context_dim)`` otherwise. The output projection starts at zero.

    References:
        Vaswani et al. (2017); Ho, Jain, Abbeel (2020), appendix B (self-attention at 16x16);
        Rombach et al. (2022), §3.3 (cross-attention conditioning), used by PolyCrysDiff §2.1.
    """

    def __init__(
        self,
        channels: int,
        *,
        num_heads: int,
        num_groups: int,
        context_dim: int | None = None,
        rngs: nnx.Rngs,
    ):
        if channels % num_heads:
            raise ValueError(f"num_heads: {num_heads} does not divide the {channels} channels")
        self.num_heads = num_heads
        self.norm = group_norm(channels, num_groups, rngs)
        kv_dim = channels if context_dim is None else context_dim
        self.q = nnx.Linear(channels, channels, rngs=rngs)
        self.kv = nnx.Linear(kv_dim, 2 * channels, rngs=rngs)
        self.out = nnx.Linear(
            channels, channels, kernel_init=nnx.initializers.zeros_init(), rngs=rngs
        )

    def __call__(self, x, context=None):
        b, c = x.shape[0], x.shape[-1]
        h = self.norm(x).reshape(b, -1, c)
        src = h if context is None else context.astype(h.dtype)
        k, v = jnp.split(self.kv(src), 2, axis=-1)
        heads = (self.num_heads, c // self.num_heads)
        q = self.q(h).reshape(h.shape[:2] + heads)
        k = k.reshape(k.shape[:2] + heads)
        v = v.reshape(v.shape[:2] + heads)
        o = jax.nn.dot_product_attention(q, k, v).reshape(b, -1, c)
        return x + self.out(o).reshape(x.shape)


class Downsample(nnx.Module):
    """Halves every spatial size with a stride-2 convolution."""

    def __init__(self, channels: int, *, ndim: int, rngs: nnx.Rngs, periodic: bool = False):
        self.conv = conv(channels, channels, ndim, rngs, stride=2, periodic=periodic)

    def __call__(self, x):
        return self.conv(x)


class Upsample(nnx.Module):
    """Doubles every spatial size (nearest neighbour) and applies a convolution."""

    def __init__(self, channels: int, *, ndim: int, rngs: nnx.Rngs, periodic: bool = False):
        self.conv = conv(channels, channels, ndim, rngs, periodic=periodic)

    def __call__(self, x):
        for axis in range(1, x.ndim - 1):
            x = jnp.repeat(x, 2, axis=axis)
        return self.conv(x)
