"""Tests of jaxmicro.nn: UNet (2D/3D, conditioning, learned variance) and VAE."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxmicro.nn import (
    UNET_CONFIGS,
    VAE,
    UNet,
    UNetConfig,
    VAEConfig,
    count_params,
    kl_loss,
    sinusoidal_embedding,
    unet_config,
    vae_loss,
)

pytestmark = pytest.mark.heavy  # a long module: handed to a worker first

TINY2D = unet_config("tiny2d")
TINY3D = unet_config("tiny3d", channels=(4, 8), num_groups=2)


def _apply(graphdef, state, x, t, **kw):
    return nnx.merge(graphdef, state)(x, t, **kw)


# Eager NNX calls dispatch op by op and are slow on CPU: tests call the jitted version, compiled
# without backend optimization (the same numerics; compiles several times faster).
FAST = {"xla_backend_optimization_level": 0}
_apply_jit = jax.jit(_apply, static_argnums=0, compiler_options=FAST)


def _init(cfg, cls=UNet):
    """(graphdef, state) of a fresh model, initialized in one unoptimized compile (fast on CPU)."""
    graphdef = nnx.split(nnx.eval_shape(lambda: cls(cfg, rngs=nnx.Rngs(0))))[0]
    init = jax.jit(
        lambda: nnx.split(cls(cfg, rngs=nnx.Rngs(0)))[1],
        compiler_options=FAST,
    )
    return graphdef, init()


@functools.partial(jax.jit, static_argnums=2)
def _perturbed(state, key, scale: float):
    """``state`` plus Gaussian noise of standard deviation ``scale`` on every leaf (one program:
    leaf by leaf eagerly, it compiled a few dozen small ones)."""
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(key, len(leaves))
    noisy = [
        p + scale * jax.random.normal(k, p.shape, p.dtype)
        for p, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree.unflatten(treedef, noisy)


@pytest.mark.parametrize("cfg,spatial", [(TINY2D, (8, 8)), (TINY3D, (4, 4, 4))])
def test_unet_shapes_dtypes_and_jit(cfg, spatial):
    graphdef, state = _init(cfg)
    model = nnx.merge(graphdef, state)
    x = jax.random.normal(jax.random.key(1), (2, *spatial, 1), jnp.float32)
    t = jnp.array([3, 400])
    traces = []

    def f(state, x, t):
        traces.append(1)
        return _apply(graphdef, state, x, t)

    jitted = jax.jit(f, compiler_options=FAST)
    out = jitted(state, x, t)
    assert out.shape == x.shape and out.dtype == jnp.float32
    if cfg.spatial_dims == 2:
        np.testing.assert_allclose(out, model(x, t), atol=1e-5)
    jitted(state, x + 1.0, t + 1)
    assert len(traces) == 1  # no recompilation for new values of the same shapes
    # The zero-initialized output layer makes a fresh model predict zero noise.
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize("periodic", [True, False])
def test_unet_periodic_commutes_with_shifts(periodic):
    """Circular padding: shifting the input by a multiple of 2 ** (levels - 1) pixels (across
    the seams) shifts the output by the same; zero padding breaks this at the edges."""
    cfg = dataclasses.replace(TINY2D, periodic=periodic)
    graphdef, state = _init(cfg)
    state = _perturbed(state, jax.random.key(5), 0.1)
    x = jax.random.normal(jax.random.key(4), (2, 8, 8, 1), jnp.float32)
    t = jnp.array([3, 400])
    step = 2 ** (len(cfg.channels) - 1)

    def shift(a):
        return jnp.roll(a, (step, -3 * step), axis=(1, 2))

    out = _apply_jit(graphdef, state, x, t)
    err = float(jnp.abs(shift(out) - _apply_jit(graphdef, state, shift(x), t)).max())
    assert float(jnp.abs(out).max()) > 0.1
    if periodic:
        assert err < 1e-5
    else:
        assert err > 1e-2


@pytest.mark.slow  # ~50 s of compilation on 2 CPU cores
def test_unet_nonzero_after_perturbation_and_dropout_key():
    cfg = dataclasses.replace(TINY2D, dropout=0.5)
    graphdef, state = _init(cfg)
    state = jax.tree.map(lambda p: p + 0.05 * jnp.ones_like(p), state)
    x = jax.random.normal(jax.random.key(2), (2, 8, 8, 1), jnp.float32)
    t = jnp.array([1, 2])
    det1, det2 = _apply_jit(graphdef, state, x, t), _apply_jit(graphdef, state, x, t)
    np.testing.assert_array_equal(det1, det2)
    assert float(jnp.abs(det1).max()) > 0
    d1 = _apply_jit(graphdef, state, x, t, key=jax.random.key(0))
    d2 = _apply_jit(graphdef, state, x, t, key=jax.random.key(1))
    assert not np.allclose(d1, d2) and not np.allclose(d1, det1)
    # float64 input computes in float64 (x64 is on in the test run).
    assert _apply_jit(graphdef, state, x.astype(jnp.float64), t).dtype == jnp.float64


@pytest.mark.slow  # ~50 s of compilation on 2 CPU cores
def test_unet_learned_variance_fourier_and_conditioning():
    cfg = dataclasses.replace(
        TINY2D,
        learned_variance=True,
        time_embedding="fourier",
        num_classes=3,
        num_scalar_conditions=2,
        context_dim=8,
    )
    graphdef, state = _init(cfg)
    model = nnx.merge(graphdef, state)
    state = jax.tree.map(lambda p: p + 0.05, state)
    x = jax.random.normal(jax.random.key(3), (2, 8, 8, 1), jnp.float32)
    t, labels = jnp.array([5, 9]), jnp.array([0, 2])
    scalars = jnp.array([[0.1, 0.2], [0.3, -1.0]], jnp.float32)
    out = _apply_jit(graphdef, state, x, t, labels=labels, scalars=scalars)
    assert out.shape == (2, 8, 8, 2)
    other = _apply_jit(graphdef, state, x, t, labels=jnp.array([1, 2]), scalars=scalars)
    assert not np.allclose(out[0], other[0])
    np.testing.assert_allclose(out[1], other[1], atol=1e-6)  # sample 1 unchanged
    # cond_mask=False replaces the condition by null tokens: the labels no longer matter.
    off = jnp.array([False, False])
    n1 = _apply_jit(graphdef, state, x, t, labels=labels, scalars=scalars, cond_mask=off)
    n2 = _apply(
        graphdef,
        state,
        x,
        t,
        labels=labels + 1 - 1 * (labels == 2),
        scalars=scalars * 3,
        cond_mask=off,
    )
    np.testing.assert_allclose(n1, n2, atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        model(x, t, scalars=scalars)


def test_unet_validation():
    model = nnx.eval_shape(lambda: UNet(TINY2D, rngs=nnx.Rngs(0)))  # checks precede compute
    with pytest.raises(ValueError, match="x: expected shape"):
        model(jnp.zeros((1, 8, 8, 3)), jnp.zeros(1, int))
    with pytest.raises(ValueError, match="divisible"):
        model(jnp.zeros((1, 7, 8, 1)), jnp.zeros(1, int))
    with pytest.raises(ValueError, match="t: expected"):
        model(jnp.zeros((2, 8, 8, 1)), jnp.zeros(3, int))
    with pytest.raises(ValueError, match="attention_levels"):
        UNet(dataclasses.replace(TINY2D, attention_levels=(5,)), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="name"):
        unet_config("huge")


def test_named_configs_build_abstractly():
    counts = {
        name: count_params(nnx.eval_shape(lambda c=UNET_CONFIGS[name]: UNet(c, rngs=nnx.Rngs(0))))
        for name in ("grainpaint_1m", "grainpaint_6m")
    }
    assert 0.9e6 < counts["grainpaint_1m"] < 1.3e6
    assert 5.5e6 < counts["grainpaint_6m"] < 7.0e6
    assert all(isinstance(c.validate(), UNetConfig) for c in UNET_CONFIGS.values())


def test_sinusoidal_embedding_values():
    e = sinusoidal_embedding(jnp.array([0.0, 2.0]), 4, max_period=100.0)
    np.testing.assert_allclose(e[0], [1, 1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(e[1], [np.cos(2), np.cos(0.2), np.sin(2), np.sin(0.2)], rtol=1e-6)
    with pytest.raises(ValueError, match="dim"):
        sinusoidal_embedding(jnp.zeros(2), 3)


@pytest.mark.parametrize("spatial_dims,shape", [(2, (8, 8)), (3, (8, 8, 8))])
def test_vae_shapes_and_loss(spatial_dims, shape):
    cfg = VAEConfig(spatial_dims=spatial_dims, channels=(4, 8, 8), num_groups=2)
    graphdef, state = _init(cfg, VAE)
    vae = nnx.merge(graphdef, state)
    x = jax.random.uniform(jax.random.key(0), (2, *shape, 3), jnp.float32, -1, 1)

    @functools.partial(jax.jit, compiler_options=FAST)
    def run(state, x):
        model = nnx.merge(graphdef, state)
        mean, logvar = model.encode(x)
        return mean, logvar, model.decode(mean), vae_loss(jax.random.key(1), model, x)

    mean, logvar, recon, (loss, m) = run(state, x)
    assert mean.shape == (2, *(s // 4 for s in shape), 4) and logvar.shape == mean.shape
    assert recon.shape == x.shape
    assert np.isfinite(float(loss)) and set(m) == {"mse", "kl"}
    with pytest.raises(ValueError, match="divisible"):
        vae.encode(jnp.zeros((1, *(s + 2 for s in shape), 3)))


def test_periodic_3d_vae_commutes_with_shifts():
    """A periodic VAE (PolyCrysDiff's volumes wrap around): encoding a volume shifted by a
    multiple of the downsampling shifts the latent, and decoding a shifted latent shifts the
    volume, across the faces."""
    cfg = VAEConfig(spatial_dims=3, channels=(4, 8), num_groups=2, periodic=True)
    graphdef, state = _init(cfg, VAE)
    x = jax.random.uniform(jax.random.key(0), (1, 8, 8, 8, 3), jnp.float32, -1, 1)

    @functools.partial(jax.jit, compiler_options=FAST)
    def run(state, x):
        model = nnx.merge(graphdef, state)
        mean = model.encode(x)[0]
        return mean, model.decode(mean)

    def shift(a, step):
        return jnp.roll(a, (step, -step, 3 * step), axis=(1, 2, 3))

    mean, recon = run(state, x)
    mean_s, recon_s = run(state, shift(x, cfg.downsampling))
    np.testing.assert_allclose(mean_s, shift(mean, 1), atol=1e-5)
    np.testing.assert_allclose(recon_s, shift(recon, cfg.downsampling), atol=1e-5)
    assert float(jnp.abs(recon - shift(recon, cfg.downsampling)).max()) > 1e-2


def test_kl_loss_closed_form():
    mean = jnp.array([[0.5, -1.0]])
    logvar = jnp.array([[0.0, np.log(2.0)]])
    want = 0.5 * (0.25 + 1 - 1 - 0) + 0.5 * (1 + 2 - 1 - np.log(2.0))
    np.testing.assert_allclose(kl_loss(mean, logvar), [want], rtol=1e-12)
    np.testing.assert_allclose(kl_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3))), 0.0)


_CONV_CASES = [
    ((2, 9, 8, 7, 3), 3, (1, 1, 1), "SAME"),
    ((1, 8, 8, 8, 2), 3, (2, 2, 2), "SAME"),  # Downsample
    ((1, 6, 5, 4, 2), 1, (1, 1, 1), "SAME"),  # 1x1x1 skip projection
    ((1, 8, 8, 8, 2), 3, (2, 2, 2), ((1, 1), (0, 1), (1, 0))),
    ((1, 4, 5, 5, 2), 3, (1, 1, 1), ((4, 0), (1, 1), (1, 1))),  # leading planes all padding
    ((1, 7, 6, 8, 2), 3, (1, 1, 1), "VALID"),  # periodic layers: a wrapped input, VALID
    ((1, 9, 8, 9, 2), 3, (2, 2, 2), ((0, 0),) * 3),  # periodic Downsample
]


@pytest.mark.parametrize(
    "shape,k,strides,padding,dtype",
    [case + (jnp.float64,) for case in _CONV_CASES] + [_CONV_CASES[1] + (jnp.float32,)],
)
def test_conv_by_slices_equals_3d_convolution(shape, k, strides, padding, dtype):
    from jaxmicro.nn.layers import conv_by_slices

    x = jax.random.normal(jax.random.key(0), shape, dtype)
    w = jax.random.normal(jax.random.key(1), (k, k, k, shape[-1], 4), dtype)
    dn = ("NDHWC", "DHWIO", "NDHWC")

    def value_and_vjps(conv, x, w, cot):
        out, vjp = jax.vjp(lambda x, w: conv(x, w, strides, padding, dimension_numbers=dn), x, w)
        return (out, *vjp(cot))

    run = jax.jit(value_and_vjps, static_argnums=0, compiler_options=FAST)
    want_shape = jax.eval_shape(
        lambda: jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
    ).shape
    cot = jax.random.normal(jax.random.key(2), want_shape, dtype)
    got = run(conv_by_slices, x, w, cot)
    want = run(jax.lax.conv_general_dilated, x, w, cot)
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    for g, g_ref in zip(got, want, strict=True):
        assert g.dtype == dtype and g.shape == g_ref.shape
        np.testing.assert_allclose(g, g_ref, atol=tol * float(jnp.max(jnp.abs(g_ref))))


@pytest.mark.parametrize(
    "shape,k,strides",
    [((2, 10, 10, 3), 3, (1, 1)), ((2, 10, 12, 3), 3, (2, 2)), ((2, 9, 11, 3), 2, (2, 3))],
)
def test_conv_by_slices_valid_2d_is_the_cropped_same_convolution(shape, k, strides):
    """2D VALID convolutions (periodic layers) run as cropped SAME ones: same values and
    gradients as ``lax.conv_general_dilated``, including strides that need the fallback."""
    from jaxmicro.nn.layers import conv_by_slices

    x = jax.random.normal(jax.random.key(0), shape, jnp.float64)
    w = jax.random.normal(jax.random.key(1), (k, k, shape[-1], 4), jnp.float64)
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(conv, x, w):
        return jnp.sum(jnp.sin(conv(x, w, strides, "VALID", dimension_numbers=dn)))

    for got, want in zip(
        jax.value_and_grad(functools.partial(loss, conv_by_slices), argnums=(0, 1))(x, w),
        jax.value_and_grad(functools.partial(loss, jax.lax.conv_general_dilated), (0, 1))(x, w),
        strict=True,
    ):
        for g, g_ref in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)


def test_conv_by_slices_check_grads_and_fallback():
    from jax.test_util import check_grads

    from jaxmicro.nn.layers import conv_by_slices

    x = jax.random.normal(jax.random.key(0), (1, 4, 4, 4, 2), jnp.float64)
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 2, 2), jnp.float64)
    dn = ("NDHWC", "DHWIO", "NDHWC")
    check_grads(
        lambda x, w: conv_by_slices(x, w, (2, 1, 1), "SAME", dimension_numbers=dn),
        (x, w),
        order=1,
        modes=("fwd", "rev"),
    )
    # Dilated kernels are passed through to lax.conv_general_dilated.
    kw = dict(rhs_dilation=(2, 2, 2), dimension_numbers=dn)
    np.testing.assert_allclose(
        conv_by_slices(x, w, (1, 1, 1), "SAME", **kw),
        jax.lax.conv_general_dilated(x, w, (1, 1, 1), "SAME", **kw),
        atol=1e-12,
    )
