"""The training loop: resumable, data-parallel, with JSONL metrics and preview samples.

``fit(config, out_dir)`` writes into ``out_dir``:

- ``config.json``: the run's ``TrainConfig`` (with the data's shape filled in);
- ``conditions.json``: statistics of the conditioning labels (``ConditionStats``);
- ``data/``: the dataset of a built-in data kind (generated once); ``latents/``: the dataset
  encoded by the run's autoencoder (once);
- ``checkpoints/<step>/``: orbax checkpoints of the ``TrainState``;
- ``metrics.jsonl``: one JSON object per logged step (loss terms, gradient norm, wall time);
- ``samples/step_<step>.png``: DDIM previews from the EMA parameters.

With ``resume=True`` the newest checkpoint is restored (into shardings of the current mesh) and
training continues at its step and data position with the same per-step keys, so the loss
sequence is the one an uninterrupted run would have produced.
A resumed call must keep the run's network and
what its output means (``RESUME_KEEPS``: model, schedule, loss, parameterization, conditions);
it may change the step count, the learning-rate cycles and the logging.

Several processes (``jaxmicro.train.initialize_distributed``) run ``fit`` together on one mesh:
each reads only its rows of every global batch, process 0 alone checks the folder and writes
``config.json``, the metrics and the previews, and all of them save and restore the
checkpoints together (orbax). The losses and parameters are those of one process with the same
number of devices; ``out_dir`` must be on a file system every process sees.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro._outdir import prepare_output_dir
from jaxmicro.train.checkpoint import Checkpointer, abstract_with_shardings, saved_steps
from jaxmicro.train.config import (
    FAST_COMPILE,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    make_schedule,
    save_config,
)
from jaxmicro.train.parallel import (
    batch_mesh,
    batch_sharded,
    global_batch,
    is_primary,
    local_batch_slice,
    on_primary,
    replicated,
)
from jaxmicro.train.sampling import generate, save_grid
from jaxmicro.train.source import training_source
from jaxmicro.train.step import (
    init_state,
    make_optimizer,
    make_train_step,
    model_from_state,
    step_key,
)

__all__ = [
    "fit",
    "restore_run",
    "train_loop",
    "start_state",
    "check_resumable",
    "read_metrics",
    "logged_seconds",
]

METRICS_FILE = "metrics.jsonl"  # written by train_loop, read by read_metrics

# The TrainConfig fields that fix what the network computes and what its output means. A resumed
# run keeps them; its step count, learning-rate cycles, logging and previews may change.
RESUME_KEEPS = (
    "model",
    "schedule",
    "num_diffusion_steps",
    "beta_start",
    "beta_end",
    "loss",
    "parameterization",
    "conditions",
    "class_label",
)


def check_resumable(previous, config, fields: tuple[str, ...], out: Path) -> None:
    """Checks that ``config`` may continue the run in ``out``, whose config is ``previous``.

    Raises:
        ValueError: naming the first of ``fields`` whose value differs between the two (a
            checkpoint of an eps-predicting network resumed as a v-predicting one would
            otherwise train on silently).
    """
    for name in fields:
        old, new = getattr(previous, name), getattr(config, name)
        if old != new:
            raise ValueError(
                f"{name}: {new!r} differs from {old!r} of the run in {out}; a resumed run "
                f"keeps its {', '.join(fields)} (train into a new folder instead)"
            )


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` (``fit`` and ``fit_vae`` runs), oldest first;
    ``[]`` when the run has logged nothing."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def logged_seconds(records: list[dict]) -> float:
    """Wall seconds of training in ``records`` (``read_metrics``), summed over resumed calls.

    Each call's clock starts at 0, so a call ends where the logged time goes back; a call whose
    first logged time exceeds the previous call's last is counted with it (an undercount,
    possible only after a call shorter than one log interval)."""
    times = [r["time"] for r in records if r.get("time") is not None]
    return float(sum(a for a, b in zip(times, [*times[1:], 0.0], strict=True) if b < a))


def _jsonl_upto(path: Path, step: int) -> None:
    """Drops metric lines logged after ``step`` (written before an interruption)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in kept))


def _compiled(config: TrainConfig, mesh: jax.sharding.Mesh):
    """Jitted ``(init_fn, step_fn)`` of a run, shared by calls of ``fit`` in one process.

    Only compilation is cached (results are pure functions of the inputs): an interrupted and a
    resumed run in one process then compile once.
    """
    key = json.dumps(config_to_dict(config), sort_keys=True, default=str)
    return _compiled_cached(key, mesh)


