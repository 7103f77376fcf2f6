"""The ``paper`` variants of lee_yun, polycrysdiff and grainpaint run every stage on the CPU with
their networks, schedules and sizes, and only the counts cut (and, where said, T or sizes):
none has run at its scale yet, and a lent GPU's minutes should not go to finding a crash. One
module, so they run one after another on one worker: each holds several GB (4 fake devices
replicate the parameters and optimizer states of networks of up to 93M parameters). The
PolyCrysDiff one, the largest, comes first: alone it peaks at 17.7 GB of resident memory, but
after other tests in the same process (the Lee & Yun one last) it reached 20.8 GB and was
killed for memory on the 24 GB machine, the other worker busy (`-n 2 -m slow`, 2026-12-07).
rogsh_lgd's paper variant is not here: in one process with these, the PolyCrysDiff test after
it was killed for memory on the 24 GB CPU machine (its dry run on one device passed:
docs/rogsh_lgd.md)."""

import dataclasses
import json
import types
from pathlib import Path

import numpy as np
import pytest

from jaxmicro._modules import load_file_module

pytestmark = pytest.mark.heavy

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _experiment(name: str) -> types.SimpleNamespace:
    folder = EXPERIMENTS / name
    return types.SimpleNamespace(
        config=load_file_module(folder / "config.py"), run=load_file_module(folder / "run.py")
    )


ly, pcd, gp = (_experiment(n) for n in ("lee_yun", "polycrysdiff", "grainpaint"))
# two training steps of four examples (one per fake device), checkpointed
SHORT = dict(batch_size=4, num_train_steps=2, warmup_steps=1, log_every=1, checkpoint_every=2)


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """They run in one process: drop each one's compiled programs before the next."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


@pytest.mark.slow  # ~9 min, 17.7 GB on 2 CPU cores: 64^3 volumes, the VAE, the 71M latent UNet
def test_polycrysdiff_paper_variant_runs_every_stage_with_counts_cut(tmp_path, monkeypatch):
    # the volumes, VAE, latent UNet and analysis; counts and steps are cut
    from jaxmicro.train import load_model

    monkeypatch.setenv("JAXMICRO_VGG19", str(tmp_path / "absent.npz"))
    p = pcd.config.get_config("paper")
    cfg = dataclasses.replace(
        p,
        num_volumes=4,
        num_reference=2,
        vae=dataclasses.replace(p.vae, **SHORT),
        diffusion=dataclasses.replace(p.diffusion, sample_every=0, **SHORT),
        num_generated=2,
        num_targets=2,
        repeats=1,
        guidance_scales=(0.0, 1.0),
        sampler_steps=2,
        sample_batch_size=2,
    )
    pcd.run.train(cfg, tmp_path)
    sampler = pcd.run.model_sampler(cfg, load_model(tmp_path / "unet"))
    results = pcd.run.evaluate(cfg, tmp_path, sampler)
    assert results["complete"]
    x = np.load(tmp_path / "samples" / "unconditional.npy")
    assert x.shape == (2, 64, 64, 64, 3) and np.all(np.isfinite(x))
    assert pcd.run.export(cfg, tmp_path) is None  # the paper variant exports nothing


@pytest.mark.slow  # ~10 min, 12.5 GB on 2 CPU cores: the paper's 93M UNet, 150-step samples
def test_lee_yun_paper_variant_runs_every_stage_with_counts_cut(tmp_path):
    # the network, T = 4000 schedule and 150-step sampler; only the counts are cut
    p = ly.config.get_config("paper")
    cfg = dataclasses.replace(
        p,
        num_train=8,
        num_held_out=8,
        num_samples=4,
        sweep_steps=(10,),
        sweep_etas=(0.0,),
        sweep_ddpm=False,
        sweep_samples=4,
        sample_batch_size=4,
        vgg="random",
        train=dataclasses.replace(p.train, sample_every=0, **SHORT),
    )
    stages = ("data", "train", "evaluate", "sweep", "export")
    ly.run.run_material(cfg, "fiber", tmp_path, stages, [None, None], tmp_path / "models")
    ev = json.loads((tmp_path / "fiber" / "evaluation.json").read_text())
    assert ev["complete"] and ev["train_step"] == 2
    assert (ev["sampler"], ev["eta"]) == ("ddim-150", 0.0)
    assert np.isfinite(ev["generated"]["s2"]) and np.isfinite(ev["generated"]["lineal"])
    sweep = json.loads((tmp_path / "fiber" / "sweep.json").read_text())
    assert sweep["complete"] and [r["name"] for r in sweep["rows"]] == ["ddim-10"]
    assert not (tmp_path / "models").exists()  # the paper variant exports nothing


@pytest.mark.slow  # ~2 min on 2 CPU cores: 32^3 blocks of the ~6M-parameter UNet
def test_grainpaint_paper_variant_runs_every_stage_with_counts_cut(tmp_path):
    # the 32^3 blocks and network; counts, sizes, schedules and diffusion steps (T = 10) are cut
    p = gp.config.get_config("paper")
    cfg = dataclasses.replace(
        p,
        train=dataclasses.replace(p.train, num_diffusion_steps=10, **SHORT),
        schedules=("linear",),
        potts_volumes=1,
        potts_size=64,
        potts_initial_grains=500,
        potts_sweeps=3,
        boundary_blocks=2,
        reference_volumes=1,
        outpaint_size=48,
        shipped_reference_size=48,
        resamplings=(1,),
        plain_tail=1,
        fast=(),
        batch_size=8,
    )
    model = tmp_path / "model"
    results = gp.run.run(cfg, tmp_path / "out", export_to=model, progress=False)
    assert results["complete"] and results["schedules"]["linear"]["U1"]["grains"] >= 1
    card = json.loads((model / "card.json").read_text())
    assert card["name"] == "model" and card["schedule"] == "linear"
    assert np.load(model / "reference.npy").shape == (48, 48, 48)
