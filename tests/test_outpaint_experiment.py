"""experiments/grainpaint: the config variants, and a tiny run end to end that resumes (slow)."""

import dataclasses
import json
from pathlib import Path

import pytest

from jaxmicro._modules import load_file_module
from jaxmicro.nn import UNetConfig

ROOT = Path(__file__).resolve().parents[1] / "experiments" / "grainpaint"


config, run = load_file_module(ROOT / "config.py"), load_file_module(ROOT / "run.py")


def test_paper_variant_follows_grainpaint():
    paper = config.get_config("paper")
    train = paper.train.validate()
    assert (train.num_diffusion_steps, train.beta_start, train.beta_end) == (250, 1e-4, 0.02)
    assert train.schedule == "linear" and train.data.representation == "grain-values"
    assert paper.block == 32 and paper.plain_tail == 25 and max(paper.resamplings) == 10
    # Reference volumes keep the training volumes' Voronoi seed density.
    assert paper.reference_initial_grains == round(20_000 * 1.28**3)
    runs = run.sampler_runs(paper)
    assert runs["ddim"] == dict(resample=10, plain_tail=5, num_steps=50)
    with pytest.raises(ValueError, match="variant"):
        config.get_config("huge")


@pytest.mark.slow  # ~70-110 s on a shared 2-core CPU (three compilations)
def test_a_tiny_run_writes_its_table_and_continues_where_it_stopped(tmp_path):
    smoke = config.get_config("smoke")
    block = 8
    tiny = dataclasses.replace(
        smoke,
        name="tiny",
        train=dataclasses.replace(
            smoke.train,
            model=UNetConfig(
                spatial_dims=3,
                in_channels=1,
                channels=(4, 8),
                num_res_blocks=1,
                attention_levels=(),
                num_groups=2,
                dropout=0.0,
            ),
            data=dataclasses.replace(smoke.train.data, shape=(block,) * 3),
            num_diffusion_steps=10,
            batch_size=4,
            num_train_steps=2,
            warmup_steps=1,
            log_every=1,
            checkpoint_every=2,
            fast_compile=True,
        ),
        potts_volumes=1,
        potts_size=16,
        potts_initial_grains=60,
        potts_sweeps=2,
        boundary_blocks=2,
        reference_volumes=1,
        outpaint_size=12,
        resamplings=(1,),
        plain_tail=1,
        ddim_steps=4,
        batch_size=4,
    )
    summaries = run.run(tiny, tmp_path, progress=False)
    assert set(summaries) == {"repaint_U1", "ddim"}
    assert summaries["repaint_U1"]["denoiser_calls_per_block"] == 10
    assert summaries["ddim"]["sampler"]["num_steps"] == 4
    for name in summaries:
        assert (tmp_path / name / "grain_ids.npy").is_file()
        assert summaries[name]["statistics"]["volume"]["n_reference"] > 0
    table = (tmp_path / "summary.md").read_text()
    assert "| repaint_U1 | 10 |" in table and "| ddim | 4 |" in table

    # Again: nothing is regenerated, retrained or resampled.
    def files():
        return {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}

    records = (tmp_path / "model" / "metrics.jsonl").read_text()
    before = files()
    again = run.run(tiny, tmp_path, progress=False)
    assert again == json.loads(json.dumps(summaries))
    assert (tmp_path / "model" / "metrics.jsonl").read_text() == records  # no more steps
    for path, stamp in before.items():
        if path.name != "summary.md" and "model" not in path.relative_to(tmp_path).parts:
            assert path.stat().st_mtime_ns == stamp, path
