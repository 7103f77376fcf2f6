"""The outpainting pipeline: a denoiser and a region in, grains and their report out.

``outpaint(key, eps_fn, schedule, ...)`` composes the pieces of this package in the order of
GrainPaint §2.5-2.6 and §3.2:

1. plan the blocks that cover the region (``plan_blocks``: box, or CAD mask from
   ``region_from_stl``);
2. inpaint them batch by batch with RePaint from their generated neighbours into a disk-backed,
   resumable volume (``repaint_inpainter`` + ``outpaint_volume``, sharded over ``mesh``);
3. segment the continuous grain-value field into grains (``jaxmicro.grains.segment_continuous``);
4. measure the grains and compare them with reference volumes measured the same way
   (``grain_statistics``, ``compare_statistics``; grains cut by the box or the part surface are
   dropped on both sides by default, issue #16).

It reads any denoiser ``eps_fn(x, t) -> eps`` with ``x`` ``(B, b, b, b, C)``: build it with
``jaxmicro.train.denoiser`` (or ``load_model(...).eps_fn()``), which turns ``v``/``x0`` outputs
and learned-variance outputs (``2C`` channels) into noise predictions. Files written into
``out_dir``:

- ``volume/``: the executor's memory maps and ``progress.json`` (what ``resume`` continues);
- ``grain_ids.npy``: ``(Z, Y, X)`` int32 grain IDs of the whole volume, 0 outside a CAD part;
- ``volume.vti``: the field, the grain IDs and the region (ParaView);
- ``slices.png``: the three central slices of field and grains;
- ``statistics.md``: the grain statistics table (KL / KS against the reference, when given);
- ``summary.json``: the returned summary, written last (its presence means the run finished).

In a multi-process run (a ``mesh`` over every process's devices) each batch of blocks is split
over all devices, and process 0 keeps the volume, segments it and writes the files; every
process returns the same summary.

References:
    Hoffman et al., GrainPaint (2025), §2.3-2.6, §3.2, Table 1; Lugmayr et al., RePaint (2022).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from jaxmicro.outpaint.cad import read_stl, voxelize
from jaxmicro.outpaint.execute import outpaint_volume, repaint_inpainter
from jaxmicro.outpaint.plan import plan_blocks
from jaxmicro.outpaint.report import (
    BOUNDARY_RULES,
    STATISTICS,
    compare_statistics,
    grain_statistics,
    pooled_statistics,
    save_slices,
    statistics_markdown,
)

__all__ = ["outpaint", "region_from_shape", "region_from_stl", "denoiser_calls_per_block"]

MODES = ("grid", "centre")
SEGMENTATIONS = ("regions", "dbscan")
FILES = ("volume", "grain_ids.npy", "volume.vti", "slices.png", "statistics.md", "summary.json")


def region_from_shape(shape: Sequence[int] | str, block: int) -> tuple[tuple[int, int, int], None]:
    """A box region: ``((Z, Y, X), None)``.

    Args:
        shape: three sizes in voxels, or the text ``'Z,Y,X'``.
        block: the model's block edge; every size must be at least one block.

    Raises:
        ValueError: not three integers, or a size below ``block`` (names ``shape``).
    """
    if isinstance(shape, str):
        try:
            shape = [int(v) for v in shape.split(",")]
        except ValueError:
            raise ValueError(f"shape: expected Z,Y,X integers, got {shape!r}") from None
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < block:
        raise ValueError(f"shape: expected 3 sizes >= the block size {block}, got {shape}")
    return shape, None


def region_from_stl(
    path: str | os.PathLike, voxel: float, block: int
) -> tuple[tuple[int, int, int], np.ndarray]:
    """A CAD region: the part's voxelization, zero-padded so each axis holds a block.

    Args:
        path: closed triangle mesh, ASCII or binary STL (x, y, z in its own units).
        voxel: voxel edge in STL units (> 0).
        block: the model's block edge.

    Returns:
        ``((Z, Y, X), mask)`` with ``mask`` ``(Z, Y, X)`` bool, True inside the part; the part
        starts at voxel ``(0, 0, 0)`` and axes shorter than ``block`` are padded to ``block``.

    Raises:
        ValueError: ``voxel`` not positive, an unreadable STL, or no voxel inside the part.
    """
    if voxel is None or not voxel > 0:
        raise ValueError(f"voxel: a positive voxel size is required with an STL, got {voxel}")
    mask, _ = voxelize(read_stl(path), float(voxel))
    shape = tuple(max(int(n), block) for n in mask.shape)
    padded = np.zeros(shape, bool)
    padded[tuple(slice(0, n) for n in mask.shape)] = mask
    if not padded.any():
        raise ValueError(f"voxel: the part {path} has no voxel inside at voxel size {voxel}")
    return shape, padded


def denoiser_calls_per_block(
    num_levels: int, *, resample: int, jump: int, plain_tail: int, num_steps: int | None
) -> int:
    """Denoiser evaluations RePaint spends on one block (reverse steps of its level path)."""
    from jaxmicro.diffusion.repaint import repaint_schedule

    levels = repaint_schedule(
        num_levels, resample=resample, jump=jump, plain_tail=plain_tail, num_steps=num_steps
    )
    return int(np.sum(np.diff(levels) < 0))


def _check_eps_fn(eps_fn: Callable, block: int, channels: int, mesh) -> None:
    """Traces ``eps_fn`` once on abstract inputs: it must map (B, b, b, b, C) to the same shape."""
    batch = 1 if mesh is None else int(mesh.shape["batch"])
    x = jax.ShapeDtypeStruct((batch, block, block, block, channels), np.float32)
    t = jax.ShapeDtypeStruct((batch,), np.int32)
    out = jax.eval_shape(eps_fn, x, t)
    if getattr(out, "shape", None) != x.shape:
        raise ValueError(
            f"eps_fn: expected noise predictions of shape {x.shape} for x of that shape, got "
            f"{getattr(out, 'shape', type(out).__name__)}; wrap the network with "
            "jaxmicro.train.denoiser (it splits learned-variance channels and converts v/x0)"
        )


def _json_safe(value):
    """NaN and infinities become None (strict JSON); tuples become lists."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _mean_median(values: np.ndarray) -> dict:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"mean": None, "median": None}
    return {"mean": float(finite.mean()), "median": float(np.median(finite))}


