"""`jaxmicro outpaint` end to end on a tiny 3D run: a box, an STL part, resume and bad input.

The run predicts v with a learned variance (hybrid loss): the command must go through the
denoiser adapter (it used to pass the raw 2C-channel output to RePaint and crash). Its
parameters are the initial ones, checkpointed without a training step (``stop_after=0``): the
command reads any run folder alike, and training is tested in test_train / test_cli_train.
Every generation compiles a RePaint program: the box run is shared by the tests that read it.
"""

import json
import shutil

import numpy as np
import pytest

from jaxmicro.cli import main
from jaxmicro.data import write_dataset
from jaxmicro.nn import UNetConfig
from jaxmicro.outpaint import mask_surface, write_stl
from jaxmicro.train import DataConfig, TrainConfig, fit

# Module fixtures are built once (--dist loadfile: a module runs on one worker); a long unit.
pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("outpaint")
    rng = np.random.default_rng(0)
    blocks = np.repeat(rng.uniform(-1, 1, (16, 2, 2, 2, 1)), 4, axis=1)
    blocks = np.repeat(np.repeat(blocks, 4, axis=2), 4, axis=3).astype(np.float32)
    write_dataset(root / "blocks", blocks)
    config = TrainConfig(
        name="tiny3d",
        model=UNetConfig(
            spatial_dims=3,
            in_channels=1,
            channels=(4,),
            num_res_blocks=1,
            attention_levels=(),
            num_groups=2,
            dropout=0.0,
            learned_variance=True,
        ),
        data=DataConfig(path=str(root / "blocks"), shape=(8, 8, 8)),
        loss="hybrid",
        parameterization="v",
        num_diffusion_steps=10,
        batch_size=4,
        num_train_steps=2,
        warmup_steps=1,
        log_every=1,
        checkpoint_every=2,
    )
    fit(config, root / "run", stop_after=0, progress=False)  # step 0: no step compiled
    return root


def _outpaint(run, out, *extra):
    return main(
        [
            "outpaint",
            "--checkpoint",
            str(run),
            "--out",
            str(out),
            "--resample",
            "2",
            "--plain-tail",
            "1",
            "--steps",
            "4",
            "--batch-size",
            "4",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def box(tiny_run):
    """A finished box run (folder and values), read by the tests below (one compilation)."""
    out = tiny_run / "box"
    assert _outpaint(tiny_run / "run", out, "--shape", "12,12,16") == 0
    return out, np.load(out / "volume" / "values.npy")


def test_box_is_filled_segmented_and_resumable(tiny_run, box):
    out, values = box
    written = np.load(out / "volume" / "written.npy")
    assert values.shape == (12, 12, 16, 1) and np.isfinite(values).all()
    assert (written >= 0).all()  # every voxel generated
    labels = np.load(out / "grain_ids.npy")
    assert labels.shape == (12, 12, 16) and labels.min() >= 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grains"] == labels.max() and summary["voxels_per_minute"] > 0
    assert summary["grains_measured"] <= summary["grains"]
    assert summary["sampler"]["resample"] == 2 and summary["denoiser_calls_per_block"] == 7
    for name in ("volume.vti", "slices.png", "statistics.md"):
        assert (out / name).stat().st_size > 0
    # A used folder is refused without --resume or --overwrite, and left as it was.
    assert _outpaint(tiny_run / "run", out, "--shape", "12,12,16") == 2
    np.testing.assert_array_equal(np.load(out / "volume" / "values.npy"), values)
    # A finished run resumed does nothing more and keeps the same volume.
    assert _outpaint(tiny_run / "run", out, "--shape", "12,12,16", "--resume") == 0
    np.testing.assert_array_equal(np.load(out / "volume" / "values.npy"), values)


def test_stl_part_is_masked(tiny_run):
    stl = tiny_run / "part.stl"
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.5, 1.2])  # x, y, z
    v = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], float) * (hi - lo)
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    tris = [[v[a], v[b], v[c]] for a, b, c, d in quads] + [
        [v[a], v[c], v[d]] for a, b, c, d in quads
    ]
    write_stl(stl, np.array(tris))
    out = tiny_run / "part"
    reference = tiny_run / "reference.npy"
    np.save(reference, np.repeat(np.arange(8).reshape(2, 2, 2), 5, 0).repeat(5, 1).repeat(5, 2))
    assert (
        _outpaint(
            tiny_run / "run",
            out,
            "--stl",
            str(stl),
            "--voxel",
            "0.1",
            "--reference",
            str(reference),
        )
        == 0
    )
    labels = np.load(out / "grain_ids.npy")
    assert labels.shape == (12, 8, 10)  # z, y, x of the part at 0.1, padded to the block in y
    assert (labels[:, 5:, :] == 0).all() and (labels[:, :5, :] > 0).all()
    assert "KL" in (out / "statistics.md").read_text()


