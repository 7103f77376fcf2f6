"""A UNet noise predictor for 2D or 3D fields, with optional class / scalar conditioning.

``UNet(config, rngs=...)(x, t)`` maps noisy fields ``x: (B, *spatial, C)`` and integer steps
``t: (B,)`` to predicted noise ``(B, *spatial, C)`` (``2C`` channels with a learned variance: the
last ``C`` are the interpolation values ``v`` of Nichol & Dhariwal, eq. 15). The same code builds
2D and 3D networks: only ``UNetConfig.spatial_dims`` changes.

Layout (Ho et al. 2020, appendix B): an input convolution, then per resolution level
``num_res_blocks`` residual blocks (self-attention after each at ``attention_levels``) and a
stride-2 downsampling except at the last level; a middle block (res, attention, res); a mirrored
decoder with ``num_res_blocks + 1`` blocks per level fed by skip connections; GroupNorm, SiLU and a
convolution out.
Conditions become tokens (one per class label, one per scalar) that every attention block reads by
cross-attention (Rombach et al. 2022, as in PolyCrysDiff §2.1); ``cond_mask`` swaps them for
learned null tokens, which is how classifier-free guidance gets its unconditional branch.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmicro.nn.embedding import FourierEmbedding, sinusoidal_embedding
from jaxmicro.nn.layers import (
    Attention,
    Downsample,
    ResBlock,
    Upsample,
    conv,
    group_norm,
)

__all__ = ["UNetConfig", "UNet", "unet_config", "UNET_CONFIGS", "count_params"]


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Architecture of a ``UNet``.

    Attributes:
        spatial_dims: 2 or 3.
        in_channels: channels ``C`` of the data.
        channels: width of each resolution level, finest first; the number of levels is its
            length, and spatial sizes must be divisible by ``2 ** (levels - 1)``.
        num_res_blocks: residual blocks per level in the encoder (decoder: one more).
        attention_levels: indices of the levels (0 = finest) with attention blocks.
        num_heads: attention heads.
        num_groups: GroupNorm groups (reduced to a divisor of the width where needed).
        dropout: dropout rate inside residual blocks (active only when a key is passed).
        time_embedding: ``'sinusoidal'`` or ``'fourier'``.
        max_time: number of diffusion steps; scales ``t`` for the Fourier embedding.
        learned_variance: output ``2C`` channels (noise, then variance interpolation values).
        num_classes: number of class labels (0: no label conditioning).
        num_scalar_conditions: number of scalar conditions (0: none).
        context_dim: width of the condition tokens.
        periodic: wrap every convolution around the spatial axes (circular padding), for data
            on a torus such as periodic microstructures: the output is periodic too, and the
            network commutes with shifts by multiples of ``2 ** (levels - 1)`` pixels. False:
            zero padding.
    """

    spatial_dims: int = 2
    in_channels: int = 1
    channels: tuple[int, ...] = (64, 128, 128)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (2,)
    num_heads: int = 1
    num_groups: int = 32
    dropout: float = 0.1
    time_embedding: str = "sinusoidal"
    max_time: float = 1000.0
    learned_variance: bool = False
    num_classes: int = 0
    num_scalar_conditions: int = 0
    context_dim: int = 64
    periodic: bool = False

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learned_variance else self.in_channels

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0 or self.num_scalar_conditions > 0

    def validate(self) -> UNetConfig:
        """Returns self, or raises ValueError naming the inconsistent field."""
        if self.spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims: expected 1, 2 or 3, got {self.spatial_dims}")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels: expected positive widths, got {self.channels}")
        if any(not 0 <= lvl < len(self.channels) for lvl in self.attention_levels):
            raise ValueError(
                f"attention_levels: expected indices in [0, {len(self.channels)}), "
                f"got {self.attention_levels}"
            )
        if self.time_embedding not in ("sinusoidal", "fourier"):
            raise ValueError(
                f"time_embedding: expected 'sinusoidal' or 'fourier', got {self.time_embedding!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a rate in [0, 1), got {self.dropout}")
        return self


