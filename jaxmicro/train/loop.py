"""The training loop: resumable, data-parallel, with JSONL metrics and preview samples.

``fit(config, out_dir)`` writes into ``out_dir``:

- ``config.json``: the run's ``TrainConfig``;
- ``checkpoints/<step>/``: orbax checkpoints of the ``TrainState``;
- ``metrics.jsonl``: one JSON object per logged step (loss terms, gradient norm, wall time);
- ``samples/step_<step>.png``: DDIM previews from the EMA parameters.

With ``resume=True`` the newest checkpoint is restored (into shardings of the current mesh) and
training continues at its step and data position with the same per-step keys, so the loss
sequence is the one an uninterrupted run would have produced.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax

from jaxmicro.train.checkpoint import Checkpointer, abstract_with_shardings
from jaxmicro.train.config import FAST_COMPILE, TrainConfig, make_schedule, save_config
from jaxmicro.train.data import make_dataset
from jaxmicro.train.parallel import (
    batch_mesh,
    batch_sharded,
    global_batch,
    local_batch_slice,
    replicated,
)
from jaxmicro.train.sampling import generate, save_grid
from jaxmicro.train.step import (
    init_state,
    make_optimizer,
    make_train_step,
    model_from_state,
    step_key,
)

__all__ = ["fit", "restore_run"]


def _jsonl_upto(path: Path, step: int) -> None:
    """Drops metric lines logged after ``step`` (written before an interruption)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in kept))


@functools.cache
def _compiled(config: TrainConfig, mesh: jax.sharding.Mesh):
    """Jitted ``(init_fn, step_fn)`` of a run, shared by calls of ``fit`` in one process.

    Only compilation is cached (results are pure functions of the inputs): an interrupted and a
    resumed run in one process then compile once.
    """
    rep = replicated(mesh)
    optimizer = make_optimizer(config)
    graphdef, init_fn = init_state(config, optimizer)
    train_step = make_train_step(config, graphdef, make_schedule(config), optimizer)
    step_fn = jax.jit(
        lambda s, b: train_step(s, b, step_key(s)),
        in_shardings=(rep, batch_sharded(mesh)),
        out_shardings=(rep, rep),
        donate_argnums=0,
        compiler_options=FAST_COMPILE if config.fast_compile else None,
    )
    # Initialization runs once: optimizing its (RNG-heavy) program costs more than it saves.
    init_jit = jax.jit(init_fn, out_shardings=rep, compiler_options=FAST_COMPILE)
    return graphdef, init_fn, init_jit, step_fn


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

    Args:
        config: the run.
        out_dir: output folder (see the module docstring).
        resume: continue from the newest checkpoint in ``out_dir`` (a fresh start if none).
        num_devices: devices of the data-parallel mesh (default: all).
        stop_after: take at most this many steps in this call, then checkpoint and return (an
            orderly interruption; ``resume`` continues).
        progress: show a tqdm progress bar.

    Returns:
        Metric records ``{'step', 'loss', ...}`` of this call.
    """
    from tqdm.auto import tqdm

    config = config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mesh = batch_mesh(num_devices)
    if config.batch_size % mesh.size:
        raise ValueError(
            f"batch_size: {config.batch_size} is not divisible by the {mesh.size} devices"
        )
    rep = replicated(mesh)
    graphdef, init_fn, init_jit, step_fn = _compiled(config, mesh)
    ckpt = Checkpointer(out / "checkpoints")
    if ckpt.latest_step() is not None and not resume:
        ckpt.close()
        raise ValueError(f"out_dir: {out} already holds checkpoints; resume or use a new folder")
    if resume and ckpt.latest_step() is not None:
        state = ckpt.restore(abstract_with_shardings(jax.eval_shape(init_fn), rep))
    else:
        state = init_jit()
    save_config(config, out / "config.json")
    dataset = make_dataset(config.data)
    rows = local_batch_slice(config.batch_size)
    start, position = int(state.step), int(state.position)
    end = config.num_train_steps
    if stop_after is not None:
        end = min(end, start + int(stop_after))
    metrics_path = out / "metrics.jsonl"
    _jsonl_upto(metrics_path, start)
    (out / "samples").mkdir(exist_ok=True)

    records = []
    t0 = time.perf_counter()
    bar = tqdm(
        range(start, end),
        initial=start,
        total=config.num_train_steps,
        disable=not progress or jax.process_index() != 0,
        desc=config.name,
    )
    try:
        with metrics_path.open("a") as log:
            for step in bar:
                local = dataset.batch(position + rows.start, rows.stop - rows.start)
                state, metrics = step_fn(state, global_batch({"x": local}, mesh))
                position += config.batch_size
                done = step + 1
                if done % config.log_every == 0 or done == end:
                    rec = {
                        "step": done,
                        **{k: float(v) for k, v in metrics.items()},
                        "time": time.perf_counter() - t0,
                    }
                    records.append(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}")
                    if jax.process_index() == 0:
                        log.write(json.dumps(rec) + "\n")
                        log.flush()
                if done % config.checkpoint_every == 0:
                    ckpt.save(done, state)
                if config.sample_every and done % config.sample_every == 0:
                    _preview(graphdef, state, config, mesh, out / "samples" / f"step_{done}.png")
    finally:
        if int(state.step) != ckpt.latest_step():
            ckpt.save(int(state.step), state)
        ckpt.close()
        bar.close()
    return records


def _preview(graphdef, state, config: TrainConfig, mesh, path: Path) -> None:
    model = model_from_state(graphdef, state)
    key = jax.random.fold_in(jax.random.key(config.seed), 2)
    x = generate(
        key, model, config, config.num_preview_samples, steps=config.preview_ddim_steps, mesh=mesh
    )
    if jax.process_index() == 0:
        save_grid(x, path)


def restore_run(out_dir: str | Path, *, step: int | None = None, mesh=None):
    """Loads a run written by ``fit``: ``(config, graphdef, state)`` (state replicated on mesh)."""
    from jaxmicro.train.config import load_config

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
