"""The generative pipeline end to end: dataset folder -> conditional training -> load -> sample.

A tiny 2D conditional run where the condition sets a visible property of the data (the phase
fraction of i.i.d. binary fields): the loss falls, samples at two condition values differ in that
property in the right direction, and with guidance scale 0 the condition is ignored. Commands
(`data make`, `train`-style fit on its folder with labels, `sample --condition`, `models`) are
exercised on the same run, and every shipped model samples through `--model`.
"""

import dataclasses
import json

import jax
import numpy as np
import pytest

from jaxmicro import pretrained
from jaxmicro.cli import main
from jaxmicro.data import write_dataset
from jaxmicro.nn import UNetConfig
from jaxmicro.train import DataConfig, TrainConfig, export_model, fit, generate, load_model
from jaxmicro.train.sampling import _compiled_sampler

# Module fixtures are built once (--dist loadfile: a module runs on one worker); a long unit.
pytestmark = pytest.mark.heavy

CARD = {
    "name": "tiny",
    "paper": "test",
    "generates": "8x8 binary fields",
    "metrics": {"fraction_response": 1.0},
    "data_command": "write_dataset in tests/test_pipeline.py",
}


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(0)
    n = 96
    fraction = rng.uniform(0.1, 0.9, n)
    x = (rng.uniform(size=(n, 8, 8)) < fraction[:, None, None]).astype(np.int32)
    write_dataset(root / "data", x, {"fraction": fraction}, kind="two-phase")
    config = TrainConfig(
        model=UNetConfig(
            spatial_dims=2,
            channels=(8, 16),
            num_res_blocks=1,
            attention_levels=(1,),
            num_groups=4,
            dropout=0.0,
            num_scalar_conditions=1,
            context_dim=16,
        ),
        data=DataConfig(path=str(root / "data"), shape=()),
        conditions=("fraction",),
        cond_dropout=0.2,
        num_diffusion_steps=50,
        beta_start=1e-3,
        beta_end=0.2,
        batch_size=16,
        num_train_steps=160,
        fast_compile=True,
        learning_rate=3e-3,
        warmup_steps=20,
        ema_decay=0.95,
        log_every=20,
        checkpoint_every=1000,
    )
    records = fit(config, root / "run", progress=False)
    return root, records


def test_conditional_run_responds_to_its_condition(conditional_run):
    root, records = conditional_run
    losses = [r["loss"] for r in records]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:2])
    model = load_model(root / "run")
    stats = json.loads((root / "run" / "conditions.json").read_text())
    assert stats["scalars"][0]["name"] == "fraction"

    def fraction(value, scale):
        conditions = model.conditions({"fraction": value})
        x = generate(
            jax.random.key(0), model, 32, steps=10, conditions=conditions, guidance_scale=scale
        )
        return float((x > 0).mean())

    plain = fraction(0.8, None) - fraction(0.2, None)
    guided = fraction(0.8, 3.0) - fraction(0.2, 3.0)
    assert plain > 0.1 and guided > plain, (plain, guided)
    # Guidance scale 0 is the null-token model: the condition is ignored, sample for sample.
    a, b = (
        generate(
            jax.random.key(1),
            model,
            8,
            steps=5,
            conditions=model.conditions({"fraction": v}),
            guidance_scale=0.0,
        )
        for v in (0.2, 0.8)
    )
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="unknown name"):
        model.conditions({"grain_count": 3})