@functools.cache
def _compiled_cached(key: str, mesh: jax.sharding.Mesh):
    config = config_from_dict(TrainConfig, json.loads(key))
    optimizer = make_optimizer(config)
    graphdef, init_fn = init_state(config, optimizer)
    train_step = make_train_step(config, graphdef, make_schedule(config), optimizer)
    return (graphdef, init_fn, *jit_run(init_fn, train_step, mesh, config.fast_compile))


def jit_run(init_fn, train_step, mesh: jax.sharding.Mesh, fast_compile: bool) -> tuple:
    """``(init_jit, step_fn)`` of a run: parameters replicated, batches split over the mesh.

    ``step_fn(state, batch)`` takes the step key from the state (``step_key``) and donates the
    old state; ``fast_compile`` turns XLA's backend optimization off for the step.
    """
    rep = replicated(mesh)
    step_fn = jax.jit(
        lambda s, b: train_step(step_key(s), s, b),
        in_shardings=(rep, batch_sharded(mesh)),
        out_shardings=(rep, rep),
        donate_argnums=0,
        compiler_options=FAST_COMPILE if fast_compile else None,
    )
    # Initialization runs once: optimizing its (RNG-heavy) program costs more than it saves.
    init_jit = jax.jit(init_fn, out_shardings=rep, compiler_options=FAST_COMPILE)
    return init_jit, step_fn


def train_loop(
    out: Path,
    state,
    step_fn,
    make_batch,
    *,
    name: str,
    num_train_steps: int,
    log_every: int,
    checkpoint_every: int,
    checkpointer: Checkpointer,
    stop_after: int | None = None,
    progress: bool = True,
    after_step=None,
) -> tuple:
    """Runs ``state, metrics = step_fn(state, make_batch(state.step))`` to ``num_train_steps``.

    Shared by the diffusion (``fit``) and autoencoder (``fit_vae``) runs: JSONL metrics (lines
    logged after the restored step are dropped first, so a resumed log reads as one run),
    checkpoints every ``checkpoint_every`` steps and always at the end (also on an exception),
    a progress bar, and ``after_step(done, state)`` hooks (previews).

    Returns:
        ``(state, records)``: the final state and the metric records logged by this call.
    """
    from tqdm.auto import tqdm

    start = int(state.step)
    end = num_train_steps if stop_after is None else min(num_train_steps, start + int(stop_after))
    metrics_path = out / METRICS_FILE
    primary = is_primary()
    if primary:
        _jsonl_upto(metrics_path, start)
    records = []
    t0 = time.perf_counter()
    bar = tqdm(
        range(start, end),
        initial=start,
        total=num_train_steps,
        disable=not progress or not primary,
        desc=name,
    )
    try:
        with metrics_path.open("a") if primary else open(os.devnull, "w") as log:
            for step in bar:
                state, metrics = step_fn(state, make_batch(step))
                done = step + 1
                if done % log_every == 0 or done == end:
                    rec = {
                        "step": done,
                        **{k: float(v) for k, v in metrics.items()},
                        "time": time.perf_counter() - t0,
                    }
                    if not np.isfinite(rec["loss"]):
                        raise FloatingPointError(
                            f"loss: {rec['loss']} at step {done}; the run stopped (lower the "
                            "learning rate, or resume from the last finite checkpoint)"
                        )
                    records.append(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}")
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                if done % checkpoint_every == 0:
                    checkpointer.save(done, state)
                if after_step is not None:
                    after_step(done, state)
    finally:
        if int(state.step) != checkpointer.latest_step() and _finite(state):
            checkpointer.save(int(state.step), state)
        checkpointer.close()
        bar.close()
    return state, records


def _finite(state) -> bool:
    """Whether every floating leaf of ``state`` is finite: on the host when this process holds
    every value (no compilation), else one compiled reduction over the global arrays."""
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
    if all(x.is_fully_addressable for x in leaves):
        return all(np.isfinite(np.asarray(x)).all() for x in leaves)
    return bool(_all_finite(leaves))


@jax.jit
def _all_finite(leaves) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def start_state(out: Path, init_fn, init_jit, mesh, resume: bool) -> tuple:
    """``(checkpointer, state)``: the newest checkpoint of ``out`` (``resume``) or a new state.

    Raises:
        ValueError: ``out`` holds checkpoints and ``resume`` is False.
    """
    ckpt = Checkpointer(out / "checkpoints")
    if ckpt.latest_step() is not None and not resume:
        ckpt.close()
        raise ValueError(f"out_dir: {out} already holds checkpoints; resume or use a new folder")
    if resume and ckpt.latest_step() is not None:
        abstract = abstract_with_shardings(jax.eval_shape(init_fn), replicated(mesh))
        return ckpt, ckpt.restore(abstract)
    return ckpt, init_jit()


