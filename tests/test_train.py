"""Tests of jaxmicro.train: sharded step, EMA, checkpoints, exact resume."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.data import boundary_field, write_dataset
from jaxmicro.nn import UNetConfig
from jaxmicro.train import (
    Checkpointer,
    DataConfig,
    TrainConfig,
    abstract_with_shardings,
    batch_mesh,
    batch_sharded,
    ema_update,
    fit,
    init_state,
    learning_rate_schedule,
    load_config,
    make_optimizer,
    make_schedule,
    make_train_step,
    replace_fields,
    replicated,
    save_config,
    step_key,
    training_source,
)
from jaxmicro.train.config import FAST_COMPILE

# Module fixtures are built once (--dist loadfile: a module runs on one worker); a long unit.
pytestmark = pytest.mark.heavy

# One level, no attention: the properties tested here (sharding, resume, checkpoints) do not
# depend on the depth, and a network of two levels with attention compiles twice as long.
MICRO = UNetConfig(
    spatial_dims=2,
    channels=(4,),
    num_res_blocks=1,
    attention_levels=(),
    num_groups=2,
    dropout=0.1,
)

FIELDS = np.sign(np.random.default_rng(0).normal(size=(24, 8, 8, 1))).astype(np.float32)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """A jaxmicro.data folder of 24 float fields (8, 8, 1) in {-1, +1}."""
    path = tmp_path_factory.mktemp("data") / "fields"
    write_dataset(path, FIELDS, {"mean": FIELDS.mean(axis=(1, 2, 3))}, shard_size=10)
    return str(path)


def micro_config(data_file, **kw):
    base = dict(
        model=MICRO,
        data=DataConfig(path=data_file, shape=(8, 8), seed=1),
        num_diffusion_steps=20,
        beta_start=5e-3,
        beta_end=0.5,
        batch_size=8,
        num_train_steps=6,
        warmup_steps=2,
        learning_rate=1e-2,
        log_every=1,
        checkpoint_every=100,
        ema_decay=0.9,
        fast_compile=True,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_sharded_step_equals_single_device(data_file):
    cfg = micro_config(data_file)
    opt = make_optimizer(cfg)
    graphdef, init_fn = init_state(cfg, opt)
    step = make_train_step(cfg, graphdef, make_schedule(cfg), opt)
    batch = {"x": jnp.asarray(FIELDS[:8])}
    results = []
    for n in (1, 4):
        mesh = batch_mesh(n)
        rep, shard = replicated(mesh), batch_sharded(mesh)
        state = jax.jit(init_fn, out_shardings=rep, compiler_options=FAST_COMPILE)()
        f = jax.jit(
            lambda s, b: step(step_key(s), s, b),
            in_shardings=(rep, shard),
            out_shardings=(rep, rep),
            compiler_options=FAST_COMPILE,  # the same program either way; compiles 10x faster
        )
        state, metrics = f(state, jax.device_put(batch, shard))
        results.append((state, metrics))
    (s1, m1), (s4, m4) = results
    assert int(s4.step) == 1 and int(s4.position) == 8
    np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s4.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert len(s4.params["conv_in"]["kernel"].sharding.device_set) == 4


def test_ema_update():
    ema, params = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 0.0])}
    out = ema_update(ema, params, 0.9, jnp.array(1000))
    np.testing.assert_allclose(out["w"], [0.9 * 1 + 0.1 * 3, 0.9 * 2], rtol=1e-6)
    early = ema_update(ema, params, 0.9, jnp.array(0))  # decay warm-up: d = 1/10
    np.testing.assert_allclose(early["w"], [0.1 * 1 + 0.9 * 3, 0.1 * 2], rtol=1e-6)


def test_lr_cycles_restart_the_cosine_and_extend_a_finished_run():
    one = TrainConfig(num_train_steps=60, learning_rate=2e-3, warmup_steps=10)
    two = dataclasses.replace(one, num_train_steps=100, lr_cycles=(60, 40), lr_cycle_decay=0.25)
    short = dataclasses.replace(one, num_train_steps=40, learning_rate=5e-4)
    lr, lr_one, lr_short = (learning_rate_schedule(c.validate()) for c in (two, one, short))
    steps = np.arange(100)
    got = np.array([float(lr(s)) for s in steps])
    # the first cycle is the one-cycle run (so a finished run extends by a cycle), the second
    # restarts the warmup and cosine at a quarter of the peak: 0 at each boundary
    np.testing.assert_allclose(got[:60], [float(lr_one(s)) for s in steps[:60]], rtol=1e-6)
    np.testing.assert_allclose(got[60:], [float(lr_short(s)) for s in steps[:40]], rtol=1e-6)
    np.testing.assert_allclose(got[[0, 10, 60, 70]], [0.0, 2e-3, 0.0, 5e-4], rtol=1e-6, atol=0)
    assert 0 < got[59] < 1e-5 and 0 < got[99] < 1e-5
    for bad in ({"lr_cycles": (60, 30)}, {"lr_cycles": (100, 0)}, {"lr_cycle_decay": 0.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            dataclasses.replace(two, **bad).validate()


def test_checkpoint_round_trip(tmp_path, data_file):
    cfg = micro_config(data_file)
    graphdef, init_fn = init_state(cfg, make_optimizer(cfg))
    state = jax.jit(init_fn, compiler_options=FAST_COMPILE)()
    state = state._replace(step=state.step + 7, position=state.position + 56)
    ckpt = Checkpointer(tmp_path / "ck")
    ckpt.save(7, state)
    ckpt.wait()
    mesh = batch_mesh(4)
    restored = ckpt.restore(abstract_with_shardings(jax.eval_shape(init_fn), replicated(mesh)))
    ckpt.close()
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)
    assert restored.params["conv_in"]["kernel"].sharding.is_equivalent_to(replicated(mesh), 4)
    with pytest.raises(ValueError, match="no checkpoint"):
        Checkpointer(tmp_path / "empty").restore(jax.eval_shape(init_fn))


def test_training_source_rows_and_config_round_trip(tmp_path, data_file):
    source = training_source(micro_config(data_file, conditions=()), tmp_path / "run")
    assert source.config.data.shape == (8, 8)
    whole = source.batch(5)
    halves = [source.batch(5, slice(0, 4)), source.batch(5, slice(4, 8))]
    np.testing.assert_array_equal(whole["x"], np.concatenate([h["x"] for h in halves]))
    seen = np.concatenate([source.batch(s)["x"] for s in range(3)])  # one epoch: 3 x 8 = 24
    np.testing.assert_array_equal(
        np.sort(seen.reshape(24, -1), 0), np.sort(FIELDS.reshape(24, -1), 0)
    )
    cfg = micro_config(
        data_file, loss="hybrid", model=UNetConfig(learned_variance=True, channels=(8, 16))
    )
    save_config(cfg, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == cfg
    with pytest.raises(ValueError, match="hybrid"):
        micro_config(data_file, loss="hybrid").validate()


def test_boundary_field():
    ids = jnp.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    f = np.asarray(boundary_field(ids))[..., 0]
    want = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]])  # periodic wrap
    np.testing.assert_array_equal(f, want)
    g = np.asarray(boundary_field(ids, periodic=False))[..., 0]
    np.testing.assert_array_equal(g, [[-1, 1, 1, -1], [1, 1, 1, 1], [1, 1, 1, 1], [-1, -1, -1, -1]])


def test_fit_on_a_data_make_folder_with_labels_resumes_exactly(tmp_path):
    """`jaxmicro data make rsa` -> a run conditioned on its volume-fraction label."""
    from jaxmicro.cli import main

    folder = tmp_path / "rsa"
    argv = ["data", "make", "rsa", "-n", "16", "--size", "8", "--radius", "1.5", "--quiet"]
    assert main([*argv, "--out", str(folder)]) == 0
    assert main([*argv, "--out", str(folder)]) == 2  # a used folder is refused
    model = dataclasses.replace(MICRO, num_scalar_conditions=1, context_dim=8, dropout=0.0)
    cfg = micro_config(str(folder), model=model, conditions=("volume_fraction",), cond_dropout=0.25)
    cfg = dataclasses.replace(cfg, data=DataConfig(path=str(folder), shape=(8, 8), seed=1))
    straight = fit(cfg, tmp_path / "a", progress=False)
    first = fit(cfg, tmp_path / "b", stop_after=3, progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        fit(cfg, tmp_path / "b", progress=False)
    for change in ({"parameterization": "v"}, {"num_diffusion_steps": 11}):
        with pytest.raises(ValueError, match=next(iter(change))):  # refused before any write
            fit(dataclasses.replace(cfg, **change), tmp_path / "b", resume=True, progress=False)
    rest = fit(cfg, tmp_path / "b", resume=True, progress=False)
    assert [r["step"] for r in first + rest] == list(range(1, 7))
    assert [r["loss"] for r in first + rest] == [r["loss"] for r in straight]
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["loss"] for ln in lines] == [r["loss"] for r in straight]
    saved = load_config(tmp_path / "b" / "config.json")
    assert saved == dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, shape=(8, 8)))
    stats = json.loads((tmp_path / "b" / "conditions.json").read_text())["scalars"][0]
    fractions = [
        json.loads((folder / "metadata.json").read_text())["labels"][i]["volume_fraction"]
        for i in range(16)
    ]
    assert stats["name"] == "volume_fraction"
    np.testing.assert_allclose(
        [stats["mean"], stats["std"]], [np.mean(fractions), np.std(fractions)]
    )


def test_replace_fields_takes_json_overrides_and_names_bad_ones():
    model = UNetConfig(spatial_dims=3, channels=(16, 32, 32))
    wider = replace_fields(model, {"channels": [32, 32, 32], "attention_levels": []})
    assert wider == dataclasses.replace(model, channels=(32, 32, 32), attention_levels=())
    train = replace_fields(TrainConfig(model=model), {"loss": "l1", "learning_rate": 2})
    assert (train.loss, train.learning_rate, train.model) == ("l1", 2, model)
    with pytest.raises(ValueError, match="no field chanels"):
        replace_fields(model, {"chanels": [8]})
    with pytest.raises(ValueError, match="num_train_steps"):
        replace_fields(TrainConfig(), {"num_train_steps": "many"})