class _ConditionEncoder(nnx.Module):
    """Turns class labels and scalars into ``(B, L, context_dim)`` tokens, or null tokens."""

    def __init__(self, config: UNetConfig, rngs: nnx.Rngs):
        d, n = config.context_dim, config.num_scalar_conditions
        self.labels = nnx.Embed(config.num_classes, d, rngs=rngs) if config.num_classes else None
        if n:
            self.scalar_w = nnx.Param(jax.random.normal(rngs.params(), (n, d)))
            self.scalar_b = nnx.Param(jnp.zeros((n, d)))
            self.scalar_mix = nnx.Linear(d, d, rngs=rngs)
        self.num_scalars = n
        num_tokens = (1 if config.num_classes else 0) + n
        self.null = nnx.Param(0.02 * jax.random.normal(rngs.params(), (num_tokens, d)))

    def __call__(self, labels, scalars, cond_mask, batch: int, dtype):
        tokens = []
        if self.labels is not None:
            if labels is None:
                raise ValueError(
                    "labels: the model is label-conditioned; pass labels of shape (B,)"
                )
            tokens.append(self.labels(labels)[:, None, :])
        if self.num_scalars:
            if scalars is None:
                raise ValueError(
                    f"scalars: the model expects {self.num_scalars} scalar conditions, shape (B, "
                    f"{self.num_scalars})"
                )
            s = jnp.asarray(scalars, dtype)[..., None] * self.scalar_w[...] + self.scalar_b[...]
            tokens.append(self.scalar_mix(nnx.silu(s)))
        ctx = jnp.concatenate(tokens, axis=1).astype(dtype)
        if cond_mask is None:
            return ctx
        null = jnp.broadcast_to(self.null[...].astype(dtype), (batch,) + self.null.shape)
        return jnp.where(jnp.asarray(cond_mask)[:, None, None], ctx, null)


