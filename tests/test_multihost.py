"""Multi-process runs (issue #17): two local processes with two CPU devices each form one
4-device mesh through ``jax.distributed`` (gloo collectives) and must give what one process with
four devices gives: the samples of ``generate``, the outpainted volume and the reconstruction
ensemble (default run, ``light``: no training step is compiled, the sampled model is saved by
the one-process run); and, in the slow set (``-m slow``), the losses and final parameters of an
interrupted two-process training run (``jaxmicro launch -- train --stop-after``) resumed by two
new processes, and the samples of ``generate`` and ``lgd_run`` of the trained model.
``jaxmicro launch`` refuses a used output folder on every process (default run).

Every run is a child process (``python tests/test_multihost.py ROLE OUT ...``): the test process
has its own 4 devices and x64, and a process joins at most one distributed run. The children of
one run are started together and write their results (process 0 only) to ``OUT/result.npz``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxmicro.cli.launch import free_port, with_cpu_devices

# Module fixtures are built once (--dist loadfile: a module runs on one worker); a long unit.
pytestmark = pytest.mark.heavy

HERE = Path(__file__).resolve()
TIMEOUT = 300
TRAIN_STEPS = 4


def _env(root: Path, devices: int | None = None) -> dict:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    if devices is not None:  # the test run's compile flags (conftest), its own device count
        env["XLA_FLAGS"] = with_cpu_devices(env.get("XLA_FLAGS", ""), devices)
    env.pop("JAX_ENABLE_X64", None)
    # The runs share compiled programs (the same program in two processes, a resumed run):
    # compilation, not sampling, is what costs time here.
    env["JAX_COMPILATION_CACHE_DIR"] = str(root / "jax-cache")
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return env


def _run(role: str, out: Path, processes: int, *extra: str) -> float:
    """Runs ``role`` as ``processes`` children (4 devices in all); returns the wall seconds."""
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE), role, str(out), str(processes), str(i), str(port), *extra],
            env=_env(out.parent, 4 // processes),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(processes)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, f"{role} child failed:\n{log[-4000:]}"
    return time.perf_counter() - start


# ---------------------------------------------------------------- the children's side


def _save_untrained_model(config, run: Path, mesh) -> None:
    """A run folder without a training step: the initial state (step 0), then its EMA parameters
    jittered (step 1), since the UNet's output layer starts at zero and its samples would not
    depend on the network at all."""
    import jax

    from jaxmicro.train import fit
    from jaxmicro.train.checkpoint import Checkpointer
    from jaxmicro.train.loop import restore_run

    fit(config, run, stop_after=0, progress=False)
    _, _, state = restore_run(run, mesh=mesh)
    rng = np.random.default_rng(4)

    def jitter(x):
        noise = 0.1 * rng.normal(size=x.shape)
        return jax.device_put((np.asarray(x) + noise).astype(x.dtype), x.sharding)

    ckpt = Checkpointer(run / "checkpoints")
    ckpt.save(1, state._replace(ema=jax.tree.map(jitter, state.ema)))
    ckpt.close()


def _child(role, out, processes, index, port, *extra):  # noqa: C901 (one function per role)
    """``all``: train, then sample and lgd; ``resume-all``: the same, resuming ``OUT/run``;
    ``light``: sample from the run folder ``extra[0]`` (else save one into ``OUT/run`` first),
    outpaint with an analytic denoiser and reconstruct."""
    import jax

    out, processes, index = Path(out), int(processes), int(index)
    if processes > 1:
        from jaxmicro.train import initialize_distributed

        initialize_distributed(
            coordinator=f"127.0.0.1:{port}", num_processes=processes, process_id=index
        )
    import jax.numpy as jnp

    from jaxmicro.train import batch_mesh, fit, generate
    from jaxmicro.train.loop import restore_run
    from jaxmicro.train.parallel import is_primary

    assert jax.device_count() == 4 and jax.process_count() == processes
    if role not in ("all", "resume-all", "light"):
        raise SystemExit(f"unknown role {role}")
    results, seconds = {}, {}
    from jaxmicro.train import load_experiment_config

    config = load_experiment_config(f"{out.parent / 'config.py'}:tiny")
    run = Path(extra[0]) if extra else out / "run"
    mesh = batch_mesh()

    def final_state(prefix):
        _, _, state = restore_run(run, mesh=mesh)
        leaves = jax.tree_util.tree_flatten_with_path(state.params)[0]
        for path, leaf in leaves:
            results[f"{prefix}/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)

    t0 = time.perf_counter()
    if role == "light":
        if not extra:
            _save_untrained_model(config, run, mesh)
    else:
        records = fit(config, run, resume=role == "resume-all", progress=False)
        results["losses"] = np.asarray([r["loss"] for r in records])
        final_state("params")
    seconds["train"] = time.perf_counter() - t0
    from jaxmicro.train.model import load_model

    t0 = time.perf_counter()
    model = load_model(run, mesh=mesh)
    results["samples"] = generate(jax.random.key(5), model, 6, steps=3, mesh=mesh)
    seconds["sample"] = time.perf_counter() - t0

    if role != "light":
        from jaxmicro.lgd import lgd_run

        t0 = time.perf_counter()
        reference = np.sign(np.random.default_rng(1).normal(size=(8, 8, 1))).astype(np.float32)
        lgd = lgd_run(model, reference, 4, seed=2, batch_size=2, t0=4, num_steps=2, progress=False)
        results["lgd"] = lgd["samples"]
        seconds["lgd"] = time.perf_counter() - t0
        return _write(out, results, seconds)
    # Outpainting and reconstruction do not read the model: in the light runs only.

    from jaxmicro.diffusion import linear_schedule
    from jaxmicro.outpaint import outpaint
    from jaxmicro.train.denoiser import denoiser

    t0 = time.perf_counter()
    schedule = linear_schedule(10, 1e-3, 0.2, dtype=jnp.float32)

    def apply_fn(x, t):  # a Gaussian prior around each block's mean: context matters
        ab = schedule.alpha_bars[t].reshape((-1, 1, 1, 1, 1))
        x0 = jnp.mean(x, axis=(1, 2, 3, 4), keepdims=True) / jnp.sqrt(ab)
        return (x - jnp.sqrt(ab) * x0) / jnp.sqrt(1 - ab)

    volume = out / "outpaint"
    common = dict(
        block=8,
        shape=(16, 12, 12),
        batch_size=3,
        resample=2,
        plain_tail=1,
        num_steps=3,
        mesh=mesh,
        progress=False,
    )
    summary = outpaint(
        jax.random.key(7), denoiser(apply_fn, schedule, mesh=mesh), schedule,
        out_dir=volume, **common,
    )  # fmt: skip
    results["summary_blocks"] = np.asarray(summary["blocks"])
    if is_primary():
        results["volume"] = np.load(volume / "volume" / "values.npy")
        results["grain_ids"] = np.load(volume / "grain_ids.npy")
    seconds["outpaint"] = time.perf_counter() - t0

    from jaxmicro.reconstruct import Spec, descriptor, run_reconstruction

    t0 = time.perf_counter()
    ref = (np.random.default_rng(2).random((12, 12, 1)) > 0.5).astype(np.float32)
    spec = Spec((descriptor("two_point", max_lag=3),))
    rec = run_reconstruction(jax.random.key(3), ref, (12, 12), spec, seeds=3, max_iter=8, mesh=mesh)
    results["ensemble_fields"] = np.asarray(rec.results.field)
    results["ensemble_losses"] = np.asarray(rec.results.final_loss)
    results["ensemble_best"] = np.asarray(rec.best)
    seconds["reconstruct"] = time.perf_counter() - t0
    _write(out, results, seconds)


def _write(out: Path, results: dict, seconds: dict) -> None:
    from jaxmicro.train.parallel import is_primary

    if is_primary():
        np.savez(out / "result.npz", **results)
        (out / "seconds.json").write_text(json.dumps(seconds))


# ---------------------------------------------------------------- the tests


CONFIG = """
from jaxmicro.nn import UNetConfig
from jaxmicro.train import DataConfig, TrainConfig


