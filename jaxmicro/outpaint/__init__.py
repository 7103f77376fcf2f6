"""GrainPaint outpainting: block plans, CAD masks, the executor, and the whole pipeline.

``outpaint(key, eps_fn, schedule, ...)`` fills a box or a CAD part (``region_from_shape``,
``region_from_stl``) with grains and writes the volume, its grains and their statistics; the
pieces it composes (``plan_blocks``, ``outpaint_volume``, ``repaint_inpainter``,
``grain_statistics``, ``compare_statistics``) are public too.

References:
    Hoffman et al., GrainPaint: multi-scale diffusion for large-scale microstructure (2025).
"""

from .cad import mask_surface, read_stl, voxelize, write_stl
from .card import SAMPLER_KEYS, card_sampler, example_part
from .execute import outpaint_volume, repaint_inpainter
from .pipeline import denoiser_calls_per_block, outpaint, region_from_shape, region_from_stl
from .plan import plan_blocks, planned_order
from .report import (
    compare_statistics,
    grain_statistics,
    pooled_statistics,
    statistics_markdown,
)

__all__ = [
    "SAMPLER_KEYS",
    "card_sampler",
    "example_part",
    "compare_statistics",
    "denoiser_calls_per_block",
    "grain_statistics",
    "mask_surface",
    "outpaint",
    "outpaint_volume",
    "plan_blocks",
    "planned_order",
    "pooled_statistics",
    "read_stl",
    "region_from_shape",
    "region_from_stl",
    "repaint_inpainter",
    "statistics_markdown",
    "voxelize",
    "write_stl",
]
