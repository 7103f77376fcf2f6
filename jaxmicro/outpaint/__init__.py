"""GrainPaint outpainting: block plans, CAD masks, and the executor that fills large volumes.

References:
    Hoffman et al., GrainPaint: multi-scale diffusion for large-scale microstructure (2025).
"""

from .cad import read_stl, voxelize, write_stl
from .execute import outpaint_volume, repaint_inpainter
from .plan import plan_blocks, planned_order
from .report import compare_statistics, grain_statistics, statistics_markdown

__all__ = [
    "compare_statistics",
    "grain_statistics",
    "outpaint_volume",
    "plan_blocks",
    "planned_order",
    "read_stl",
    "repaint_inpainter",
    "statistics_markdown",
    "voxelize",
    "write_stl",
]
