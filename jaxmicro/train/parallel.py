"""Data parallelism over a one-axis device mesh, on one or several hosts.

Parameters are replicated, batches are split along their leading axis over the mesh axis
``'batch'``; ``jit`` with these shardings inserts the gradient all-reduce.

Several processes (hosts, or one process per GPU) form one mesh through JAX's multi-controller
runtime (``initialize_distributed``): every process runs the same program on the same global
arrays and owns the rows of its own devices. The helpers here keep the host side of that
contract explicit:

- ``global_batch`` / ``host_to_global``: global arrays from process-local rows, or from a host
  value every process holds;
- ``gather``: a global array back to one NumPy array, on every process;
- ``on_primary``: a side effect (writing files, preparing a folder) run once, on process 0, with
  its result or its ``ValueError`` handed to every process, so all of them return or raise alike;
- ``process_share`` / ``gather_shares``: independent work items (chunks of samples) dealt out
  to processes in contiguous runs and gathered back in their global order.

On one process every helper reduces to the obvious local operation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = [
    "initialize_distributed",
    "batch_mesh",
    "replicated",
    "batch_sharded",
    "local_batch_slice",
    "global_batch",
    "host_to_global",
    "gather",
    "is_primary",
    "sync",
    "on_primary",
    "prepare_output_dir_once",
    "process_share",
    "gather_shares",
]


def initialize_distributed(
    enabled: bool = False,
    *,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins a multi-process run (``jax.distributed.initialize``), before any other JAX call.

    Args:
        enabled: auto-detect the cluster (SLURM, Open MPI, Cloud TPU, ...) when no coordinator
            is given.
        coordinator: ``HOST:PORT`` of process 0's coordination service; with it,
            ``num_processes`` and ``process_id`` are required and nothing is auto-detected.
        num_processes: the number of processes of the run.
        process_id: this process's index in ``[0, num_processes)``.

    Raises:
        ValueError: an explicit coordinator without a valid process count or index (or those
            without a coordinator).
    """
    if coordinator is None:
        if num_processes is not None or process_id is not None:
            raise ValueError("coordinator: --num-processes and --process-id need --coordinator")
        if enabled:
            jax.distributed.initialize()
        return
    host, sep, port = coordinator.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"coordinator: expected HOST:PORT, got {coordinator!r}")
    if num_processes is None or int(num_processes) < 1:
        raise ValueError(f"num_processes: expected a count >= 1, got {num_processes}")
    if process_id is None or not 0 <= int(process_id) < int(num_processes):
        raise ValueError(f"process_id: expected 0..{int(num_processes) - 1}, got {process_id}")
    jax.distributed.initialize(coordinator, int(num_processes), int(process_id))


def batch_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
    """A one-axis mesh ``('batch',)`` over all (or the first ``num_devices``) devices.

    With several processes the devices are those of every process, in process order, so process
    ``p`` owns a contiguous run of the batch (``local_batch_slice``).
    """
    n = jax.device_count() if num_devices is None else int(num_devices)
    if not 1 <= n <= jax.device_count():
        raise ValueError(f"num_devices: expected 1..{jax.device_count()}, got {num_devices}")
    if jax.process_count() > 1 and n != jax.device_count():
        raise ValueError(
            f"num_devices: a {jax.process_count()}-process run uses all {jax.device_count()} "
            f"devices, got {num_devices}"
        )
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))[:n]
    # Auto axes: jit propagates the batch sharding through the step and the sampler's scan.
    auto = (jax.sharding.AxisType.Auto,)
    return jax.make_mesh((n,), ("batch",), axis_types=auto, devices=devices)


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Full copy on every device of ``mesh``."""
    return NamedSharding(mesh, P())


def batch_sharded(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Leading axis split over ``'batch'``."""
    return NamedSharding(mesh, P("batch"))


def local_batch_slice(global_size: int) -> slice:
    """The rows of a global batch that this process loads."""
    n = jax.process_count()
    if global_size % n:
        raise ValueError(f"batch_size: {global_size} is not divisible by {n} processes")
    per = global_size // n
    return slice(jax.process_index() * per, (jax.process_index() + 1) * per)