def test_sample_command_and_registry(conditional_run, tmp_path, monkeypatch, capsys):
    root, _ = conditional_run
    out = tmp_path / "gen"
    args = ["sample", "--checkpoint", str(root / "run"), "-n", "6", "--steps", "4"]
    assert main([*args, "--condition", "fraction=0.8", "--guidance", "2", "--out", str(out)]) == 0
    x = np.load(out / "samples.npy")
    assert x.shape == (6, 8, 8, 1) and np.all(np.abs(x) <= 1)
    assert json.loads((out / "sample.json").read_text())["conditions"] == {"fraction": 0.8}
    # The folder is not overwritten without --overwrite; bad conditions are named.
    assert main([*args, "--out", str(out)]) == 2
    assert main([*args, "--condition", "fraction", "--out", str(tmp_path / "b")]) == 2
    assert main([*args, "--condition", "size=3", "--out", str(tmp_path / "c")]) == 2
    assert "unknown name" in capsys.readouterr().err
    # A model exported into the registry samples by name, with the same values as its run.
    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path / "models")
    export_model(root / "run", tmp_path / "models" / "tiny", card=CARD)
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == ["tiny"] and listed[0]["path"].endswith("tiny")
    named = tmp_path / "named"
    assert (
        main(
            [
                "sample",
                "--model",
                "tiny",
                "-n",
                "6",
                "--steps",
                "4",
                "--condition",
                "fraction=0.8",
                "--guidance",
                "2",
                "--out",
                str(named),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(np.load(named / "samples.npy"), x)
    assert main(["sample", "--model", "nope", "--out", str(tmp_path / "d")]) == 2


def test_sample_command_takes_the_cards_eta(conditional_run, tmp_path, monkeypatch):
    """A shipped model's measured DDIM eta is the default of ``jaxmicro sample``; --eta wins."""
    root, _ = conditional_run
    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path / "models")
    card = dict(CARD, sampling={"sampler": "ddim", "steps": 4, "eta": 1.0})
    export_model(root / "run", tmp_path / "models" / "tiny", card=card)
    runs = {}
    for name, extra in (("card", []), ("zero", ["--eta", "0"])):
        args = ["sample", "--model", "tiny", "-n", "4", "--steps", "4", *extra]
        assert main([*args, "--out", str(tmp_path / name)]) == 0
        runs[name] = np.load(tmp_path / name / "samples.npy")
        eta = json.loads((tmp_path / name / "sample.json").read_text())["eta"]
        assert eta == (0.0 if name == "zero" else 1.0)
    assert np.abs(runs["card"] - runs["zero"]).max() > 1e-3
    assert load_model(root / "run").ddim_eta == 0.0  # no card: deterministic DDIM


def test_runs_that_differ_only_in_training_share_the_compiled_sampler(conditional_run):
    """The sampler cache is keyed on what sampling reads (network, schedule, parameterization):
    another name, data path or optimizer reuses the program; another schedule compiles anew."""
    root, _ = conditional_run
    model = load_model(root / "run")
    options = dict(steps=3, conditions=None)
    x = generate(jax.random.key(2), model, 4, **options)
    before = _compiled_sampler.cache_info()
    renamed = dataclasses.replace(
        model.config,
        name="other",
        data=dataclasses.replace(model.config.data, path="elsewhere"),
        learning_rate=1.0,
        num_train_steps=7,
        lr_cycles=(3, 4),
    )
    y = generate(jax.random.key(2), dataclasses.replace(model, config=renamed), 4, **options)
    after = _compiled_sampler.cache_info()
    np.testing.assert_array_equal(x, y)
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
    rescheduled = dataclasses.replace(model.config, beta_end=0.1)
    generate(jax.random.key(2), dataclasses.replace(model, config=rescheduled), 4, **options)
    assert _compiled_sampler.cache_info().misses == after.misses + 1


@pytest.mark.parametrize("name", pretrained.names())
def test_every_shipped_model_samples(name, tmp_path):
    card = json.loads((pretrained.model_path(name) / "card.json").read_text())
    model = load_model(name)
    x = generate(jax.random.key(0), model, 2, steps=3, conditions=None)
    assert np.all(np.isfinite(x)) and x.shape[0] == 2
    assert {"paper", "generates", "metrics", "data_command"} <= set(card)


def test_shipped_models_stay_small():
    total = sum(m["size_mb"] for m in pretrained.list_models())
    assert total < 30.0
