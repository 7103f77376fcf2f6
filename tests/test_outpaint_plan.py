"""Planner guarantees: coverage, no overlap inside a batch, dependency order (GrainPaint §2.5)."""

import numpy as np
import pytest

from jaxmicro.outpaint import plan_blocks
from jaxmicro.outpaint.plan import block_levels, planned_order


def _boxes_overlap(a, b, block):
    return all(abs(int(p) - int(q)) < block for p, q in zip(a, b, strict=True))


def _check_guarantees(batches, shape, block, batch_size, region=None):
    coverage = np.zeros(shape, dtype=np.int32)
    done = []
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        for i, a in enumerate(batch):
            z, y, x = a
            assert 0 <= z <= shape[0] - block and 0 <= y <= shape[1] - block
            assert 0 <= x <= shape[2] - block
            for b in batch[i + 1 :]:
                assert not _boxes_overlap(a, b, block), f"{a} and {b} overlap in one batch"
            coverage[z : z + block, y : y + block, x : x + block] += 1
        done.extend(batch)
    region = np.ones(shape, bool) if region is None else region
    assert coverage[region].min() >= 1, "some voxels are not covered"
    assert len(set(done)) == len(done), "a block is planned twice"
    return done


@pytest.mark.parametrize("mode", ["grid", "centre"])
@pytest.mark.parametrize("shape", [(32, 32, 32), (64, 64, 64), (96, 80, 50), (100, 100, 100)])
def test_plan_covers_and_batches_do_not_overlap(shape, mode):
    batches = plan_blocks(shape, block=16, batch_size=5, mode=mode)
    _check_guarantees(batches, shape, 16, 5)


@pytest.mark.parametrize("mode", ["grid", "centre"])
def test_every_block_after_the_earlier_planned_blocks_it_overlaps(mode):
    shape, block = (70, 90, 60), 16
    batches = plan_blocks(shape, block=block, batch_size=7, mode=mode)
    order = [tuple(int(v) for v in c) for c in planned_order(shape, block=block, mode=mode)]
    batch_of = {c: k for k, batch in enumerate(batches) for c in batch}
    assert set(batch_of) == set(order)
    checked = 0
    for j, later in enumerate(order):
        for earlier in order[:j]:
            if _boxes_overlap(earlier, later, block):
                assert batch_of[earlier] < batch_of[later], (earlier, later)
                checked += 1
    assert checked > len(order)  # the plan really has overlaps to respect


def test_centre_plan_grows_from_the_centre():
    """Every block after the first overlaps a block of an earlier batch (no isolated starts)."""
    block = 16
    batches = plan_blocks((80, 48, 64), block=block, batch_size=3, mode="centre")
    done = list(batches[0][:1])
    assert len(batches[0]) == 1
    for batch in batches[1:]:
        for c in batch:
            assert any(_boxes_overlap(c, d, block) for d in done), c
        done.extend(batch)


def test_levels_follow_overlaps_in_planned_order():
    corners = np.array([[0, 0, 0], [8, 0, 0], [40, 0, 0], [16, 0, 0]])
    # 1 overlaps 0; 2 overlaps none; 3 overlaps 1 (|16-8| < 16) but not 0 (|16-0| = 16).
    np.testing.assert_array_equal(block_levels(corners, 16), [0, 1, 0, 2])


def test_grid_plan_matches_grainpaint_stage_one():
    """The first batch of the 224^3 plan is stage 1 of Table 3: corners on a 48-voxel grid."""
    batches = plan_blocks((224, 224, 224), batch_size=10_000)
    first = np.array(batches[0])
    assert len(first) == 5**3
    np.testing.assert_array_equal(np.unique(first), [0, 48, 96, 144, 192])
    # Every voxel covered, and the gaps of stage 1 are 16 voxels wide as in the paper.
    assert len(batches) == 8


def test_mask_keeps_only_intersecting_blocks():
    shape, block = (64, 64, 64), 16
    zz, yy, xx = np.indices(shape)
    ball = (zz - 32) ** 2 + (yy - 32) ** 2 + (xx - 32) ** 2 <= 20**2
    full = plan_blocks(shape, block=block, batch_size=4)
    masked = plan_blocks(shape, block=block, batch_size=4, mask=ball)
    done = _check_guarantees(masked, shape, block, 4, region=ball)
    assert len(done) < sum(map(len, full))
    for z, y, x in done:
        assert ball[z : z + block, y : y + block, x : x + block].any()


def test_centre_plan_starts_at_the_centre():
    batches = plan_blocks((128, 64, 96), block=32, mode="centre")
    assert batches[0] == [((128 - 32) // 2, (64 - 32) // 2, (96 - 32) // 2)]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(volume_shape=(16, 64, 64)), "volume_shape"),
        (dict(volume_shape=(64, 64)), "volume_shape"),
        (dict(volume_shape=(64, 64, 64), mode="spiral"), "mode"),
        (dict(volume_shape=(64, 64, 64), batch_size=0), "batch_size"),
        (dict(volume_shape=(64, 64, 64), spacing=3.0), "spacing"),
        (dict(volume_shape=(64, 64, 64), mask=np.ones((8, 8, 8), bool)), "mask"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_blocks(**kwargs)