def global_batch(local: dict[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
    """Assembles this process's rows into global arrays sharded over ``'batch'``."""
    sharding = batch_sharded(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()
    }


def host_to_global(tree, sharding: jax.sharding.Sharding):
    """Global arrays of ``sharding`` from host values (a pytree) that every process holds whole.

    Each process places only the pieces its own devices hold, so the values must be the same on
    every process (derived from the same key or file).
    """

    def put(value):
        value = np.asarray(value)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(put, tree)


def gather(x) -> np.ndarray:
    """The whole of a (possibly multi-process) array as NumPy, on every process.

    An array whose pieces live on other processes is all-gathered (a collective: every process
    must call this); a fully addressable one is just copied to the host.
    """
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def is_primary() -> bool:
    """True on process 0, the one that writes a run's files."""
    return jax.process_index() == 0


def sync(name: str) -> None:
    """A barrier across processes (nothing on one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _broadcast_text(text: str | None) -> str:
    """Process 0's ``text`` on every process (its length first, then its bytes)."""
    from jax.experimental import multihost_utils

    data = np.frombuffer((text or "").encode(), np.uint8)
    size = int(multihost_utils.broadcast_one_to_all(np.int32(data.size)))
    buffer = np.zeros(max(size, 1), np.uint8)
    if is_primary():
        buffer[:size] = data
    return bytes(np.asarray(multihost_utils.broadcast_one_to_all(buffer))[:size]).decode()


def on_primary(fn: Callable[[], object]):
    """Runs ``fn()`` on process 0 only and returns its result on every process.

    The result must be JSON-serializable (it is sent to the other processes as text); a
    ``ValueError`` raised by ``fn`` is raised on every process with the same message, so a
    refused argument stops all processes alike instead of leaving some waiting at the next
    collective. On one process this is ``fn()``.
    """
    if jax.process_count() == 1:
        return fn()
    message = None
    if is_primary():
        try:
            message = json.dumps({"ok": fn()})
        except ValueError as err:
            message = json.dumps({"error": str(err)})
    reply = json.loads(_broadcast_text(message))
    if "error" in reply:
        raise ValueError(reply["error"])
    return reply["ok"]


def prepare_output_dir_once(path: str | os.PathLike, **options) -> Path:
    """``jaxmicro._outdir.prepare_output_dir`` run by process 0 only (see ``on_primary``).

    Every process checking (or emptying) the folder itself would race with process 0's first
    writes; here one process decides and all of them return or raise the same.
    """
    from jaxmicro._outdir import prepare_output_dir

    on_primary(lambda: str(prepare_output_dir(path, **options)))
    return Path(path)


def process_share(num_items: int) -> range:
    """The items ``[0, num_items)`` this process works on: a contiguous run, in process order.

    The first ``num_items % P`` processes take one item more than the others.
    """
    return _share_of(jax.process_index(), num_items)


def gather_shares(local: Sequence[np.ndarray], num_items: int) -> list[np.ndarray]:
    """Every process's items (``process_share``) as one list in item order, on every process.

    Args:
        local: this process's results, one array per item of its share, in order; items may
            differ in their leading size but not in their trailing shape or dtype.
        num_items: the number of items over all processes.

    Returns:
        ``num_items`` arrays.
    """
    local = [np.asarray(a) for a in local]
    if int(num_items) < 1:
        raise ValueError(f"num_items: expected a positive count, got {num_items}")
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils

    shares = [_share_of(p, num_items) for p in range(jax.process_count())]
    per = max(len(s) for s in shares)
    # Leading sizes first (they may differ per item), then the rows, zero-padded to one shape.
    sizes = np.zeros(per, np.int64)
    sizes[: len(local)] = [a.shape[0] for a in local]
    all_sizes = np.asarray(multihost_utils.process_allgather(sizes))
    rows = int(all_sizes.max())
    trailing, dtype = _trailing_meta(local[0] if local else None)
    padded = np.zeros((per, rows, *trailing), dtype)
    for i, a in enumerate(local):
        padded[i, : a.shape[0]] = a
    everything = np.asarray(multihost_utils.process_allgather(padded))
    out = []
    for p, share in enumerate(shares):
        for j, _ in enumerate(share):
            out.append(everything[p, j, : all_sizes[p, j]])
    return out


def _share_of(process: int, num_items: int) -> range:
    count = jax.process_count()
    per, extra = divmod(int(num_items), count)
    start = process * per + min(process, extra)
    return range(start, start + per + (process < extra))


def _trailing_meta(template: np.ndarray | None) -> tuple[tuple[int, ...], np.dtype]:
    """The trailing shape and dtype of process 0's first item, known to every process.

    Process 0 always holds an item when there is one (``process_share`` fills it first).
    """
    text = None
    if is_primary() and template is not None:
        text = json.dumps([list(template.shape[1:]), template.dtype.str])
    shape, dtype = json.loads(_broadcast_text(text))
    return tuple(shape), np.dtype(dtype)