def get_config(variant):
    return TrainConfig(
        model=UNetConfig(
            spatial_dims=2, channels=(4,), num_res_blocks=1, attention_levels=(), num_groups=2
        ),
        data=DataConfig(path=DATA, shape=(8, 8), seed=1),
        num_diffusion_steps=20,
        beta_start=5e-3,
        beta_end=0.5,
        batch_size=8,
        num_train_steps=STEPS,
        warmup_steps=2,
        learning_rate=1e-2,
        log_every=1,
        checkpoint_every=2,
        ema_decay=0.9,
        fast_compile=True,
    )
"""


def _launch(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "jaxmicro", "launch", "--processes", "2", "--cpu-devices", "2"]
    return subprocess.run(
        [*cmd, "--", *args], capture_output=True, text=True, timeout=TIMEOUT, env=_env(root)
    )


def _setup(root: Path) -> None:
    from jaxmicro.data import write_dataset

    fields = np.sign(np.random.default_rng(0).normal(size=(24, 8, 8, 1))).astype(np.float32)
    write_dataset(root / "data", fields, {"mean": fields.mean(axis=(1, 2, 3))}, shard_size=10)
    text = CONFIG.replace("DATA", repr(str(root / "data"))).replace("STEPS", str(TRAIN_STEPS))
    (root / "config.py").write_text(text)


def _load(root: Path, name: str) -> dict:
    print(name, json.loads((root / name / "seconds.json").read_text()))
    return dict(np.load(root / name / "result.npz"))


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    """One process x 4 devices saves a model, samples from it, outpaints and reconstructs; then
    two processes x 2 devices load that model and do the same."""
    root = tmp_path_factory.mktemp("multihost-light")
    _setup(root)
    seconds = {"one": _run("light", root / "one", 1)}
    seconds["two"] = _run("light", root / "two", 2, str(root / "one" / "run"))
    print("wall seconds:", seconds)
    return root, _load(root, "one"), _load(root, "two")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process x 4 devices, uninterrupted; two processes x 2 devices, the same program, but
    its training stopped halfway (``jaxmicro launch -- train --stop-after``) and resumed by two
    new processes, which then sample and run lgd."""
    root = tmp_path_factory.mktemp("multihost")
    _setup(root)
    seconds = {"one": _run("all", root / "one", 1)}
    start = time.perf_counter()
    train = [f"--config={root / 'config.py'}:tiny", f"--out={root / 'two' / 'run'}"]
    half = _launch(root, "train", *train, f"--stop-after={TRAIN_STEPS // 2}", "--no-progress")
    assert half.returncode == 0, half.stderr[-4000:]
    seconds["two"] = time.perf_counter() - start + _run("resume-all", root / "two", 2)
    print("wall seconds:", seconds)
    return root, _load(root, "one"), _load(root, "two"), half


