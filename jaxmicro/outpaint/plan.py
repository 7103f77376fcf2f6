"""Block plans for outpainting: which cubic windows to generate, and in what order.

A plan is a list of batches; each batch is a list of block corners ``(z, y, x)`` in voxels. A block
is the cube ``[z, z + block) x [y, y + block) x [x, x + block)``. Every plan satisfies:

1. **coverage**: the blocks cover every voxel of the volume (or of the CAD mask, when given);
2. **independence**: blocks within one batch never overlap, so a batch can run in parallel;
3. **dependency order**: every block comes after all earlier-planned blocks it overlaps, so the
   voxels it shares with them are known (already written) when it is generated.

Planning is two steps. First the blocks are listed in a *planned order* (the GrainPaint stages for
``mode='grid'``, rings growing out of the centre for ``mode='centre'``). Then each block gets a
level, one more than the highest level among the earlier-planned blocks it overlaps; sorting by
level gives 2 and 3 (two blocks of one level never overlap: the later one would depend on the
earlier one), and each level is cut into batches of at most ``batch_size``. Overlaps are found with
a KD-tree in the Chebyshev metric, so planning is O(N log N) in the number of blocks.

References:
    Hoffman et al., GrainPaint (2025), §2.5, Algorithms 1-2, Table 3 (grid plan); §3.3 (centre
    plan for anisotropic microstructures).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

Corner = tuple[int, int, int]

_GRID_STAGE_OFFSETS = (  # Table 3: which axes (z, y, x) use the half-spacing offset in each stage
    (0, 0, 0),
    (0, 0, 1),
    (1, 1, 1),
    (1, 1, 0),
    (1, 0, 1),
    (0, 1, 1),
    (1, 0, 0),
    (0, 1, 0),
)
# §3.3 with 32-voxel blocks: the centre cross overlaps by 16 voxels, the rest by 8 (as the grid
# plan). Other block sizes keep the same fractions of the block.
_CROSS_OVERLAP = 0.5
_FILL_OVERLAP = 0.25


def _axis_positions(n: int, block: int, start: int, step: int) -> list[int]:
    """Corners start, start + step, ... that fit in [0, n); [] if the first does not fit."""
    return list(range(start, n - block + 1, step))


def _grid_axis(n: int, block: int, spacing: float) -> tuple[list[int], list[int]]:
    """Per-axis corners of the two grid families (offset 0 and offset spacing/2).

    The last block is clamped to end at ``n`` when the regular grid leaves voxels uncovered, so
    coverage holds for any size >= block.
    """
    step = int(round(spacing * block))
    if step <= 0:
        raise ValueError(f"spacing: must be positive, got {spacing}")
    if step > 2 * block:
        raise ValueError(
            f"spacing: {spacing} blocks leaves gaps the half-offset blocks cannot fill "
            "(need spacing <= 2)"
        )
    first = _axis_positions(n, block, 0, step)
    second = _axis_positions(n, block, step // 2, step)
    covered_to = max(p + block for p in first + second)
    if covered_to < n:
        (second if len(second) < len(first) else first).append(n - block)
    return first, second


def _grid_order(shape: Sequence[int], block: int, spacing: float) -> np.ndarray:
    """Blocks of the 8-stage GrainPaint plan in stage order, shape (N, 3)."""
    families = [_grid_axis(n, block, spacing) for n in shape]
    stages = []
    for offsets in _GRID_STAGE_OFFSETS:
        axes = [families[a][o] for a, o in enumerate(offsets)]
        if all(axes):
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
            stages.append(grid)
    return np.concatenate(stages, axis=0)


def _outward(n: int, block: int, step: int) -> list[int]:
    """Corners from the centre outwards along one axis, clamped to the ends, centre first."""
    centre = (n - block) // 2
    positions = [centre]
    lo, hi = centre, centre
    while lo > 0 or hi < n - block:
        if lo > 0:
            lo = max(lo - step, 0)
            positions.append(lo)
        if hi < n - block:
            hi = min(hi + step, n - block)
            positions.append(hi)
    return positions


def _centre_order(shape: Sequence[int], block: int) -> np.ndarray:
    """Blocks of the centre plan: the axis-aligned cross first, then outward rings, (N, 3)."""
    cross_step = block - int(round(_CROSS_OVERLAP * block))
    fill_step = block - int(round(_FILL_OVERLAP * block))
    cross_axes = [_outward(n, block, cross_step) for n in shape]
    centre = np.array([axis[0] for axis in cross_axes])
    cross = [centre]
    for a, axis in enumerate(cross_axes):
        for p in axis[1:]:
            c = centre.copy()
            c[a] = p
            cross.append(c)
    cross = np.array(cross)
    fill_axes = [_outward(n, block, fill_step) for n in shape]
    fill = np.stack(np.meshgrid(*fill_axes, indexing="ij"), axis=-1).reshape(-1, 3)
    # Ring index = Chebyshev distance in outward steps; the order inside a ring is the grid order.
    ranks = np.stack(
        np.meshgrid(*[np.arange(len(a)) for a in fill_axes], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    ring = np.max((ranks + 1) // 2, axis=1)
    fill = fill[np.argsort(ring, kind="stable")]
    return np.concatenate([cross, fill], axis=0)


def _unique_rows(corners: np.ndarray) -> np.ndarray:
    """Drops repeated corners, keeping the first occurrence (planned order preserved)."""
    _, first = np.unique(corners, axis=0, return_index=True)
    return corners[np.sort(first)]


def _intersects_mask(corners: np.ndarray, block: int, mask: np.ndarray) -> np.ndarray:
    """Whether each block holds at least one voxel of ``mask``, via a summed-volume table."""
    table = np.zeros(tuple(s + 1 for s in mask.shape), dtype=np.int64)
    table[1:, 1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1).cumsum(2)
    z0, y0, x0 = corners.T
    z1, y1, x1 = z0 + block, y0 + block, x0 + block
    total = (
        table[z1, y1, x1]
        - table[z0, y1, x1]
        - table[z1, y0, x1]
        - table[z1, y1, x0]
        + table[z0, y0, x1]
        + table[z0, y1, x0]
        + table[z1, y0, x0]
        - table[z0, y0, x0]
    )
    return total > 0


def block_levels(corners: np.ndarray, block: int) -> np.ndarray:
    """Level of each block in planned order: 1 + the highest level of earlier blocks it overlaps.

    Args:
        corners: (N, 3) integer block corners in planned order.
        block: block edge length in voxels.

    Returns:
        (N,) int levels; blocks of equal level never overlap.
    """
    pairs = cKDTree(corners).query_pairs(r=block - 1, p=np.inf, output_type="ndarray")
    levels = np.zeros(len(corners), dtype=np.int64)
    if len(pairs) == 0:
        return levels
    pairs = np.sort(pairs, axis=1)  # (earlier, later)
    pairs = pairs[np.argsort(pairs[:, 1], kind="stable")]
    bounds = np.searchsorted(pairs[:, 1], np.arange(len(corners) + 1))
    for j in range(len(corners)):
        earlier = pairs[bounds[j] : bounds[j + 1], 0]
        if len(earlier):
            levels[j] = levels[earlier].max() + 1
    return levels


def planned_order(
    volume_shape: Sequence[int],
    *,
    block: int = 32,
    spacing: float = 1.5,
    mode: str = "grid",
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """All blocks of a plan in planned order (before leveling and batching), shape (N, 3).

    Arguments as in :func:`plan_blocks`.
    """
    shape = tuple(int(n) for n in volume_shape)
    if len(shape) != 3:
        raise ValueError(f"volume_shape: expected 3 sizes (Z, Y, X), got {volume_shape}")
    if block < 4 or min(shape) < block:
        raise ValueError(f"volume_shape: every size must be >= block={block} >= 4, got {shape}")
    if mode == "grid":
        corners = _grid_order(shape, block, spacing)
    elif mode == "centre":
        corners = _centre_order(shape, block)
    else:
        raise ValueError(f"mode: unknown value {mode!r}; expected 'grid' or 'centre'")
    corners = _unique_rows(corners)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != shape:
            raise ValueError(f"mask: expected shape {shape}, got {mask.shape}")
        corners = corners[_intersects_mask(corners, block, mask)]
    return corners


def plan_blocks(
    volume_shape: Sequence[int],
    *,
    block: int = 32,
    spacing: float = 1.5,
    batch_size: int = 24,
    mode: str = "grid",
    mask: np.ndarray | None = None,
) -> list[list[Corner]]:
    """Plans the blocks that outpaint a volume, batched in dependency order.

    Args:
        volume_shape: (Z, Y, X) voxels, each >= ``block``.
        block: edge of the cubic generation window in voxels (GrainPaint: 32).
        spacing: ``mode='grid'`` only: distance between corners of one stage in blocks (1.5 gives
            16-voxel gaps, filled by the offset stages with 8-voxel overlaps).
        batch_size: most blocks per batch.
        mode: ``'grid'``, the 8-stage plan of GrainPaint (Table 3) for isotropic structures, or
            ``'centre'``, the anisotropic plan of §3.3 (centre cross with 16-voxel overlap, then
            outward with 8), for any size.
        mask: optional (Z, Y, X) boolean region to fill (a voxelized CAD part): only blocks that
            intersect it are kept. Coverage then holds for the mask's voxels.

    Returns:
        Batches of block corners ``(z, y, x)``, to be generated in list order.

    References:
        Hoffman et al., GrainPaint (2025), Algorithms 1-2, Table 3, §3.3.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    corners = planned_order(volume_shape, block=block, spacing=spacing, mode=mode, mask=mask)
    if len(corners) == 0:
        return []
    levels = block_levels(corners, block)
    order = np.argsort(levels, kind="stable")
    starts = np.searchsorted(levels[order], np.unique(levels))
    batches: list[list[Corner]] = []
    for members in np.split(corners[order], starts[1:]):
        rows = [tuple(int(v) for v in c) for c in members]
        batches.extend(rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
    return batches
