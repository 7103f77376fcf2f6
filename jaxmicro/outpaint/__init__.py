"""GrainPaint outpainting: block plans, CAD masks, and the executor that fills large volumes.

References:
    Hoffman et al., GrainPaint: multi-scale diffusion for large-scale microstructure (2025).
"""

from .plan import plan_blocks

__all__ = ["plan_blocks"]