def _completed_batches(directory: Path) -> int:
    progress = directory / "progress.json"
    return int(json.loads(progress.read_text())["completed"]) if progress.exists() else 0


def outpaint(
    key: jax.Array,
    eps_fn: Callable[[jax.Array, jax.Array], jax.Array],
    schedule,
    *,
    block: int,
    out_dir: str | os.PathLike,
    shape: Sequence[int] | None = None,
    mask: np.ndarray | None = None,
    channels: int = 1,
    batch_size: int = 24,
    resample: int = 10,
    jump: int = 1,
    plain_tail: int = 25,
    num_steps: int | None = None,
    eta: float = 1.0,
    mode: str = "grid",
    segment: str = "regions",
    reference: np.ndarray | Sequence[np.ndarray] | None = None,
    boundary: str = "exclude",
    resume: bool = False,
    overwrite: bool = False,
    mesh: jax.sharding.Mesh | None = None,
    progress: bool = True,
) -> dict:
    """Outpaints a box or a CAD part with grains, segments it, and writes the report files.

    Args:
        key: PRNG key; batch ``k`` of the plan draws ``fold_in(key, k)`` (resume is exact).
        eps_fn: denoiser ``eps_fn(x, t) -> eps``, ``x`` ``(B, block, block, block, channels)``,
            ``t`` ``(B,)`` int steps (e.g. ``jaxmicro.train.denoiser(...)``).
        schedule: the diffusion schedule of ``eps_fn`` (``T = schedule.num_steps`` levels).
        block: block edge in voxels (the model's training window).
        out_dir: output folder (see the module docstring for its files).
        shape: ``(Z, Y, X)`` volume size, each >= ``block``; may be omitted with ``mask``.
        mask: ``(Z, Y, X)`` bool region (e.g. from ``region_from_stl``); only blocks meeting it
            are generated and grain IDs outside it are 0.
        channels: ``C`` channels of the field; grains are segmented from channel 0.
        batch_size: blocks per batch (padded to a multiple of the mesh's batch axis).
        resample: RePaint passes per resampled step ``U`` (1: no resampling).
        jump: RePaint jump length ``j``.
        plain_tail: final trajectory steps without resampling.
        num_steps: RePaint on a DDIM sub-trajectory of this many steps (None: all ``T``).
        eta: DDIM stochasticity of the reverse steps (1: ancestral, DDPM's posterior on
            one-level steps).
        mode: block plan, ``'grid'`` (GrainPaint Table 3) or ``'centre'`` (§3.3).
        segment: ``'regions'`` or ``'dbscan'`` (``segment_continuous``).
        reference: integer grain-ID volumes ``(Z, Y, X)``, ``(N, Z, Y, X)`` or a sequence, to
            compare the grain statistics with, or their statistics measured once with
            ``pooled_statistics(..., boundary=boundary)`` (None: the volume's statistics alone).
        boundary: how both sides are measured (``grain_statistics``): ``'exclude'`` drops the
            grains cut by the box faces or the part surface (default), ``'include'`` keeps them;
            ``'periodic'`` is refused here (an outpainted volume is not periodic).
        resume: continue the run in ``out_dir`` (same plan; a fresh start when none is there).
        overwrite: empty a non-empty ``out_dir`` first (else it is refused, unless resuming).
        mesh: device mesh with a ``'batch'`` axis; each batch of blocks is sharded over it.
        progress: show a progress bar.

    Returns:
        The summary, also written to ``summary.json``: ``shape``, ``block``, ``blocks``,
        ``batches``, ``devices``, ``sampler`` (the RePaint settings), ``denoiser_calls_per_block``,
        ``denoiser_calls`` (blocks x calls), ``region_voxels``, ``batches_run`` and
        ``seconds_generation`` (this call, compilation included), ``voxels_per_minute`` (region
        voxels generated in this call per minute; None when nothing was left to generate),
        ``seconds_total``, ``grains`` (segmented), ``grains_measured`` (after ``boundary``),
        ``boundary``, ``generated`` (mean and median of each statistic), ``statistics``
        (``compare_statistics`` against the reference, or None) and ``files``.

    Raises:
        ValueError: an argument out of range (named), an ``eps_fn`` whose output is not shaped
            like its input, an ``out_dir`` that holds another run, or a generated volume with
            non-finite values (``eps_fn`` diverged; ``volume/`` is kept for inspection).

    References:
        GrainPaint §2.3-2.6 (RePaint, block plans, segmentation), §3.2 and Table 1 (statistics).
    """
    start_total = time.perf_counter()
    if not isinstance(block, int | np.integer) or block < 2:
        raise ValueError(f"block: expected an integer >= 2, got {block!r}")
    block = int(block)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim != 3 or mask.dtype != bool or min(mask.shape) < block or not mask.any():
            raise ValueError(
                f"mask: expected a (Z, Y, X) bool region with sizes >= {block} and a voxel "
                f"inside, got {mask.dtype} {mask.shape}"
            )
        if shape is not None and tuple(shape) != mask.shape:
            raise ValueError(f"shape: {tuple(shape)} differs from the mask's {mask.shape}")
        shape = mask.shape
    if shape is None:
        raise ValueError("shape: a volume size (or a mask) is required")
    shape, _ = region_from_shape(shape, block)
    for name, value, low in (
        ("channels", channels, 1),
        ("batch_size", batch_size, 1),
        ("resample", resample, 1),
        ("jump", jump, 1),
        ("plain_tail", plain_tail, 0),
    ):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    levels = int(schedule.num_steps)
    if num_steps is not None and not 1 <= num_steps <= levels:
        raise ValueError(f"num_steps: expected 1..{levels} (the schedule's T), got {num_steps}")
    if not (isinstance(eta, int | float) and 0.0 <= eta <= 1.0):
        raise ValueError(f"eta: expected a number in [0, 1], got {eta!r}")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if segment not in SEGMENTATIONS:
        raise ValueError(f"segment: expected one of {SEGMENTATIONS}, got {segment!r}")
    if boundary not in BOUNDARY_RULES or boundary == "periodic":
        raise ValueError(f"boundary: expected 'exclude' or 'include', got {boundary!r}")
    if isinstance(reference, dict):  # statistics measured once (pooled_statistics)
        if set(reference) < set(STATISTICS):
            raise ValueError(
                f"reference: statistics must hold {STATISTICS}, got {sorted(reference)}"
            )
        reference = {name: np.asarray(reference[name], np.float64) for name in STATISTICS}
    elif reference is not None:
        if isinstance(reference, np.ndarray) and reference.ndim == 3:
            reference = [reference]
        reference = [np.asarray(r) for r in reference]
        if not reference or any(
            r.ndim != 3 or not np.issubdtype(r.dtype, np.integer) for r in reference
        ):
            raise ValueError(
                "reference: expected integer grain-ID volumes (Z, Y, X) or (N, Z, Y, X)"
            )
    from jaxmicro.train.parallel import on_primary, prepare_output_dir_once

    _check_eps_fn(eps_fn, block, channels, mesh)
    out = prepare_output_dir_once(out_dir, overwrite=overwrite, resume=resume, name="out_dir")

    batches = plan_blocks(shape, block=block, batch_size=batch_size, mode=mode, mask=mask)
    calls = denoiser_calls_per_block(
        levels, resample=resample, jump=jump, plain_tail=plain_tail, num_steps=num_steps
    )
    inpaint = repaint_inpainter(
        eps_fn,
        schedule,
        resample=resample,
        jump=jump,
        plain_tail=plain_tail,
        num_steps=num_steps,
        eta=float(eta),
    )
    first = on_primary(lambda: _completed_batches(out / "volume")) if resume else 0
    start = time.perf_counter()
    outpaint_volume(
        key,
        inpaint,
        batches,
        out / "volume",
        volume_shape=shape,
        channels=channels,
        block=block,
        resume=resume,
        mesh=mesh,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    # The volume is on process 0's disk: it measures and writes, every process returns the same.
    return on_primary(
        lambda: _finish(
            out,
            shape=shape,
            mask=mask,
            block=block,
            batches=batches,
            first=first,
            seconds=seconds,
            calls=calls,
            segment=segment,
            boundary=boundary,
            reference=reference,
            sampler={
                "resample": resample,
                "jump": jump,
                "plain_tail": plain_tail,
                "num_steps": num_steps,
                "eta": float(eta),
                "num_levels": levels,
                "mode": mode,
                "batch_size": batch_size,
            },
            devices=1 if mesh is None else int(mesh.size),
            start_total=start_total,
        )
    )


def _finish(
    out: Path,
    *,
    shape,
    mask,
    block,
    batches,
    first,
    seconds,
    calls,
    segment,
    boundary,
    reference,
    sampler,
    devices,
    start_total,
) -> dict:
    """Segments and measures the finished volume, writes the report files; the summary."""
    values = np.load(out / "volume" / "values.npy", mmap_mode="r")
    field = np.asarray(values[..., 0], np.float32)
    region = np.ones(shape, bool) if mask is None else mask
    bad = int(np.sum(~np.isfinite(field[region])))
    if bad:
        raise ValueError(
            f"eps_fn: the generated volume holds {bad} non-finite values (a diverging denoiser "
            f"or a schedule it was not trained with?); see {out / 'volume'}"
        )
    fresh = int(np.sum((np.load(out / "volume" / "written.npy", mmap_mode="r") >= first) & region))

    from jaxmicro.grains import segment_continuous
    from jaxmicro.io import write_vti

    labels = np.asarray(segment_continuous(field.astype(np.float64), method=segment), np.int32)
    if mask is not None:
        labels = np.where(mask, labels, 0)
    np.save(out / "grain_ids.npy", labels)
    fields = {"field": field, "grain_ids": labels}
    if mask is not None:
        fields["region"] = mask
    write_vti(out / "volume.vti", fields)
    save_slices(field, labels, out / "slices.png")
    generated = grain_statistics(labels, boundary=boundary)
    comparison = None
    if reference is not None:
        if not isinstance(reference, dict):
            reference = pooled_statistics(reference, boundary=boundary)
        comparison = compare_statistics(generated, reference)
    rule = {
        "exclude": "grains cut by the box faces or the part surface are not measured",
        "include": "grains cut by the box faces or the part surface are measured as cut",
    }[boundary]
    (out / "statistics.md").write_text(
        f"boundary='{boundary}': {rule} (both sides).\n\n"
        + statistics_markdown(generated, comparison)
    )
    summary = {
        "shape": list(shape),
        "block": block,
        "blocks": sum(map(len, batches)),
        "batches": len(batches),
        "devices": devices,
        "sampler": sampler,
        "denoiser_calls_per_block": calls,
        "denoiser_calls": calls * sum(map(len, batches)),
        "region_voxels": int(region.sum()),
        "batches_run": len(batches) - first,
        "seconds_generation": seconds,
        "voxels_per_minute": fresh / seconds * 60 if fresh else None,
        "segment": segment,
        "grains": int(np.unique(labels[labels > 0]).size),
        "grains_measured": int(generated["volume"].size),
        "boundary": boundary,
        "generated": {name: _mean_median(generated[name]) for name in STATISTICS},
        "statistics": comparison,
        "files": list(FILES),
    }
    summary["seconds_total"] = time.perf_counter() - start_total
    summary = _json_safe(summary)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "summary.json")  # atomic: present only when the run finished
    return summary
