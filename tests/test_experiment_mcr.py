"""experiments/mcr_shsh: the config variants, one study on a tiny config, the smoke run (slow)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from jaxmicro._modules import load_file_module

ROOT = Path(__file__).resolve().parents[1] / "experiments" / "mcr_shsh"


def _module(name):
    return load_file_module(ROOT / f"{name}.py")


def tiny_config():
    config = _module("config").get_config("smoke")
    return dataclasses.replace(
        config,
        shape=(12, 12),
        n_grains=4,
        volume_shape=(8, 8, 8),
        volume_grains=4,
        window=2,
        three_point_lag=1,
        max_iter=6,
        levels=1,
        segments=2,
        optimizer_iter=4,
        n_seeds=2,
        volume_window=2,
        volume_iter=3,
    )


def test_configs():
    get_config = _module("config").get_config
    smoke, paper = get_config("smoke"), get_config("paper")
    assert smoke.shape == (32, 32) and paper.shape == (128, 128)
    assert paper.max_iter == paper.optimizer_iter == 1000 and paper.n_seeds == 10
    assert "run.py smoke" in type(smoke).__doc__
    with pytest.raises(ValueError, match="variant"):
        get_config("huge")


def test_variogram_study_on_a_tiny_config(tmp_path):
    studies = _module("studies")
    config = tiny_config()
    s = studies.setup(config)
    assert s.reference.shape == (12, 12, 4) and s.volume.shape == (8, 8, 8, 4)
    numbers = studies.variogram(s, tmp_path)
    assert numbers["final_loss"] > 0
    assert 0 <= numbers["variogram_below_5pct"] <= numbers["variogram_below_15pct"] <= 1
    assert (tmp_path / "variogram_error.png").stat().st_size > 1000
    text = studies.summary_markdown(config, {"variogram": numbers})
    assert "Fig. 12" in text and "below 5%" in text


@pytest.mark.slow
def test_smoke_run(tmp_path):
    numbers = _module("run").main("smoke", str(tmp_path))
    summary = (tmp_path / "summary.md").read_text()
    for fig in ("Fig. 6", "Fig. 7", "Fig. 8", "Fig. 9", "Fig. 12", "Fig. 13", "Fig. 18", "Fig. 19"):
        assert fig in summary
    assert json.loads((tmp_path / "summary.json").read_text())["seeds"]["min"] > 0
    assert len(numbers["seeds"]["final_losses"]) == 10
    lbfgsb = numbers["optimizers"]["lbfgsb"]["final_loss"]
    assert lbfgsb < numbers["optimizers"]["sgd"]["final_loss"]
    assert np.isfinite(numbers["volume"]["final_loss"])
