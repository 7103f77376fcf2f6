"""Wall-clock timing shared by the benchmark scripts (``from _timing import median_seconds``)."""

from __future__ import annotations

import statistics
import time

import jax


def median_seconds(fn, *args, repeats: int = 5, warmup: bool = True) -> float:
    """Median wall time of ``fn(*args)`` over ``repeats`` calls, waiting for JAX results.

    ``warmup`` makes one untimed call first (compilation); pass False when ``fn`` is already
    compiled and a call is expensive.
    """
    if warmup:
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)
