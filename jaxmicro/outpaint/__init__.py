"""GrainPaint outpainting: block plans, CAD masks, and the executor that fills large volumes.

References:
    Hoffman et al., GrainPaint: multi-scale diffusion for large-scale microstructure (2025).
"""

from .cad import read_stl, voxelize, write_stl
from .execute import outpaint_volume
from .plan import plan_blocks, planned_order

__all__ = [
    "outpaint_volume",
    "plan_blocks",
    "planned_order",
    "read_stl",
    "voxelize",
    "write_stl",
]
