"""Timing shared by the benchmark scripts (``from _timing import median_seconds``, ...)."""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np


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


def paired_seconds(
    fn, args, other, other_args, repeats: int, *, clock=time.perf_counter, min_seconds=0.0
) -> tuple[float, float, float]:
    """Median times of ``fn(*args)`` and ``other(*other_args)``, and the median of their ratio.

    The two are timed alternately after one untimed call each (compilation), so that load from
    other processes hits both alike; the ratio of each pair is then less noisy than the ratio of
    the medians. A call faster than ``min_seconds`` is repeated in a loop (the same count for
    both, calibrated on the slower) and timed per call, so that sub-millisecond rows are not
    clock noise.
    """
    jax.block_until_ready(fn(*args))
    jax.block_until_ready(other(*other_args))
    loops = 1
    if min_seconds > 0:
        start = clock()
        jax.block_until_ready(fn(*args))
        jax.block_until_ready(other(*other_args))
        loops = max(1, int(np.ceil(min_seconds / max(clock() - start, 1e-9))))
    times = ([], [])
    for _ in range(repeats):
        for f, a, out in ((fn, args, times[0]), (other, other_args, times[1])):
            start = clock()
            for _ in range(loops):
                jax.block_until_ready(f(*a))
            out.append((clock() - start) / loops)
    ratios = np.asarray(times[0]) / np.asarray(times[1])
    return float(np.median(times[0])), float(np.median(times[1])), float(np.median(ratios))