class UNet(nnx.Module):
    """Noise-prediction UNet for ``(B, *spatial, C)`` fields; see the module docstring.

    Call as ``model(x, t, *, labels=None, scalars=None, cond_mask=None, key=None)``:

    Args (of the call):
        x: ``(B, *spatial, C)`` noisy fields, ``len(spatial) == spatial_dims``.
        t: ``(B,)`` integer diffusion steps.
        labels: ``(B,)`` integer class labels (label-conditioned models).
        scalars: ``(B, num_scalar_conditions)`` scalar conditions.
        cond_mask: ``(B,)`` bool; False replaces the sample's condition by the null tokens.
        key: PRNG key enabling dropout (training); None for a deterministic call.

    Returns:
        ``(B, *spatial, out_channels)`` in the dtype of the computation.

    References:
        Ho, Jain, Abbeel (2020), appendix B; Nichol & Dhariwal (2021), §3.1 (learned variance);
        Lee & Yun, ddpm-ddim-mcr §2.2.2; Buzzy et al., rogsh-local-global appendix A;
        Hoffman et al., grainpaint §2.4; PolyCrysDiff §2.1.
    """

    def __init__(self, config: UNetConfig, *, rngs: nnx.Rngs):
        config = config.validate()
        self.config = config
        nd, ch, g = config.spatial_dims, config.channels, config.num_groups
        emb_dim = 4 * ch[0]
        if config.time_embedding == "fourier":
            self.time_features = FourierEmbedding(ch[0], max_time=config.max_time, rngs=rngs)
        self.time_mlp1 = nnx.Linear(ch[0], emb_dim, rngs=rngs)
        self.time_mlp2 = nnx.Linear(emb_dim, emb_dim, rngs=rngs)
        self.condition = _ConditionEncoder(config, rngs) if config.conditional else None
        ctx = config.context_dim if config.conditional else None

        def res(cin, cout):
            return ResBlock(
                cin,
                cout,
                emb_dim,
                ndim=nd,
                num_groups=g,
                dropout_rate=config.dropout,
                rngs=rngs,
                periodic=config.periodic,
            )

        def attn(c):
            self_attn = Attention(c, num_heads=config.num_heads, num_groups=g, rngs=rngs)
            if ctx is None:
                return nnx.List([self_attn])
            cross = Attention(
                c, num_heads=config.num_heads, num_groups=g, context_dim=ctx, rngs=rngs
            )
            return nnx.List([self_attn, cross])

        self.conv_in = conv(config.in_channels, ch[0], nd, rngs, periodic=config.periodic)
        down, skips, c = [], [ch[0]], ch[0]
        for level, width in enumerate(ch):
            for _ in range(config.num_res_blocks):
                down.append(
                    (res(c, width), attn(width) if level in config.attention_levels else None)
                )
                c = width
                skips.append(c)
            if level < len(ch) - 1:
                down.append((Downsample(c, ndim=nd, rngs=rngs, periodic=config.periodic), None))
                skips.append(c)
        self.down = nnx.List([nnx.List(list(pair)) for pair in down])
        self.mid = nnx.List([res(c, c), attn(c), res(c, c)])
        up = []
        for level in reversed(range(len(ch))):
            width = ch[level]
            for _ in range(config.num_res_blocks + 1):
                block = res(c + skips.pop(), width)
                c = width
                up.append((block, attn(width) if level in config.attention_levels else None))
            if level > 0:
                up.append((Upsample(c, ndim=nd, rngs=rngs, periodic=config.periodic), None))
        self.up = nnx.List([nnx.List(list(pair)) for pair in up])
        self.norm_out = group_norm(c, g, rngs)
        self.conv_out = conv(c, config.out_channels, nd, rngs, zero=True, periodic=config.periodic)

    def __call__(self, x, t, *, labels=None, scalars=None, cond_mask=None, key=None):
        cfg = self.config
        self._check_input(x, t)
        if cfg.time_embedding == "fourier":
            temb = self.time_features(t).astype(x.dtype)
        else:
            temb = sinusoidal_embedding(t, cfg.channels[0], dtype=x.dtype)
        emb = self.time_mlp2(nnx.silu(self.time_mlp1(temb)))
        ctx = None
        if self.condition is not None:
            ctx = self.condition(labels, scalars, cond_mask, x.shape[0], x.dtype)
        counter = iter(range(1 << 30))

        def block_key():
            return None if key is None else jax.random.fold_in(key, next(counter))

        def apply(layer, attn, h):
            if isinstance(layer, ResBlock):
                h = layer(h, emb, key=block_key())
            else:
                h = layer(h)
            if attn is not None:
                h = attn[0](h)
                if len(attn) > 1:
                    h = attn[1](h, ctx)
            return h

        h = self.conv_in(x)
        skips = [h]
        for layer, attn in self.down:
            h = apply(layer, attn, h)
            skips.append(h)
        h = apply(self.mid[0], self.mid[1], h)
        h = apply(self.mid[2], None, h)
        for layer, attn in self.up:
            if isinstance(layer, ResBlock):
                h = jnp.concatenate([h, skips.pop()], axis=-1)
            h = apply(layer, attn, h)
        return self.conv_out(nnx.silu(self.norm_out(h)))

    def _check_input(self, x, t):
        cfg = self.config
        if x.ndim != cfg.spatial_dims + 2 or x.shape[-1] != cfg.in_channels:
            raise ValueError(
                f"x: expected shape (B, *spatial[{cfg.spatial_dims}], {cfg.in_channels}), "
                f"got {x.shape}"
            )
        factor = 2 ** (len(cfg.channels) - 1)
        if any(s % factor for s in x.shape[1:-1]):
            raise ValueError(
                f"x: spatial sizes {x.shape[1:-1]} must be divisible by {factor} "
                f"({len(cfg.channels)} levels)"
            )
        if jnp.shape(t) != x.shape[:1]:
            raise ValueError(f"t: expected shape ({x.shape[0]},), got {jnp.shape(t)}")


