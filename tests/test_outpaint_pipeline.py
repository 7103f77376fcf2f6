"""`jaxmicro.outpaint.outpaint`: any denoiser in (eps, v, learned variance, a UNet), files out."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro.diffusion import linear_schedule
from jaxmicro.outpaint import outpaint, region_from_shape, region_from_stl, write_stl
from jaxmicro.train import batch_mesh
from jaxmicro.train.denoiser import denoiser

BLOCK, T, X0 = 8, 10, 0.5
SCHEDULE = linear_schedule(T, 1e-3, 0.2, dtype=jnp.float32)
FAST = dict(block=BLOCK, batch_size=4, resample=2, plain_tail=1, num_steps=4, progress=False)


def _sqrt_ab(t, x):
    ab = SCHEDULE.alpha_bars[t].reshape((-1,) + (1,) * (x.ndim - 1))
    return jnp.sqrt(ab), jnp.sqrt(1 - ab)


def oracle(parameterization, learned_variance=False):
    """A network that knows the clean field is X0 everywhere, in the given output form."""

    def apply_fn(x, t):
        a, s = _sqrt_ab(t, x)
        eps = (x - a * X0) / s
        out = {"eps": eps, "v": a * eps - s * X0, "x0": jnp.full_like(x, X0)}[parameterization]
        if learned_variance:  # variance interpolation values in [-1, 1]
            out = jnp.concatenate([out, jnp.tanh(x)], axis=-1)
        return out

    return apply_fn


def _strict_json(path):
    def refuse(name):
        raise AssertionError(f"{path} holds {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


# Each form compiles its own sampler; the conversions themselves are checked for every form in
# test_denoiser, so the default run outpaints the command's form (v + learned variance) only.
_slow = pytest.mark.slow


@pytest.mark.parametrize(
    "parameterization, learned_variance",
    [
        pytest.param("eps", False, marks=_slow),
        pytest.param("v", False, marks=_slow),
        pytest.param("x0", False, marks=_slow),
        pytest.param("eps", True, marks=_slow),
        ("v", True),
    ],
)
def test_every_output_form_is_converted_to_the_same_clean_field(
    tmp_path, parameterization, learned_variance
):
    eps_fn = denoiser(
        oracle(parameterization, learned_variance),
        SCHEDULE,
        parameterization=parameterization,
        learned_variance=learned_variance,
    )
    one_grain = np.ones((8, 8, 8), np.int64)  # touches the faces: nothing left to measure
    summary = outpaint(
        jax.random.key(0),
        eps_fn,
        SCHEDULE,
        shape=(12, 8, 12),
        out_dir=tmp_path,
        reference=one_grain,
        **FAST,
    )
    values = np.load(tmp_path / "volume" / "values.npy")
    # The last reverse step returns the predicted x0 exactly, so a converted prediction gives X0.
    np.testing.assert_allclose(values, X0, atol=1e-4)
    assert summary["denoiser_calls_per_block"] == 4 + 1 * 3  # 4 steps + (U-1) j (jump points)
    assert summary["statistics"]["volume"]["n_reference"] == 0
    assert summary["statistics"]["volume"]["kl"] is None  # NaN in the table, null in the JSON
    assert _strict_json(tmp_path / "summary.json") == summary  # NaN-free JSON (nulls instead)


def test_an_unconverted_output_is_refused_or_wrong(tmp_path):
    raw_v = oracle("v")
    summary = outpaint(
        jax.random.key(0), raw_v, SCHEDULE, shape=(8, 8, 8), out_dir=tmp_path, **FAST
    )
    assert summary["blocks"] == 1
    assert not np.allclose(np.load(tmp_path / "volume" / "values.npy"), X0, atol=1e-2)
    with pytest.raises(ValueError, match="eps_fn"):  # 2C channels: learned variance not split
        outpaint(
            jax.random.key(0),
            oracle("eps", learned_variance=True),
            SCHEDULE,
            shape=(8, 8, 8),
            out_dir=tmp_path / "lv",
            **FAST,
        )


@pytest.mark.slow  # 33 s; the command's test model is a learned-variance v-predictor too
def test_a_random_learned_variance_unet_outpaints_finite_values(tmp_path):
    from flax import nnx

    from jaxmicro.nn import UNet, UNetConfig

    config = UNetConfig(
        spatial_dims=3,
        in_channels=1,
        channels=(4, 8),
        num_res_blocks=1,
        attention_levels=(),
        num_groups=2,
        dropout=0.0,
        learned_variance=True,
    )
    model = UNet(config, rngs=nnx.Rngs(0))
    assert config.out_channels == 2
    mesh = batch_mesh(4)
    eps_fn = denoiser(lambda x, t: model(x, t), SCHEDULE, learned_variance=True, mesh=mesh)
    ref = np.repeat(np.arange(27).reshape(3, 3, 3), 4, 0).repeat(4, 1).repeat(4, 2)
    summary = outpaint(
        jax.random.key(1),
        eps_fn,
        SCHEDULE,
        shape=(12, 12, 12),
        out_dir=tmp_path,
        reference=ref,
        mesh=mesh,
        **FAST,
    )
    values = np.load(tmp_path / "volume" / "values.npy")
    assert values.shape == (12, 12, 12, 1) and np.isfinite(values).all()
    labels = np.load(tmp_path / "grain_ids.npy")
    assert labels.dtype == np.int32 and labels.shape == (12, 12, 12) and labels.min() >= 1
    assert summary["devices"] == 4 and summary["voxels_per_minute"] > 0
    assert summary["statistics"]["volume"]["n_reference"] == 1  # the one central cube of ref
    assert summary["statistics"]["volume"]["mean_reference"] == 64.0
    for name in ("volume.vti", "slices.png", "statistics.md", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0


def _noise_fn():
    """An analytic denoiser whose samples vary: x0 prediction = tanh(3 x)."""
    return denoiser(lambda x, t: jnp.tanh(3 * x), SCHEDULE, parameterization="x0")


def test_a_finished_run_resumes_to_the_same_volume_and_a_used_folder_is_refused(tmp_path):
    first = outpaint(
        jax.random.key(2), _noise_fn(), SCHEDULE, shape=(8, 8, 16), out_dir=tmp_path, **FAST
    )
    values = np.load(tmp_path / "volume" / "values.npy")
    labels = np.load(tmp_path / "grain_ids.npy")
    with pytest.raises(ValueError, match="out_dir"):
        outpaint(
            jax.random.key(2), _noise_fn(), SCHEDULE, shape=(8, 8, 16), out_dir=tmp_path, **FAST
        )
    again = outpaint(
        jax.random.key(2),
        _noise_fn(),
        SCHEDULE,
        shape=(8, 8, 16),
        out_dir=tmp_path,
        resume=True,
        **FAST,
    )
    assert again["batches_run"] == 0 and again["voxels_per_minute"] is None
    assert first["batches_run"] == first["batches"] > 1
    np.testing.assert_array_equal(np.load(tmp_path / "volume" / "values.npy"), values)
    np.testing.assert_array_equal(np.load(tmp_path / "grain_ids.npy"), labels)
    # --overwrite starts over: a different key gives a different volume.
    outpaint(
        jax.random.key(3),
        _noise_fn(),
        SCHEDULE,
        shape=(8, 8, 16),
        out_dir=tmp_path,
        overwrite=True,
        **FAST,
    )
    assert not np.array_equal(np.load(tmp_path / "volume" / "values.npy"), values)


def test_a_cad_region_is_generated_and_labelled_inside_only(tmp_path):
    stl = tmp_path / "box.stl"
    v = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], float)
    v *= np.array([1.0, 0.5, 1.2])  # x, y, z extents
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    tris = [[v[a], v[b], v[c]] for a, b, c, _ in quads] + [
        [v[a], v[c], v[d]] for a, _, c, d in quads
    ]
    write_stl(stl, np.array(tris))
    shape, mask = region_from_stl(stl, 0.1, BLOCK)
    assert shape == (12, 8, 10) and mask[:, :5].all() and not mask[:, 5:].any()
    summary = outpaint(
        jax.random.key(0), _noise_fn(), SCHEDULE, mask=mask, out_dir=tmp_path / "o", **FAST
    )
    labels = np.load(tmp_path / "o" / "grain_ids.npy")
    assert (labels[~mask] == 0).all() and (labels[mask] > 0).all()
    assert summary["region_voxels"] == mask.sum() == 12 * 5 * 10


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(shape=(4, 8, 8)), "shape"),
        (dict(shape=(8, 8, 8), num_steps=T + 1), "num_steps"),
        (dict(shape=(8, 8, 8), mode="spiral"), "mode"),
        (dict(shape=(8, 8, 8), segment="kmeans"), "segment"),
        (dict(shape=(8, 8, 8), boundary="periodic"), "boundary"),
        (dict(shape=(8, 8, 8), resample=0), "resample"),
        (dict(shape=(8, 8, 8), reference=np.zeros((8, 8, 8))), "reference"),
        (dict(mask=np.ones((8, 8, 4), bool)), "mask"),
        (dict(), "shape"),
    ],
)
def test_bad_arguments_name_themselves_and_write_nothing(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        outpaint(
            jax.random.key(0), _noise_fn(), SCHEDULE, out_dir=tmp_path / "o", **{**FAST, **kwargs}
        )
    assert not (tmp_path / "o").exists()


def test_region_from_shape_parses_and_checks():
    assert region_from_shape("8,9,10", 8) == ((8, 9, 10), None)
    with pytest.raises(ValueError, match="shape"):
        region_from_shape("8,x,10", 8)
    with pytest.raises(ValueError, match="voxel"):
        region_from_stl("missing.stl", 0.0, 8)
