"""Tests of jaxmicro.train.autoencoder: VAE training, exact resume, scale, export, latents."""

import hashlib
import json
import os
import shutil

import jax
import numpy as np
import pytest

import jaxmicro.train.autoencoder as ae_module
from jaxmicro.cli import main
from jaxmicro.data import read_metadata, write_dataset
from jaxmicro.nn import VAEConfig
from jaxmicro.synth import palette
from jaxmicro.train.autoencoder import (
    Autoencoder,
    VAETrainConfig,
    compare_reconstructions,
    encode_dataset,
    export_autoencoder,
    fit_vae,
    latent_standardization,
    load_autoencoder,
    load_vae_config,
    reconstruction_quality,
)
from jaxmicro.train.config import DataConfig, config_from_dict, config_to_dict
from jaxmicro.train.parallel import batch_mesh, batch_sharded

# Module fixtures are built once (--dist loadfile: a module runs on one worker); a long unit.
pytestmark = pytest.mark.heavy

TINY = VAEConfig(
    spatial_dims=2,
    in_channels=3,
    channels=(8, 16),
    latent_channels=2,
    num_res_blocks=1,
    num_groups=4,
    mid_attention=False,
)
PALETTE = palette(10)


def two_colour_fields(n: int, size: int = 8, seed: int = 0):
    """Fields of two palette colours split at a random column; labels (split, colour pair)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, size, size, 3), np.float32)
    split = rng.integers(2, size - 1, n)
    pairs = np.stack([rng.choice(10, 2, replace=False) for _ in range(n)])
    for i in range(n):
        x[i, :, : split[i]] = 2 * PALETTE[pairs[i, 0]] - 1
        x[i, :, split[i] :] = 2 * PALETTE[pairs[i, 1]] - 1
    return x, {"split": split, "first_colour": pairs[:, 0]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    x, labels = two_colour_fields(32)
    folder = tmp_path_factory.mktemp("data") / "two-colour"
    write_dataset(folder, x, labels, kind="two-colour", shard_size=12)
    return folder


def tiny_config(dataset, **kw):
    base = dict(
        model=TINY,
        data=DataConfig(path=str(dataset), shape=(8, 8), representation="auto", seed=1),
        batch_size=8,
        num_train_steps=6,
        warmup_steps=2,
        learning_rate=3e-3,
        kl_weight=1e-6,
        ema_decay=0.9,
        log_every=1,
        checkpoint_every=100,
        fast_compile=True,
    )
    base.update(kw)
    return VAETrainConfig(**base)


def trained_config(dataset):
    return tiny_config(dataset, num_train_steps=200, learning_rate=5e-3, warmup_steps=5)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """A VAE run of 200 steps on the two-colour fields, data-parallel over 4 devices."""
    run = tmp_path_factory.mktemp("runs") / "vae"
    cfg = trained_config(dataset)
    records = fit_vae(cfg, run, num_devices=4, progress=False)
    return run, cfg, records


def untrained(cfg: VAETrainConfig) -> Autoencoder:
    """The initial parameters of ``cfg`` (the jitted init of ``fit_vae``, already compiled)."""
    from flax import nnx

    graphdef, _, init_jit, _ = ae_module._compiled_vae(cfg, batch_mesh(4))
    state = init_jit()
    return Autoencoder(cfg.model, nnx.merge(graphdef, state.ema, state.rest), 1.0)


def test_training_reduces_reconstruction_error_and_scales_latents(dataset, trained):
    run, cfg, records = trained
    x, _ = two_colour_fields(32)
    ae = load_autoencoder(run)
    assert ae.step == 200 and ae.config == TINY
    assert {"loss", "mse", "kl", "grad_norm"} <= set(records[-1])
    z = np.asarray(ae.encode(x, batch_size=8))  # the shape compiled for the scale
    assert z.shape == (32, 4, 4, 2) and z.dtype == np.float32
    # the stored standardization gives the (evenly spaced, here all 32) training latents zero
    # mean and unit std in every channel
    channels = z.reshape(-1, 2)
    np.testing.assert_allclose(channels.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(channels.std(0), 1.0, atol=1e-4)
    record = json.loads((run / "scale.json").read_text())
    assert record["step"] == 200 and len(record["shift"]) == len(record["scale"]) == 2
    recon = np.asarray(ae.reconstruct(x, batch_size=8))
    trained_mse = float(np.mean((recon - x) ** 2))
    initial = np.asarray(untrained(cfg).reconstruct(x, batch_size=8))
    initial_mse = float(np.mean((initial - x) ** 2))
    assert trained_mse < 0.2 * initial_mse, (trained_mse, initial_mse)
    np.testing.assert_allclose(ae.decode(z, batch_size=8), recon, rtol=1e-5, atol=1e-6)
    # a padded last chunk changes nothing
    np.testing.assert_allclose(ae.encode(x[:29], batch_size=8), z[:29], rtol=1e-5, atol=1e-6)
    quality = reconstruction_quality(ae, x, palette=PALETTE)
    assert quality["colour_agreement"] > 0.9
    assert quality["grains_mean"] == 2.0
    assert 0.0 <= quality["grain_count_rel_diff"] <= 1.0
    assert quality["mse"] == pytest.approx(trained_mse, rel=1e-4)


def test_interrupt_and_resume_gives_identical_losses(tmp_path, dataset, trained):
    straight = trained[2][:6]  # the same config: one compilation for both runs
    cfg = trained_config(dataset)
    first = fit_vae(cfg, tmp_path / "b", num_devices=4, stop_after=3, progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        fit_vae(cfg, tmp_path / "b", num_devices=4, progress=False)
    assert load_autoencoder(tmp_path / "b").step == 3
    rest = fit_vae(cfg, tmp_path / "b", num_devices=4, resume=True, stop_after=3, progress=False)
    assert [r["step"] for r in first + rest] == list(range(1, 7))
    assert [r["loss"] for r in first + rest] == [r["loss"] for r in straight]
    assert [r["kl"] for r in first + rest] == [r["kl"] for r in straight]
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["loss"] for ln in lines] == [r["loss"] for r in straight]
    assert load_vae_config(tmp_path / "b" / "vae_config.json") == cfg
    other = tiny_config(dataset, model=VAEConfig(**{**config_to_dict(TINY), "latent_channels": 3}))
    with pytest.raises(ValueError, match="model"):
        fit_vae(other, tmp_path / "b", num_devices=4, resume=True, progress=False)


def test_config_round_trip_and_validation(dataset):
    cfg = tiny_config(dataset)
    assert config_from_dict(VAETrainConfig, json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    with pytest.raises(ValueError, match="data.shape"):
        tiny_config(dataset, data=DataConfig(path=str(dataset), shape=(9, 8))).validate()
    with pytest.raises(ValueError, match="kl_weight"):
        tiny_config(dataset, kl_weight=-1.0).validate()
    with pytest.raises(ValueError, match="ema_decay"):
        tiny_config(dataset, ema_decay=1.0).validate()
    bad = tiny_config(dataset, model=VAEConfig(**{**config_to_dict(TINY), "in_channels": 1}))
    with pytest.raises(ValueError, match="in_channels"):
        fit_vae(bad, dataset.parent / "never", progress=False)


def test_export_then_load_decodes_identically(tmp_path, trained):
    run, _, _ = trained
    ae = load_autoencoder(run)
    dest = export_autoencoder(run, tmp_path / "exported")
    assert sorted(p.name for p in dest.iterdir()) == ["params.npz", "vae_config.json"]
    loaded = load_autoencoder(dest)
    assert (loaded.shift, loaded.scale) == (ae.shift, ae.scale) and any(ae.shift)
    assert loaded.config == ae.config and loaded.step == ae.step
    assert loaded.fingerprint == ae.fingerprint
    z = jax.random.normal(jax.random.key(3), (8, 4, 4, 2), np.float32)
    np.testing.assert_array_equal(loaded.decode(z), ae.decode(z))
    # samples sharded over a mesh (as the sampler returns them) decode alike
    sharded = jax.device_put(z, batch_sharded(batch_mesh(4)))
    np.testing.assert_allclose(ae.decode(sharded), ae.decode(z), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dest"):
        export_autoencoder(run, dest)
    with pytest.raises(ValueError, match="no vae_config.json"):
        load_autoencoder(tmp_path)


def test_encode_dataset_is_cached_resumable_and_copies_labels(
    tmp_path, dataset, trained, monkeypatch
):
    ae = load_autoencoder(trained[0])
    x, labels = two_colour_fields(32)
    meta = encode_dataset(ae, dataset, tmp_path / "lat", progress=False)
    assert meta["kind"] == "latents" and meta["n_samples"] == 32
    assert meta["sample_shape"] == [4, 4, 2] and meta["dtype"] == "float32"
    assert (meta["shift"], meta["scale"]) == (list(ae.shift), list(ae.scale))
    assert meta["source_dir"] == str(dataset.resolve())
    loader = ae_module.Loader(tmp_path / "lat", 1, jax.random.key(0))
    np.testing.assert_array_equal(loader.labels["split"], labels["split"])
    np.testing.assert_array_equal(loader.labels["first_colour"], labels["first_colour"])
    expected = np.asarray(ae.encode(x))
    np.testing.assert_allclose(loader.samples(np.arange(32)), expected, atol=1e-6)
    assert not (tmp_path / "lat" / "_encoding").exists()
    stamp = os.stat(tmp_path / "lat" / "metadata.json").st_mtime_ns
    monkeypatch.setattr(ae, "encode", lambda *a, **k: pytest.fail("a cached call encoded"))
    assert encode_dataset(ae, dataset, tmp_path / "lat", progress=False) == meta
    assert os.stat(tmp_path / "lat" / "metadata.json").st_mtime_ns == stamp
    with pytest.raises(ValueError, match="out_dir"):  # another autoencoder, same folder
        other = ae.with_scale(ae.scale, np.add(ae.shift, 1.0))
        encode_dataset(other, dataset, tmp_path / "lat", progress=False)

    # interrupted after two of four chunks: no metadata; the next call does the other two
    monkeypatch.setattr(ae_module, "_CHUNK", 8)
    fresh = load_autoencoder(trained[0])
    calls = []

    def failing(x, **kw):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(x.shape[0])
        return Autoencoder.encode(fresh, x, **kw)

    monkeypatch.setattr(fresh, "encode", failing)
    with pytest.raises(KeyboardInterrupt):
        encode_dataset(fresh, dataset, tmp_path / "lat2", progress=False)
    assert not (tmp_path / "lat2" / "metadata.json").exists()
    with pytest.raises(ValueError):
        read_metadata(tmp_path / "lat2")
    calls.clear()
    monkeypatch.setattr(
        fresh, "encode", lambda x, **kw: calls.append(x.shape[0]) or Autoencoder.encode(fresh, x)
    )
    meta2 = encode_dataset(fresh, dataset, tmp_path / "lat2", progress=False)
    assert calls == [8, 8]
    loader2 = ae_module.Loader(tmp_path / "lat2", 1, jax.random.key(0))
    np.testing.assert_allclose(loader2.samples(np.arange(32)), expected, atol=1e-6)
    assert meta2["fingerprint"] == meta["fingerprint"]


def test_compare_reconstructions_agreement():
    x, _ = two_colour_fields(4, size=16)
    same = compare_reconstructions(x, x, palette=PALETTE)
    assert same["colour_agreement"] == 1.0 and same["grain_count_agreement"] == 1.0
    assert same["grain_count_abs_diff"] == 0.0 and same["mse"] == 0.0
    assert same["grains_mean"] == 2.0
    # one column recoloured to a third colour: 16 of 4 * 256 voxels change, one grain more
    y = x.copy()
    first = (x[0, 0, 0] + 1) / 2
    third = next(
        c
        for c in PALETTE
        if not np.allclose(c, first) and not np.allclose(c, (x[0, 0, -1] + 1) / 2)
    )
    y[0, :, 0] = 2 * third - 1
    changed = compare_reconstructions(x, y, palette=PALETTE, min_grain_size=1)
    assert changed["colour_agreement"] == pytest.approx(1 - 16 / (4 * 256))
    assert changed["grain_count_abs_diff"] == pytest.approx(1 / 4)
    assert changed["grain_count_rel_diff"] == pytest.approx(0.5 / 4)
    binary = np.sign(np.random.default_rng(0).normal(size=(3, 8, 8, 1))).astype(np.float32)
    assert compare_reconstructions(binary, binary)["phase_agreement"] == 1.0
    flipped = binary.copy()
    flipped[0, 0, :4] *= -1
    assert compare_reconstructions(binary, flipped)["phase_agreement"] == 1 - 4 / (3 * 64)
    with pytest.raises(ValueError, match="reconstructions"):
        compare_reconstructions(x, x[:2])
    with pytest.raises(ValueError, match="palette"):
        compare_reconstructions(x, x, palette=PALETTE[:, :2])


def test_latent_standardization_undoes_its_own_and_refuses_constant_latents(trained):
    ae = load_autoencoder(trained[0])
    x = two_colour_fields(8)[0]
    raw = np.asarray(ae.with_scale(1.0).encode(x), np.float64).reshape(-1, 2)
    shift, scale = latent_standardization(ae.with_scale(1.0), x)
    np.testing.assert_allclose(shift, raw.mean(0), rtol=1e-6)
    np.testing.assert_allclose(scale, 1 / raw.std(0), rtol=1e-6)
    # computed through any other standardization, the result is the same
    other = latent_standardization(ae.with_scale((0.5, 3.0), (1.0, -2.0)), x)
    np.testing.assert_allclose(np.ravel(other), np.ravel((shift, scale)), rtol=1e-4)
    # decoding inverts encoding whatever the standardization
    np.testing.assert_allclose(
        ae.with_scale(scale, shift).reconstruct(x), ae.with_scale(1.0).reconstruct(x), atol=1e-5
    )
    zero = Autoencoder(ae.config, ae.network, 1.0)
    import jax.numpy as jnp

    zero._params = jax.tree.map(jnp.zeros_like, zero._params)
    with pytest.raises(ValueError, match="standard deviations"):
        latent_standardization(zero, x)
    with pytest.raises(ValueError, match="scale"):
        Autoencoder(ae.config, ae.network, (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="shift"):
        Autoencoder(ae.config, ae.network, 1.0, (0.0, float("nan")))


def test_a_record_from_before_shifts_loads_as_a_global_scale(tmp_path, trained):
    """Runs whose ``scale.json`` holds one scale and no shift (before per-channel
    standardization) keep it, and its fingerprint, so their latents and UNets stay valid; a
    finished run called again does not rewrite its record."""
    run, cfg, _ = trained
    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / "scale.json").write_text(json.dumps({"step": 200, "scale": 1.5, "num_samples": 32}))
    ae = load_autoencoder(old)
    assert ae.scale == (1.5, 1.5) and ae.shift == (0.0, 0.0)
    x = two_colour_fields(4)[0]
    raw = np.asarray(ae.with_scale(1.0).encode(x))
    np.testing.assert_allclose(ae.encode(x), 1.5 * raw, rtol=1e-6)
    digest = hashlib.sha256()
    digest.update(json.dumps(config_to_dict(ae.config), sort_keys=True).encode())
    digest.update(repr(1.5).encode())
    for path, leaf in jax.tree_util.tree_flatten_with_path(ae.variables)[0]:
        digest.update(jax.tree_util.keystr(path).encode())
        digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    assert ae.fingerprint == digest.hexdigest()
    stamp = os.stat(old / "scale.json").st_mtime_ns
    fit_vae(cfg, old, resume=True, num_devices=4, progress=False)
    assert os.stat(old / "scale.json").st_mtime_ns == stamp


def test_cli_train_export_and_encode(tmp_path, dataset, trained, capsys):
    config = tmp_path / "config.py"
    values = json.dumps(config_to_dict(trained_config(dataset)))
    config.write_text(
        "import json\n"
        "from jaxmicro.train.autoencoder import VAETrainConfig\n"
        "from jaxmicro.train.config import config_from_dict\n"
        "def get_config(variant):\n"
        f"    return config_from_dict(VAETrainConfig, json.loads({values!r}))\n"
    )
    args = ["vae", "train", "--config", f"{config}:smoke", "--out", str(tmp_path / "run")]
    assert main([*args, "--stop-after", "2", "--no-progress"]) == 0
    assert "step 2: loss" in capsys.readouterr().out
    assert main([*args, "--stop-after", "2", "--no-progress"]) == 2  # no --resume
    assert "already holds checkpoints" in capsys.readouterr().err
    run = trained[0]
    assert main(["vae", "export", "--run", str(run), "--dest", str(tmp_path / "ex")]) == 0
    assert (tmp_path / "ex" / "params.npz").is_file()
    args = ["vae", "encode", "--vae", str(tmp_path / "ex"), "--data", str(dataset)]
    assert main([*args, "--out", str(tmp_path / "lat"), "--no-progress"]) == 0
    assert read_metadata(tmp_path / "lat")["n_samples"] == 32
    bad = ["vae", "encode", "--vae", str(tmp_path), "--data", str(dataset), "--out", "x"]
    assert main(bad) == 2
    assert "jaxmicro vae: error: autoencoder" in capsys.readouterr().err


def test_latent_diffusion_trains_resumes_decodes_and_exports(tmp_path, dataset, trained):
    """A conditional latent UNet on the VAE's latents: exact resume, decoded samples, export."""
    from jaxmicro.nn import UNetConfig
    from jaxmicro.train import TrainConfig, export_model, fit, generate, load_model

    run, _, _ = trained
    config = TrainConfig(
        model=UNetConfig(
            spatial_dims=2,
            in_channels=TINY.latent_channels,
            channels=(4,),
            num_res_blocks=1,
            attention_levels=(0,),
            num_groups=2,
            dropout=0.0,
            num_scalar_conditions=1,
            context_dim=8,
        ),
        data=DataConfig(path=str(dataset), shape=(8, 8), representation="identity"),
        conditions=("split",),
        cond_dropout=0.2,
        autoencoder=str(run),
        num_diffusion_steps=20,
        batch_size=8,
        num_train_steps=4,
        warmup_steps=1,
        log_every=1,
        checkpoint_every=100,
        fast_compile=True,
    )
    straight = fit(config, tmp_path / "a", progress=False)
    first = fit(config, tmp_path / "b", stop_after=2, progress=False)
    rest = fit(config, tmp_path / "b", resume=True, progress=False)
    assert [r["loss"] for r in first + rest] == [r["loss"] for r in straight]
    latents = read_metadata(tmp_path / "b" / "latents")
    assert latents["kind"] == "latents" and latents["sample_shape"] == [4, 4, TINY.latent_channels]
    model = load_model(tmp_path / "b")
    assert model.sample_shape == (4, 4, TINY.latent_channels)
    conditions = model.conditions({"split": 4})
    x = generate(jax.random.key(0), model, 3, steps=3, conditions=conditions, guidance_scale=2.0)
    assert x.shape == (3, 8, 8, 3) and np.all(np.isfinite(x))  # decoded to the pixel space
    shipped = export_model(
        tmp_path / "b",
        tmp_path / "shipped",
        card={"name": "t", "paper": "p", "generates": "g", "metrics": {}, "data_command": "c"},
    )
    assert (shipped / "autoencoder").is_dir() and not (shipped / "checkpoints").exists()
    again = generate(
        jax.random.key(0),
        load_model(shipped),
        3,
        steps=3,
        conditions=conditions,
        guidance_scale=2.0,
    )
    np.testing.assert_allclose(again, x, rtol=1e-5, atol=1e-5)