def fit(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    num_devices: int | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Trains (or continues) a run; returns the metric records logged by this call.

    The data come through ``jaxmicro.data`` (see ``DataConfig``); with ``config.autoencoder``
    they are encoded to latents once (``<out>/latents``) and the UNet trains on those. The
    conditions named by the config are read from the dataset's labels, normalized with the
    statistics written to ``<out>/conditions.json``.

    Args:
        config: the run.
        out_dir: output folder (see the module docstring); a new folder, or ``resume``.
        resume: continue from the newest checkpoint in ``out_dir`` (a fresh start if none).
        num_devices: devices of the data-parallel mesh (default: all).
        stop_after: take at most this many steps in this call, then checkpoint and return (an
            orderly interruption; ``resume`` continues).
        progress: show a tqdm progress bar.

    Returns:
        Metric records ``{'step', 'loss', ...}`` of this call.
    """
    config = config.validate()
    out = Path(out_dir)
    on_primary(lambda: _check_out_dir(out, resume, config))  # one process decides, before writes
    mesh = batch_mesh(num_devices)
    if config.batch_size % mesh.size:
        raise ValueError(
            f"batch_size: {config.batch_size} is not divisible by the {mesh.size} devices"
        )
    source = training_source(config, out)
    config = source.config
    if is_primary():
        save_config(config, out / "config.json")
    graphdef, init_fn, init_jit, step_fn = _compiled(config, mesh)
    ckpt, state = start_state(out, init_fn, init_jit, mesh, resume)
    rows = local_batch_slice(config.batch_size)
    (out / "samples").mkdir(exist_ok=True)

    def make_batch(step):
        return global_batch(source.batch(step, rows), mesh)

    def after_step(done, state):
        if config.sample_every and done % config.sample_every == 0:
            path = out / "samples" / f"step_{done}.png"
            _preview(graphdef, state, config, source.stats, mesh, path)

    _, records = train_loop(
        out,
        state,
        step_fn,
        make_batch,
        name=config.name,
        num_train_steps=config.num_train_steps,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        checkpointer=ckpt,
        stop_after=stop_after,
        progress=progress,
        after_step=after_step,
    )
    return records


def _check_out_dir(out: Path, resume: bool, config: TrainConfig) -> None:
    if out.is_dir() and any(out.iterdir()) and not resume:
        if (out / "checkpoints").is_dir():
            raise ValueError(
                f"out_dir: {out} already holds checkpoints; resume or use a new folder"
            )
        raise ValueError(f"out_dir: {out} already holds files; use a new folder")
    if resume and (out / "config.json").is_file() and saved_steps(out / "checkpoints"):
        check_resumable(load_config(out / "config.json"), config, RESUME_KEEPS, out)
    prepare_output_dir(out, resume=True, name="out_dir")


def _preview(graphdef, state, config: TrainConfig, stats, mesh, path: Path) -> None:
    from jaxmicro.train.model import Model

    autoencoder = None
    if config.autoencoder:
        from jaxmicro.train.autoencoder import load_autoencoder

        autoencoder = load_autoencoder(config.autoencoder)
    model = Model(config, model_from_state(graphdef, state), stats, autoencoder)
    key = jax.random.fold_in(jax.random.key(config.seed), 2)
    x = generate(key, model, config.num_preview_samples, steps=config.preview_ddim_steps, mesh=mesh)
    if is_primary():
        save_grid(x, path)


def restore_run(out_dir: str | Path, *, step: int | None = None, mesh=None):
    """Loads a run written by ``fit``: ``(config, graphdef, state)`` (state replicated on mesh)."""
    out = Path(out_dir)
    if not (out / "config.json").exists():
        raise ValueError(f"checkpoint: {out} has no config.json (not a jaxmicro training run)")
    config = load_config(out / "config.json")
    mesh = batch_mesh() if mesh is None else mesh
    graphdef, init_fn = init_state(config, make_optimizer(config))
    ckpt = Checkpointer(out / "checkpoints")
    try:
        state = ckpt.restore(
            abstract_with_shardings(jax.eval_shape(init_fn), replicated(mesh)), step
        )
    finally:
        ckpt.close()
    return config, graphdef, state
