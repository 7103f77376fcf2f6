"""The outpainting executor: runs a block plan through an inpainting sampler into a disk volume.

The volume lives on disk in ``directory`` as two ``.npy`` memory maps, so host memory holds one
batch of blocks at a time:

- ``values.npy``: (Z, Y, X, C) float32 generated field;
- ``written.npy``: (Z, Y, X) int32 index of the batch that wrote each voxel, -1 while unwritten;

and ``progress.json`` records the plan's fingerprint and how many batches are complete. When batch
``k`` runs, a voxel is *known* if it was written by a batch before ``k``; the sampler fills the rest
of each block and only those voxels are written, tagged ``k``. Because "known" is decided by the
batch tags and not by what happens to be on disk, a run interrupted in the middle of batch ``k``
resumes at batch ``k``, ignores its partial writes, and produces the same volume as an
uninterrupted run with the same key: batch ``k`` always gets ``fold_in(key, k)``.

Several processes (``jaxmicro.train.initialize_distributed``) share one mesh: process 0 alone
holds the volume files; for each batch it reads the known voxels and sends them to the others,
every process samples the blocks of its own devices, and process 0 writes the gathered result
before the next batch starts (so the dependency order between batches holds across processes).
The volume is the one a single process with the same devices and key writes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm.auto import tqdm

InpaintFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
"""``inpaint_fn(key, known, mask) -> samples``, all (B, b, b, b, C); mask = 1 where known."""


def repaint_inpainter(eps_fn, schedule, **repaint_options) -> InpaintFn:
    """``inpaint_fn`` for :func:`outpaint_volume` from a denoiser: RePaint with fixed options.

    Args:
        eps_fn: denoiser ``eps_fn(x, t)``.
        schedule: its diffusion schedule.
        repaint_options: keyword arguments of ``jaxmicro.diffusion.repaint_sample`` (resample,
            jump, plain_tail, num_steps, eta).
    """
    from jaxmicro.diffusion.repaint import repaint_sample

    def inpaint(key, known, mask):
        return repaint_sample(key, eps_fn, schedule, known, mask, **repaint_options)

    return inpaint


def plan_fingerprint(batches: Sequence[Sequence[tuple[int, int, int]]], block: int) -> str:
    """A short hash of a plan, stored with the volume so a resume uses the same plan."""
    text = json.dumps([block, [[list(c) for c in batch] for batch in batches]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _open(directory: Path, shape, channels: int, fingerprint: str, resume: bool):
    progress_path = directory / "progress.json"
    if resume and progress_path.exists():
        progress = json.loads(progress_path.read_text())
        if progress["plan"] != fingerprint:
            raise ValueError(
                f"resume: {directory} was written with another plan or block size "
                f"({progress['plan']} != {fingerprint}); start without --resume"
            )
        values = np.load(directory / "values.npy", mmap_mode="r+")
        written = np.load(directory / "written.npy", mmap_mode="r+")
        return values, written, int(progress["completed"])
    directory.mkdir(parents=True, exist_ok=True)
    values = np.lib.format.open_memmap(
        directory / "values.npy", mode="w+", dtype=np.float32, shape=(*shape, channels)
    )
    written = np.lib.format.open_memmap(
        directory / "written.npy", mode="w+", dtype=np.int32, shape=tuple(shape)
    )
    written[...] = -1
    _save_progress(directory, fingerprint, 0)
    return values, written, 0


def _save_progress(directory: Path, fingerprint: str, completed: int) -> None:
    tmp = directory / "progress.json.tmp"
    tmp.write_text(json.dumps({"plan": fingerprint, "completed": completed}))
    os.replace(tmp, directory / "progress.json")  # atomic: a crash leaves the old or the new


def _gather(values, written, corners, block: int, batch_index: int, batch_size: int):
    """Known values and masks of a batch, zero-padded to ``batch_size`` blocks."""
    channels = values.shape[-1]
    known = np.zeros((batch_size, block, block, block, channels), np.float32)
    mask = np.zeros((batch_size, block, block, block, channels), np.float32)
    for i, (z, y, x) in enumerate(corners):
        window = np.s_[z : z + block, y : y + block, x : x + block]
        tags = written[window]
        is_known = (tags >= 0) & (tags < batch_index)
        known[i] = np.where(is_known[..., None], values[window], 0.0)
        mask[i] = is_known[..., None]
    return known, mask


def outpaint_volume(
    key: jax.Array,
    inpaint_fn: InpaintFn,
    batches: Sequence[Sequence[tuple[int, int, int]]],
    directory: str | Path,
    *,
    volume_shape: Sequence[int],
    channels: int = 1,
    block: int = 32,
    resume: bool = False,
    mesh: jax.sharding.Mesh | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Generates a volume block by block, following a plan from ``plan_blocks``.

    Args:
        key: PRNG key; batch k uses ``fold_in(key, k)``.
        inpaint_fn: ``(key, known, mask) -> samples`` with known, mask and samples of shape
            (B, block, block, block, C), mask = 1 where known; e.g. a closure over
            ``jaxmicro.diffusion.repaint_sample``. It is jitted here, once, for B = the largest
            batch of the plan (smaller batches are zero-padded).
        batches: the plan, list of batches of (z, y, x) block corners.
        directory: where the volume, the batch tags and the progress file live.
        volume_shape: (Z, Y, X).
        channels: C.
        block: block edge in voxels, as planned.
        resume: continue an interrupted run in ``directory`` (the plan must be the same).
        mesh: optional device mesh with a ``'batch'`` axis; blocks of a batch are sharded over it
            (batches are zero-padded to a multiple of the axis size).
        stop_after: stop after this many batches in total (to test interruption).
        progress: show a progress bar.

    Returns:
        The (Z, Y, X, C) float32 volume as a read-only memory map (None on the processes
        other than 0 of a multi-process run; every process must call this alike).

    Raises:
        ValueError: a bad ``volume_shape``, an empty plan, a resume with another plan, or
            several processes without a ``mesh``.
    """
    from jaxmicro.train.parallel import gather, host_to_global, is_primary, on_primary

    directory = Path(directory)
    shape = tuple(int(n) for n in volume_shape)
    if len(shape) != 3:
        raise ValueError(f"volume_shape: expected (Z, Y, X), got {volume_shape}")
    if not batches:
        raise ValueError("batches: the plan is empty")
    several = jax.process_count() > 1
    if several and mesh is None:
        raise ValueError("mesh: a multi-process run needs a mesh over all processes' devices")
    fingerprint = plan_fingerprint(batches, block)
    files = {}

    def open_volume():
        files["values"], files["written"], first = _open(
            directory, shape, channels, fingerprint, resume
        )
        return first

    start = on_primary(open_volume)  # the files live with process 0 only
    batch_size = max(len(b) for b in batches)
    if mesh is not None:
        devices = mesh.shape["batch"]
        batch_size = -(-batch_size // devices) * devices  # pad so the batch splits evenly
        sharding = NamedSharding(mesh, PartitionSpec("batch"))
        replicated = NamedSharding(mesh, PartitionSpec())
        run = jax.jit(
            inpaint_fn, in_shardings=(replicated, sharding, sharding), out_shardings=sharding
        )
    else:
        sharding = None
        run = jax.jit(inpaint_fn)
    end = len(batches) if stop_after is None else min(stop_after, len(batches))
    empty = np.zeros((batch_size, block, block, block, channels), np.float32)
    for k in tqdm(
        range(start, end),
        initial=start,
        total=len(batches),
        disable=not progress or not is_primary(),
        desc="outpaint",
        unit="batch",
    ):
        corners = batches[k]
        if is_primary():
            known, mask = _gather(files["values"], files["written"], corners, block, k, batch_size)
        else:
            known, mask = empty, empty
        if several:
            from jax.experimental import multihost_utils

            known, mask = multihost_utils.broadcast_one_to_all((known, mask))
            known, mask = np.asarray(known), np.asarray(mask)
        inputs = (known, mask) if sharding is None else host_to_global((known, mask), sharding)
        out = gather(run(jax.random.fold_in(key, k), *inputs))
        if is_primary():
            values, written = files["values"], files["written"]
            for i, (z, y, x) in enumerate(corners):
                window = np.s_[z : z + block, y : y + block, x : x + block]
                fresh = mask[i, ..., 0] == 0
                values[window] = np.where(fresh[..., None], out[i], values[window])
                written[window] = np.where(fresh, k, written[window])
            values.flush()
            written.flush()
            _save_progress(directory, fingerprint, k + 1)
    files.clear()
    if not is_primary():
        return None
    return np.load(directory / "values.npy", mmap_mode="r")