def count_params(model: nnx.Module) -> int:
    """Number of trainable parameters (``nnx.Param`` entries) of ``model``."""
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


UNET_CONFIGS: dict[str, UNetConfig] = {
    # CPU-sized networks for tests and smoke runs.
    "tiny2d": UNetConfig(
        spatial_dims=2,
        channels=(8, 16),
        num_res_blocks=1,
        attention_levels=(1,),
        num_groups=4,
        dropout=0.0,
    ),
    "tiny3d": UNetConfig(
        spatial_dims=3,
        channels=(8, 16),
        num_res_blocks=1,
        attention_levels=(1,),
        num_groups=4,
        dropout=0.0,
    ),
    # Lee & Yun §2.2.2: 64x64 -> 4x4 (5 levels), 128 base channels, 3 res blocks per level,
    # one-head attention at 16x16, dropout 0.1, learned variance (hybrid loss, eq. 12). The
    # per-level multipliers are not printed; (1, 1, 2, 2, 4) follows Ho et al.'s 256^2 model.
    "lee_yun_64": UNetConfig(
        spatial_dims=2,
        in_channels=1,
        channels=(128, 128, 256, 256, 512),
        num_res_blocks=3,
        attention_levels=(2,),
        num_heads=1,
        dropout=0.1,
        learned_variance=True,
        max_time=4000.0,
    ),
    # Buzzy et al. appendix A, Table 2 (A, B, C; case study 1 = Ti64, 2 = Inconel); Fourier
    # time embedding; the diffusion runs 300 steps (§5.1.2: the truncation t0, not T).
    # Res blocks per level and attention placement are our choice (Fig. 16 is not in the text).
    "buzzy_case1": UNetConfig(
        spatial_dims=2,
        in_channels=3,
        channels=(64, 128, 128),
        num_res_blocks=2,
        attention_levels=(2,),
        dropout=0.1,
        time_embedding="fourier",
        max_time=1000.0,
    ),
    "buzzy_case2": UNetConfig(
        spatial_dims=2,
        in_channels=3,
        channels=(128, 256, 512),
        num_res_blocks=2,
        attention_levels=(2,),
        dropout=0.1,
        time_embedding="fourier",
        max_time=1000.0,
    ),
    # GrainPaint-size 3D models on 32^3 blocks (their ~1.1M and ~6.4M parameter networks; see
    # docs/diffusion.md for our counts). T = 250 linear.
    "grainpaint_1m": UNetConfig(
        spatial_dims=3,
        in_channels=1,
        channels=(16, 32, 32),
        num_res_blocks=2,
        attention_levels=(2,),
        num_groups=8,
        dropout=0.0,
        max_time=250.0,
    ),
    "grainpaint_6m": UNetConfig(
        spatial_dims=3,
        in_channels=1,
        channels=(32, 48, 96),
        num_res_blocks=2,
        attention_levels=(2,),
        num_groups=8,
        dropout=0.0,
        max_time=250.0,
    ),
    # PolyCrysDiff latent UNet: 16^3 x 4 latents, cross-attention to grain count / sphericity.
    # The paper gives no widths (§2.1: Stable Diffusion's design in 3D); ours, periodic because
    # the volumes wrap around (docs/polycrysdiff.md).
    "polycrysdiff_latent": UNetConfig(
        spatial_dims=3,
        in_channels=4,
        channels=(128, 256, 256),
        num_res_blocks=2,
        attention_levels=(1, 2),
        num_heads=4,
        num_groups=8,
        dropout=0.0,
        num_scalar_conditions=2,
        context_dim=64,
        periodic=True,
    ),
}


def unet_config(name: str, **overrides) -> UNetConfig:
    """Returns the named configuration (see ``UNET_CONFIGS``), with fields replaced by overrides."""
    if name not in UNET_CONFIGS:
        raise ValueError(
            f"name: unknown UNet configuration {name!r}; expected one of {sorted(UNET_CONFIGS)}"
        )
    return dataclasses.replace(UNET_CONFIGS[name], **overrides).validate()
