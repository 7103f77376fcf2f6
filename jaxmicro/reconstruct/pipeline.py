"""One reconstruction from a reference field, as ``jaxmicro reconstruct`` runs it, returning data.

:func:`run_reconstruction` characterizes the reference, compiles one jitted solve (a single start,
or ``seeds`` starts in one ``vmap`` of :func:`reconstruct_ensemble`), runs it, and returns a
:class:`Reconstruction`: the best start's :class:`Result`, all starts' results, and the compile
and solve times measured apart (``lower().compile()``, then the compiled call).
:func:`output_arrays` and :func:`run_record` turn it into the arrays and the ``result.json``
record that a command writes; :func:`check_memory` refuses, before any work, a shape whose
variables and optimizer state alone exceed the device's memory; :func:`release_memory` returns
the compiler's freed scratch to the operating system (the peak of a run is its compilation).

Memory lower bound per start (float32, N voxels, C variable channels, F descriptor features:
C for phases, the SHSH basis size for orientations): ``4 N (C (2 + 2 m) + 2 F)`` bytes: the
variables and their gradient, the features and their gradient, and ``2 m`` vectors of the
optimizer's memory (m = 10 for the L-BFGS-B variants, 1 for the others). Descriptor
intermediates (FFT spectra, lag products) come on top, so a run that passes may still need
several times this; one that fails cannot fit.

References:
    SHSH-MCR paper (mcr-shsh), §3.1 (L-BFGS-B), §3.2.1 (multigrid), appendix D (seed
    ensembles, post-selection); Byrd, Lu, Nocedal & Zhu 1995 (L-BFGS-B memory of m pairs).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro.harmonics import shsh_size
from jaxmicro.reconstruct import report
from jaxmicro.reconstruct.solve import (
    Result,
    orientations_of,
    reconstruct,
    reconstruct_ensemble,
)
from jaxmicro.reconstruct.spec import Spec, Target, characterize, loss_terms

_LBFGS_MEMORY = {"lbfgsb": 10, "jaxopt": 10, "lbfgs": 10}  # correction pairs kept


def memory_lower_bound(
    shape: tuple[int, ...], spec: Spec, channels: int, *, seeds: int = 1, optimizer="lbfgsb"
) -> int:
    """Bytes that ``seeds`` reconstructions of ``shape`` need at least (module docstring)."""
    voxels = math.prod(int(n) for n in shape)
    if spec.representation == "orientations":
        channels, features = 4, shsh_size(spec.symmetry, spec.degrees)
    else:
        features = channels
    pairs = _LBFGS_MEMORY.get(optimizer, 1)
    return 4 * voxels * seeds * (channels * (2 + 2 * pairs) + 2 * features)


def available_memory_bytes() -> int | None:
    """Memory of the default device: its ``bytes_limit`` (GPU), else the host's physical RAM."""
    stats = jax.devices()[0].memory_stats() or {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(
    shape: tuple[int, ...],
    spec: Spec,
    channels: int,
    *,
    seeds: int = 1,
    optimizer: str = "lbfgsb",
    available: int | None = None,
    name: str = "shape",
) -> int:
    """Refuses a reconstruction whose lower bound exceeds the memory; returns the bound (bytes).

    Args:
        shape, spec, channels, seeds, optimizer: as in :func:`memory_lower_bound`.
        available: bytes to compare with (default: :func:`available_memory_bytes`; no check
            when that is unknown).
        name: the argument's name in error messages (e.g. ``'--shape'``).

    Raises:
        ValueError: naming ``name``, with the bytes needed and available.
    """
    need = memory_lower_bound(shape, spec, channels, seeds=seeds, optimizer=optimizer)
    have = available_memory_bytes() if available is None else available
    if have is not None and need > have:
        size = "x".join(map(str, shape))
        raise ValueError(
            f"{name}: a {size} reconstruction ({seeds} start(s), {optimizer}) needs at least "
            f"{need / 2**30:.3g} GiB for its variables, features and optimizer state; this "
            f"device has {have / 2**30:.3g} GiB"
        )
    return need


class Reconstruction(NamedTuple):
    """What :func:`run_reconstruction` returns.

    Attributes:
        result: the best start's :class:`Result` (lowest final loss; NaN losses never win).
        results: every start's, with a leading axis of ``seeds`` (no axis for one start).
        best: index of the best start.
        target: the reference's :class:`Target`.
        spec, shape, optimizer, max_iter: how it ran.
        compile_seconds, solve_seconds: compilation, and the compiled solve alone.
    """

    result: Result
    results: Result
    best: int
    target: Target
    spec: Spec
    shape: tuple[int, ...]
    optimizer: str
    max_iter: int
    compile_seconds: float
    solve_seconds: float


def run_reconstruction(
    key: jax.Array,
    reference,
    shape: tuple[int, ...],
    spec: Spec,
    *,
    seeds: int = 1,
    optimizer: str = "lbfgsb",
    max_iter: int = 200,
    learning_rate: float = 1e-2,
    progress: Callable[[str], contextlib.AbstractContextManager] | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> Reconstruction:
    """Characterizes ``reference`` and reconstructs ``shape`` from ``seeds`` random starts.

    Args:
        key: PRNG key; split into ``seeds`` keys, one per start.
        reference: (*spatial, C) reference field (see :func:`characterize`).
        shape: spatial shape of the reconstruction (static).
        spec: the problem.
        seeds: starts, run in one ``vmap`` when more than one; the best is kept.
        optimizer, max_iter, learning_rate: as in :func:`reconstruct`.
        progress: optional ``progress(description)`` context manager around each blocking
            step (``'characterize'``, ``'compile'``, ``'solve ...'``), e.g. :func:`spinner`.
        mesh: split the starts over this mesh (``reconstruct_ensemble``), also across the
            processes of a ``jax.distributed`` run; every process returns every start.

    Returns:
        A :class:`Reconstruction`.

    Raises:
        ValueError: ``seeds`` < 1, and every refusal of :func:`characterize` and
            :func:`reconstruct`.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: expected an integer >= 1, got {seeds!r}")
    step = progress or (lambda _: contextlib.nullcontext())
    with step("characterize"):
        target = jax.block_until_ready(characterize(reference, spec))
    release_memory()
    kwargs = dict(
        shape=tuple(shape),
        spec=spec,
        optimizer=optimizer,
        max_iter=max_iter,
        learning_rate=learning_rate,
    )
    keys = jax.random.split(key, seeds)
    if seeds == 1 and mesh is None:
        solve = jax.jit(lambda k, t: reconstruct(k[0], t, **kwargs))
    else:
        solve = jax.jit(lambda k, t: reconstruct_ensemble(k, t, mesh=mesh, **kwargs)[0])
    with step("compile"):
        start = time.perf_counter()
        compiled = solve.lower(keys, target).compile()
        compile_seconds = time.perf_counter() - start
    release_memory()  # the compiler's scratch: the solve's buffers would come on top of it
    with step(f"solve ({seeds} x {spec.levels} x {max_iter} iterations)"):
        start = time.perf_counter()
        results = jax.block_until_ready(compiled(keys, target))
        solve_seconds = time.perf_counter() - start
    if mesh is not None:  # replicated over the mesh: continue with this process's copy
        results = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), results)
        if seeds == 1:
            results = jax.tree.map(lambda x: x[0], results)
    finals = np.atleast_1d(np.asarray(results.final_loss, np.float64))
    best = int(np.argmin(np.where(np.isnan(finals), np.inf, finals)))
    result = results if seeds == 1 else jax.tree.map(lambda x: x[best], results)
    return Reconstruction(
        result,
        results,
        best,
        target,
        spec,
        kwargs["shape"],
        optimizer,
        max_iter,
        compile_seconds,
        solve_seconds,
    )


def release_memory() -> None:
    """Hands the heap's free pages back to the operating system (glibc's ``malloc_trim``).

    XLA frees its compilation scratch (300-500 MiB for the solves of ``jaxmicro reconstruct``)
    when a compilation ends, but glibc keeps those pages mapped, and the solve's large buffers
    (mapped anew) then come on top of them: that raised the command's peak by about 100 MiB.
    :func:`run_reconstruction` calls it after the characterization and after the compilation.
    A no-op where the C library has no ``malloc_trim`` (macOS, musl, Windows).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


def level_losses(reconstruction: Reconstruction) -> list[tuple[tuple[int, ...], float, float]]:
    """``(level shape, loss after its first iteration, loss after its last)``, coarsest first."""
    history = np.asarray(reconstruction.result.loss_history)
    levels = reconstruction.spec.levels
    per = history.shape[0] // levels
    out = []
    for i, k in enumerate(reversed(range(levels))):
        level_shape = tuple(n // 2**k for n in reconstruction.shape)
        out.append((level_shape, float(history[i * per]), float(history[(i + 1) * per - 1])))
    return out


def output_arrays(reconstruction: Reconstruction) -> dict[str, np.ndarray]:
    """The arrays a run leaves: ``field`` (the optimized variables), and ``quats`` and ``euler``
    (unit quaternions in the fundamental zone and their Bunge angles, radians) for orientations
    or ``phases`` (integer labels, :func:`report.phase_labels`) for phases.

    Raises:
        ValueError: the result holds NaN or infinite variables, zero quaternions, or
            quaternions whose norm overflows their dtype (a diverged optimizer), rather than
            return NaN orientations.
    """
    spec = reconstruction.spec
    field = np.asarray(reconstruction.result.field)
    out = {"field": field}
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(field, axis=-1)  # in the field's dtype, as every consumer computes
    usable = np.isfinite(norms) & ((norms > 0) | (spec.representation == "phases"))
    if not usable.all():
        raise ValueError(
            f"reconstruction: {int(np.count_nonzero(~usable))} voxel(s) of the result are NaN, "
            "zero or too large for their dtype (the optimizer diverged); try optimizer "
            "'lbfgsb' or a smaller learning rate"
        )
    if spec.representation == "orientations":
        quats, euler = orientations_of(jnp.asarray(field), spec.symmetry)
        out.update(quats=np.asarray(quats), euler=np.asarray(euler))
    else:
        out["phases"] = report.phase_labels(field)
    return out


def loss_histories(reconstruction: Reconstruction) -> dict[str, np.ndarray]:
    """Loss curves to plot: the single start's, or every start's and the best one's."""
    history = np.asarray(reconstruction.result.loss_history)
    every = np.asarray(reconstruction.results.loss_history)
    if every.ndim == 1:
        return {"loss": history}
    return {f"{every.shape[0]} seeds": every, f"best (seed {reconstruction.best})": history}


def run_record(reconstruction: Reconstruction, reference, *, variogram_error=None) -> dict:
    """The ``result.json`` record of a run: problem, losses, evaluations, times, statistics.

    Args:
        reconstruction: from :func:`run_reconstruction`.
        reference: the reference field it was run on.
        variogram_error: optional relative variogram error per lag (from
            :func:`report.save_reconstruction_figures`), summarized as the share below 5%.

    Returns:
        A dict of JSON-able values (arrays are converted by :func:`report.write_json`).
    """
    r, rs, spec = reconstruction.result, reconstruction.results, reconstruction.spec
    n_evaluations = int(np.sum(np.asarray(rs.n_evaluations)))
    field = jnp.asarray(r.field)
    finals = np.atleast_1d(np.asarray(rs.final_loss))
    orientations = spec.representation == "orientations"
    record = {
        "reference_shape": list(np.shape(reference)),
        "shape": list(reconstruction.shape),
        "representation": spec.representation,
        "symmetry": spec.symmetry if orientations else None,
        "descriptors": [
            {"name": d.name, "weight": d.weight, **dict(d.options)} for d in spec.descriptors
        ],
        "optimizer": reconstruction.optimizer,
        "max_iter": reconstruction.max_iter,
        "levels": spec.levels,
        "seeds": finals.size,
        "best_seed": reconstruction.best,
        "seed_final_losses": finals,
        "initial_loss": r.initial_loss,
        "final_loss": r.final_loss,
        # one compiled function: eager SHSH features and descriptors compile dozens of small ops
        "loss_terms": jax.jit(loss_terms, static_argnames="spec")(
            field, reconstruction.target, spec
        ),
        "loss_history": np.asarray(r.loss_history),
        "n_evaluations": n_evaluations,
        "compile_seconds": reconstruction.compile_seconds,
        "solve_seconds": reconstruction.solve_seconds,
        "seconds_per_evaluation": reconstruction.solve_seconds / max(n_evaluations, 1),
        "boundary_fraction": {
            "reference": report.boundary_fraction(reference, spec),
            "result": report.boundary_fraction(field, spec),
        },
        "peak_rss_mb": report.peak_rss_mb(),
        "device": str(jax.devices()[0]),
        "jax_version": jax.__version__,
    }
    if variogram_error is not None:
        record["variogram_fraction_below_5pct"] = report.fraction_below(variogram_error, 0.05)
    return record


@contextlib.contextmanager
def spinner(description: str):
    """Shows a spinner (tqdm, on a terminal only) while a blocking call runs, then prints
    ``description: seconds``. A ``progress`` for :func:`run_reconstruction`."""
    from tqdm import tqdm

    bar = tqdm(total=None, desc=description, bar_format="{desc} [{elapsed}]", disable=None)
    stop = threading.Event()

    def spin():
        for glyph in itertools.cycle("|/-\\"):
            if stop.wait(0.2):
                return
            bar.set_description_str(f"{description} {glyph}")

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.close()
    print(f"{description}: {time.perf_counter() - start:.1f} s")
