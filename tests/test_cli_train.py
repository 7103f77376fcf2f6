"""Smoke runs of `jaxmicro train` and `jaxmicro sample` on a tiny Voronoi boundary config."""

import json

import numpy as np
import pytest

from jaxmicro.cli import main
from jaxmicro.train import TrainConfig, load_experiment_config

TINY = """
from jaxmicro.nn import UNetConfig
from jaxmicro.train import DataConfig, TrainConfig


def get_config(variant):
    if not variant.isdigit():
        raise ValueError(f"variant: expected a number of steps, got {variant!r}")
    data = DataConfig(kind="voronoi", shape=(16, 16), num_examples=8,
                      params=(("grains", (5, 5)),), representation="boundaries")
    model = UNetConfig(channels=(4, 8), num_res_blocks=1, attention_levels=(1,), num_groups=2,
                       dropout=0.0)
    return TrainConfig(name="tiny", data=data, model=model, num_train_steps=int(variant),
                       num_diffusion_steps=200, beta_start=5e-4, beta_end=0.1,
                       batch_size=4, log_every=1, checkpoint_every=100, sample_every=2,
                       num_preview_samples=4, preview_ddim_steps=2, fast_compile=True)
"""


def test_experiment_configs_validate(tmp_path):
    config = tmp_path / "tiny.py"
    config.write_text(TINY)
    cfg = load_experiment_config(f"{config}:3")
    assert isinstance(cfg, TrainConfig) and cfg.data.shape == (16, 16)
    with pytest.raises(ValueError, match="variant"):
        load_experiment_config(f"{config}:huge")
    with pytest.raises(ValueError, match="no Python file"):
        load_experiment_config("nowhere/config.py:smoke")


@pytest.mark.slow  # 60 s; fit, resume and sample are covered by test_train and test_pipeline
def test_train_and_sample_commands(tmp_path):
    config = tmp_path / "tiny.py"
    config.write_text(TINY)
    run = tmp_path / "run"
    assert main(["train", "--config", f"{config}:2", "--out", str(run), "--no-progress"]) == 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [1, 2]
    assert (run / "samples" / "step_2.png").exists()
    # Resuming a finished run with a larger budget continues from step 2.
    assert (
        main(["train", "--config", f"{config}:3", "--out", str(run), "--resume", "--no-progress"])
        == 0
    )
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3
    out = tmp_path / "gen"
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(run),
                "-n",
                "3",
                "--sampler",
                "ddim",
                "--steps",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    x = np.load(out / "samples.npy")
    assert x.shape == (3, 16, 16, 1) and np.all(np.isfinite(x))
    assert (out / "samples.png").exists()
    # Bad input is reported (exit status 2) without a traceback.
    assert main(["sample", "--checkpoint", str(tmp_path), "-n", "2", "--out", str(out)]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--model", "m", "--out", "d"],
        ["lgd", "--model", "m", "--out", "d"],
        ["data", "make", "rsa", "--out", "d"],
    ],
)
def test_sample_counts_take_n_as_the_issues_write_it(argv):
    """``--n`` is its own spelling of ``-n/--num-samples``: as a prefix it would be ambiguous
    with ``--num-processes`` and refused."""
    from jaxmicro.cli import build_parser

    parser = build_parser()
    for flag in ("-n", "--n", "--num-samples"):
        assert parser.parse_args([*argv, flag, "7"]).num_samples == 7