def test_overwrite_replaces_a_finished_run(tiny_run, box):
    finished, first = box
    out = tiny_run / "again"
    shutil.copytree(finished, out)  # a finished run with seed 0
    args = ("--shape", "12,12,16", "--seed", "1", "--overwrite")
    assert _outpaint(tiny_run / "run", out, *args) == 0
    values = np.load(out / "volume" / "values.npy")
    assert values.shape == first.shape and not np.array_equal(values, first)
    assert (np.load(out / "volume" / "written.npy") >= 0).all()


@pytest.mark.parametrize(
    "extra, option",
    [
        (("--shape", "4,4,4"), "--shape"),
        (("--shape", "8,8,8", "--resample", "0"), "--resample"),
        (("--shape", "8,8,8", "--steps", "99"), "--steps"),
        (("--stl", "missing.stl"), "--voxel"),
        (("--shape", "8,8,8", "--reference", "missing.npy"), "--reference"),
    ],
)
def test_bad_arguments_exit_with_a_message_and_no_folder(tiny_run, capsys, extra, option):
    out = tiny_run / "bad"
    assert _outpaint(tiny_run / "run", out, *extra) == 2
    assert f"error: {option}:" in capsys.readouterr().err
    assert not out.exists()


def test_model_and_checkpoint_are_exclusive_and_one_is_required(tiny_run, capsys):
    with pytest.raises(SystemExit):
        main(["outpaint", "--shape", "8,8,8", "--out", str(tiny_run / "x")])
    with pytest.raises(SystemExit):
        main(["outpaint", "--model", "a", "--checkpoint", "b", "--shape", "8,8,8", "--out", "x"])
    assert main(["outpaint", "--model", "nope", "--shape", "8,8,8", "--out", "x"]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_model_card_sets_the_sampler_and_names_the_example_part(tiny_run):
    from jaxmicro.train import export_model

    part = tiny_run / "cardpart.stl"
    box = np.zeros((12, 5, 10), bool)
    box[:, :, :] = True
    write_stl(part, mask_surface(box, voxel=0.1))
    card = {
        "name": "tiny",
        "paper": "GrainPaint",
        "generates": "test fields",
        "metrics": {},
        "data_command": "none",
        "outpaint": {
            "resample": 2,
            "jump": 1,
            "plain_tail": 1,
            "num_steps": 4,
            "eta": 0.5,
            "batch_size": 4,
        },
        "example": {"stl": "cardpart.stl", "voxel": 0.1},
    }
    folder = export_model(tiny_run / "run", tiny_run / "exported", card=card, files=(part,))
    out = tiny_run / "card_example"
    assert (
        main(["outpaint", "--checkpoint", str(folder), "--out", str(out), "--stl", "example"]) == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    sampler = {k: summary["sampler"][k] for k in card["outpaint"]}
    assert sampler == card["outpaint"] and summary["denoiser_calls_per_block"] == 7
    labels = np.load(out / "grain_ids.npy")
    assert labels.shape == (12, 8, 10) and (labels[:, 5:] == 0).all() and labels[:, :5].all()
    # Any sampler option replaces the card's sampler (batch size stays the card's).
    out = tiny_run / "card_override"
    args = ["outpaint", "--checkpoint", str(folder), "--out", str(out), "--shape", "8,8,8"]
    assert main([*args, "--resample", "1"]) == 0
    sampler = json.loads((out / "summary.json").read_text())["sampler"]
    assert (sampler["resample"], sampler["num_steps"], sampler["eta"]) == (1, None, 1.0)
    assert sampler["batch_size"] == 4 and sampler["plain_tail"] == 25
    # 'example' needs a model folder that ships one.
    bad = ["outpaint", "--checkpoint", str(tiny_run / "run"), "--out", str(tiny_run / "no")]
    assert main([*bad, "--stl", "example"]) == 2
