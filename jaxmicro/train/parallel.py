"""Data parallelism over a one-axis device mesh, on one or several hosts.

Parameters are replicated, batches are split along their leading axis over the mesh axis
``'batch'``; ``jit`` with these shardings inserts the gradient all-reduce. On several hosts each
process loads its own slice of the global batch and ``global_batch`` assembles the global array.
"""

from __future__ import annotations

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
]


def initialize_distributed(enabled: bool) -> None:
    """Calls ``jax.distributed.initialize()`` (cluster auto-detection) when ``enabled``."""
    if enabled:
        jax.distributed.initialize()


def batch_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
    """A one-axis mesh ``('batch',)`` over all (or the first ``num_devices``) devices."""
    n = jax.device_count() if num_devices is None else int(num_devices)
    if not 1 <= n <= jax.device_count():
        raise ValueError(f"num_devices: expected 1..{jax.device_count()}, got {num_devices}")
    # Auto axes: jit propagates the batch sharding through the step and the sampler's scan.
    auto = (jax.sharding.AxisType.Auto,)
    return jax.make_mesh((n,), ("batch",), axis_types=auto, devices=jax.devices()[:n])


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