def _params(result):
    return {k: v for k, v in result.items() if k.startswith("params/")}


def _samples_agree(one, two):
    assert one["samples"].shape == (6, 8, 8, 1)
    np.testing.assert_allclose(two["samples"], one["samples"], atol=1e-5)
    assert np.abs(one["samples"][0] - one["samples"][1]).max() > 1e-3  # distinct samples


def test_samples_of_a_loaded_model_agree(light):
    _, one, two = light
    _samples_agree(one, two)


def test_outpainted_volume_agrees(light):
    _, one, two = light
    assert one["volume"].shape == (16, 12, 12, 1) and np.isfinite(one["volume"]).all()
    np.testing.assert_allclose(two["volume"], one["volume"], atol=1e-5)
    np.testing.assert_array_equal(two["grain_ids"], one["grain_ids"])
    assert int(two["summary_blocks"]) == int(one["summary_blocks"])


def test_reconstruction_ensemble_agrees(light):
    _, one, two = light
    assert one["ensemble_fields"].shape == (3, 12, 12, 1)
    np.testing.assert_allclose(two["ensemble_fields"], one["ensemble_fields"], atol=1e-5)
    np.testing.assert_allclose(two["ensemble_losses"], one["ensemble_losses"], rtol=1e-5)
    assert int(two["ensemble_best"]) == int(one["ensemble_best"])
    assert np.abs(one["ensemble_fields"][0] - one["ensemble_fields"][2]).max() > 1e-3


def test_launch_refuses_a_used_out_folder_on_every_process(light):
    root, *_ = light
    done = _launch(root, "sample", f"--checkpoint={root / 'one' / 'run'}", f"--out={root / 'two'}")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "--out" in done.stderr and "already holds files" in done.stderr
    assert not (root / "two" / "samples.npy").exists()


@pytest.mark.slow  # 1.5-4.5 min on a loaded 2-core CPU: trainings in one and two processes
def test_interrupted_two_process_training_agrees_with_one_process(runs):
    root, one, two, half = runs
    assert one["losses"].shape == (TRAIN_STEPS,)
    assert half.stdout.count("step 2: loss") == 1  # process 0 reports, once
    lines = (root / "two" / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(ln) for ln in lines]
    assert [r["step"] for r in records] == list(range(1, TRAIN_STEPS + 1))  # written once
    np.testing.assert_allclose([r["loss"] for r in records], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(two["losses"], one["losses"][TRAIN_STEPS // 2 :], rtol=1e-5)
    p1, p2 = _params(one), _params(two)
    assert p1.keys() == p2.keys() and len(p1) > 10
    for k in p1:
        np.testing.assert_allclose(p2[k], p1[k], rtol=1e-5, atol=1e-5, err_msg=k)


@pytest.mark.slow  # shares the fixture above
def test_samples_and_lgd_of_the_trained_model_agree(runs):
    _, one, two, _ = runs
    _samples_agree(one, two)
    assert one["lgd"].shape == (4, 8, 8, 1)
    np.testing.assert_allclose(two["lgd"], one["lgd"], atol=1e-5)


def test_launch_and_flags_refuse_bad_arguments():
    from jaxmicro.cli import main

    assert main(["launch", "--processes", "2", "--", "evaluate"]) == 2
    assert main(["launch", "--processes", "0", "--", "train", "--config", "x"]) == 2
    from jaxmicro.train import initialize_distributed

    with pytest.raises(ValueError, match="coordinator"):
        initialize_distributed(coordinator="localhost", num_processes=2, process_id=0)
    with pytest.raises(ValueError, match="process_id"):
        initialize_distributed(coordinator="127.0.0.1:1", num_processes=2, process_id=2)
    with pytest.raises(ValueError, match="coordinator"):
        initialize_distributed(num_processes=2)


if __name__ == "__main__":
    _child(*sys.argv[1:])
