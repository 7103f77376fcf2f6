"""The executor: known voxels kept, every voxel written once, resume == uninterrupted, sharding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.outpaint import outpaint_volume, plan_blocks

SHAPE, BLOCK = (24, 20, 28), 8


def fake_inpaint(key, known, mask):
    """Keeps known voxels; fills each block's unknown voxels with one key-dependent constant
    plus the mean of its known voxels (so the result depends on the context it was given)."""
    batch = known.shape[0]
    constants = jax.random.uniform(key, (batch,) + (1,) * (known.ndim - 1))
    context = jnp.sum(known * mask, axis=(1, 2, 3, 4), keepdims=True) / jnp.maximum(
        jnp.sum(mask, axis=(1, 2, 3, 4), keepdims=True), 1.0
    )
    return jnp.where(mask > 0, known, constants + context)


def _run(tmp_path, name, **kwargs):
    batches = plan_blocks(SHAPE, block=BLOCK, batch_size=4)
    out = outpaint_volume(
        jax.random.key(3),
        fake_inpaint,
        batches,
        tmp_path / name,
        volume_shape=SHAPE,
        block=BLOCK,
        progress=False,
        **kwargs,
    )
    return np.array(out), batches


def test_every_voxel_written_by_the_first_block_that_covers_it(tmp_path):
    values, batches = _run(tmp_path, "full")
    written = np.load(tmp_path / "full" / "written.npy")
    first = np.full(SHAPE, -1)
    for k, batch in enumerate(batches):
        for z, y, x in batch:
            window = first[z : z + BLOCK, y : y + BLOCK, x : x + BLOCK]
            window[window < 0] = k
    np.testing.assert_array_equal(written, first)
    # Within a block, the voxels it generated share one value: later blocks did not overwrite them.
    for k, batch in enumerate(batches):
        for z, y, x in batch:
            mine = written[z : z + BLOCK, y : y + BLOCK, x : x + BLOCK] == k
            vals = values[z : z + BLOCK, y : y + BLOCK, x : x + BLOCK][mine]
            if vals.size:
                np.testing.assert_allclose(vals, vals.flat[0], rtol=1e-6)


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    full, batches = _run(tmp_path, "full")
    _run(tmp_path, "cut", stop_after=3)
    # Simulate a crash in the middle of batch 3: some of its voxels written, progress not saved.
    z, y, x = batches[3][0]
    values = np.load(tmp_path / "cut" / "values.npy", mmap_mode="r+")
    written = np.load(tmp_path / "cut" / "written.npy", mmap_mode="r+")
    window = np.s_[z : z + BLOCK, y : y + BLOCK, x : x + BLOCK]
    fresh = written[window] < 0  # the executor only ever writes a block's unknown voxels
    assert fresh.any()
    values[window] = np.where(fresh[..., None], 99.0, values[window])
    written[window] = np.where(fresh, 3, written[window])
    values.flush(), written.flush()
    resumed, _ = _run(tmp_path, "cut", resume=True)
    np.testing.assert_array_equal(resumed, full)


def test_resume_refuses_another_plan(tmp_path):
    _run(tmp_path, "a", stop_after=1)
    batches = plan_blocks(SHAPE, block=BLOCK, batch_size=2)
    with pytest.raises(ValueError, match="resume"):
        outpaint_volume(
            jax.random.key(3),
            fake_inpaint,
            batches,
            tmp_path / "a",
            volume_shape=SHAPE,
            block=BLOCK,
            resume=True,
            progress=False,
        )


def test_sharded_over_four_devices_equals_single_device(tmp_path):
    single, _ = _run(tmp_path, "single")
    mesh = jax.make_mesh((4,), ("batch",))
    sharded, _ = _run(tmp_path, "sharded", mesh=mesh)
    np.testing.assert_array_equal(sharded, single)
