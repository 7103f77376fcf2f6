"""Tests of jaxmicro.descriptors.one_point / two_point against direct sums, identities and PyMKS."""

import functools
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec
from jax.test_util import check_grads

from jaxmicro.descriptors import one_point, two_point

GOLDEN = pathlib.Path(__file__).parent / "data" / "descriptors_golden.npz"

# Jitted once per static configuration: far cheaper than eager op-by-op compilation.
tp = jax.jit(two_point, static_argnames=("periodic", "max_lag", "pairs"))


def direct_two_point(m, periodic, mask=None, lags=None):
    """f[a, b, r] = sum_s w(s) w(s+r) m[s, a] m[s+r, b] / sum_s w(s) w(s+r), lag by lag."""
    spatial = m.shape[:-1]
    w = np.ones(spatial) if mask is None else mask
    if lags is None:
        lags = [np.arange(-(n // 2), n - n // 2) for n in spatial]
    out = np.zeros(m.shape[-1:] * 2 + tuple(len(x) for x in lags))
    sites = np.indices(spatial)
    for index in itertools.product(*[range(len(x)) for x in lags]):
        r = [lags[i][k] for i, k in enumerate(index)]
        target = [sites[i] + r[i] for i in range(len(spatial))]
        if periodic:
            valid = np.ones(spatial, bool)
            target = [t % n for t, n in zip(target, spatial, strict=True)]
        else:
            valid = np.all(
                [(t >= 0) & (t < n) for t, n in zip(target, spatial, strict=True)], axis=0
            )
            target = [np.clip(t, 0, n - 1) for t, n in zip(target, spatial, strict=True)]
        ww = w * w[tuple(target)] * valid
        c = m.shape[-1]
        pair_sum = np.einsum(
            "s,sa,sb->ab", ww.ravel(), m.reshape(-1, c), m[tuple(target)].reshape(-1, c)
        )
        out[(slice(None), slice(None), *index)] = pair_sum / ww.sum()
    return out


@pytest.mark.parametrize("shape", [(5, 7, 2), (4, 5, 6, 2)])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_two_point_matches_direct_sum(shape, periodic, masked):
    rng = np.random.default_rng(sum(shape))
    m = rng.normal(size=shape)
    mask = rng.uniform(0.1, 1.0, size=shape[:-1]) if masked else None
    got = tp(m, periodic=periodic, mask=mask)
    assert got.shape == (2, 2, *shape[:-1])
    np.testing.assert_allclose(got, direct_two_point(m, periodic, mask), atol=1e-12)


@pytest.mark.parametrize("periodic", [True, False])
def test_two_point_max_lag_per_axis(periodic):
    rng = np.random.default_rng(1)
    m = rng.normal(size=(5, 7, 2))
    got = tp(m, periodic=periodic, max_lag=(1, 3))
    ref = direct_two_point(m, periodic, lags=[np.arange(-1, 2), np.arange(-3, 4)])
    assert got.shape == (2, 2, 3, 7)
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_two_point_nonperiodic_long_lags():
    rng = np.random.default_rng(2)
    m = rng.normal(size=(4, 5, 1))
    got = tp(m, periodic=False, max_lag=(3, 4))
    ref = direct_two_point(m, False, lags=[np.arange(-3, 4), np.arange(-4, 5)])
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_two_point_pairs_modes_agree():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(6, 5, 3))
    full = tp(m, max_lag=2)
    np.testing.assert_allclose(tp(m, max_lag=2, pairs="auto"), full[[0, 1, 2], [0, 1, 2]])
    pairs = ((2, 0), (1, 1), (0, 2), (2, 1))
    got = tp(m, max_lag=2, pairs=pairs)
    assert got.shape == (4, 5, 5)
    for k, (a, b) in enumerate(pairs):
        np.testing.assert_allclose(got[k], full[a, b], atol=1e-14)


def test_two_point_identities():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, size=(6, 9))
    m = np.eye(3)[labels]
    f = np.asarray(tp(m))
    centre = (3, 4)
    # S2(0) is the volume fraction; cross terms of disjoint indicators vanish at r = 0.
    np.testing.assert_allclose(f[:, :, 3, 4], np.diag(one_point(m)), atol=1e-14)
    # Periodic: the mean over all lags of f[a, b] is mean(a) * mean(b).
    np.testing.assert_allclose(
        f.mean(axis=(2, 3)), np.outer(m.mean((0, 1)), m.mean((0, 1))), atol=1e-14
    )
    # f[a, b, r] = f[b, a, -r], and the indicators sum to one: sum_b f[a, b, r] = mean(a).
    for r in [(1, 2), (-2, 3), (2, -4)]:
        idx = (centre[0] + r[0], centre[1] + r[1])
        neg = (centre[0] - r[0], centre[1] - r[1])
        np.testing.assert_allclose(f[:, :, idx[0], idx[1]], f[:, :, neg[0], neg[1]].T, atol=1e-14)
    np.testing.assert_allclose(
        f.sum(axis=1), np.broadcast_to(m.mean((0, 1))[:, None, None], (3, 6, 9)), atol=1e-14
    )


def test_two_point_lag_sign_convention():
    # A single voxel in channel 0 and one at +(1, 2) in channel 1: f[0, 1] peaks at r = (1, 2).
    m = np.zeros((5, 7, 2))
    m[1, 1, 0] = 1.0
    m[2, 3, 1] = 1.0
    f = np.asarray(tp(m))
    assert np.unravel_index(np.argmax(f[0, 1]), f.shape[2:]) == (5 // 2 + 1, 7 // 2 + 2)
    assert np.unravel_index(np.argmax(f[1, 0]), f.shape[2:]) == (5 // 2 - 1, 7 // 2 - 2)


def test_two_point_matches_pymks_golden():
    g = np.load(GOLDEN)
    lag = int(g["two_point/cutoff"])
    for periodic, tag in ((True, "periodic"), (False, "nonperiodic")):
        f2 = g["two_point/field2"]
        np.testing.assert_allclose(
            tp(f2, periodic=periodic, max_lag=lag), g[f"two_point/field2_{tag}"], atol=1e-12
        )
        np.testing.assert_allclose(
            tp(f2, periodic=periodic, max_lag=lag, mask=g["two_point/mask2"]),
            g[f"two_point/field2_mask_{tag}"],
            atol=1e-12,
        )
        np.testing.assert_allclose(
            tp(g["two_point/field3"], periodic=periodic, max_lag=lag),
            g[f"two_point/field3_{tag}"],
            atol=1e-12,
        )


def test_two_point_zero_mask_lags_are_zero():
    m = np.ones((4, 6, 1))
    mask = np.zeros((4, 6))
    mask[:, :2] = 1.0  # only columns 0, 1 observed: lags |r_1| >= 2 have no pairs
    f = np.asarray(tp(m, periodic=False, mask=mask, max_lag=(1, 3)))
    assert np.all(np.isfinite(f))
    np.testing.assert_allclose(f[0, 0][:, [0, 1, 5, 6]], 0.0)
    np.testing.assert_allclose(f[0, 0][:, 2:5], 1.0, atol=1e-12)


def test_one_point():
    rng = np.random.default_rng(5)
    m = rng.normal(size=(4, 5, 6, 3))
    np.testing.assert_allclose(one_point(m), m.mean((0, 1, 2)))
    mask = rng.uniform(size=(4, 5, 6))
    np.testing.assert_allclose(
        one_point(m, mask=mask), np.einsum("ijk,ijkc->c", mask, m) / mask.sum()
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(periodic=True, max_lag=2, pairs="all"),
        dict(periodic=False, max_lag=2, pairs=((1, 0),)),
        dict(periodic=False, max_lag=1, pairs="auto", masked=True),
    ],
)
def test_two_point_gradients(kwargs):
    rng = np.random.default_rng(6)
    m = rng.normal(size=(4, 5, 2))
    masked = kwargs.pop("masked", False)
    mask = rng.uniform(0.2, 1.0, size=(4, 5))
    weights = rng.normal(size=tp(m, **kwargs).shape)

    if masked:
        loss = jax.jit(lambda x, w: jnp.sum(weights * two_point(x, mask=w, **kwargs)))
        check_grads(loss, (m, mask), order=1, modes=("fwd", "rev"))
    else:
        loss = jax.jit(lambda x: jnp.sum(weights * two_point(x, **kwargs)))
        check_grads(loss, (m,), order=1, modes=("fwd", "rev"))


def shifted_sum_two_point(m, periodic, lags):
    """``two_point`` as one gather of shifted fields and a sum, differentiable by plain autodiff."""
    spatial, c = m.shape[:-1], m.shape[-1]
    nd = len(spatial)
    padded = m if periodic else jnp.pad(m, [(0, n) for n in spatial] + [(0, 0)])
    r = np.stack(np.meshgrid(*lags, indexing="ij"), axis=-1).reshape(-1, nd)
    sites = np.indices(spatial).reshape(nd, -1).T
    target = (sites[None] + r[:, None]) % np.array(padded.shape[:-1])
    shifted = padded[tuple(target[..., i] for i in range(nd))]  # (lags, sites, C)
    count = np.prod(spatial) if periodic else np.prod(np.array(spatial) - np.abs(r), axis=-1)
    out = jnp.einsum("sa,lsb->abl", m.reshape(-1, c), shifted) / count
    return out.reshape(c, c, *(len(x) for x in lags))


@pytest.mark.parametrize(
    ("shape", "periodic", "max_lag", "pairs"),
    [
        ((6, 8, 3), True, None, "all"),  # even sizes: the lag window wraps around on both axes
        ((6, 8, 3), True, (3, 4), ((2, 0), (0, 1), (1, 1))),
        ((6, 8, 3), True, None, "auto"),
        ((4, 6, 4, 2), True, 2, "all"),
        ((5, 6, 3), False, None, "all"),
        ((4, 5, 2, 2), False, (3, 2, 1), ((1, 0), (0, 0))),
    ],
)
def test_two_point_derivatives_match_shifted_sum_autodiff(shape, periodic, max_lag, pairs):
    # two_point's reverse mode relies on XLA folding a 1/N scale into JAX's rfftn transpose and
    # reads wrapped lag windows with slices and selects: both must give autodiff's exact values.
    rng = np.random.default_rng(9)
    m = rng.normal(size=shape)
    spatial = shape[:-1]
    if max_lag is None:
        lags = [np.arange(-(n // 2), n - n // 2) for n in spatial]
    else:
        half = (max_lag,) * len(spatial) if isinstance(max_lag, int) else max_lag
        lags = [np.arange(-h, h + 1) for h in half]

    def reference(x):
        full = shifted_sum_two_point(x, periodic, lags)
        if pairs == "all":
            return full
        chosen = [(a, a) for a in range(shape[-1])] if pairs == "auto" else pairs
        return jnp.stack([full[a, b] for a, b in chosen])

    fn = jax.jit(functools.partial(two_point, periodic=periodic, max_lag=max_lag, pairs=pairs))
    reference = jax.jit(reference)
    value, vjp = jax.vjp(fn, m)
    ref_value, ref_vjp = jax.vjp(reference, m)
    np.testing.assert_allclose(value, ref_value, atol=1e-12)
    cotangent = rng.normal(size=value.shape)
    np.testing.assert_allclose(vjp(cotangent)[0], ref_vjp(cotangent)[0], atol=1e-11)
    tangent = rng.normal(size=shape)
    np.testing.assert_allclose(
        jax.jvp(fn, (m,), (tangent,))[1], jax.jvp(reference, (m,), (tangent,))[1], atol=1e-11
    )
    # float32: the gradient of a squared-error loss (the benchmark's) within float tolerance.
    m32 = m.astype(np.float32)
    goal = np.asarray(reference(m), np.float32) * 1.01

    def loss(f, x):
        return jnp.sum((f(x) - goal) ** 2)

    grad = jax.jit(jax.grad(functools.partial(loss, fn)))(m32)
    assert grad.dtype == jnp.float32
    ref_grad = jax.grad(functools.partial(loss, reference))(m)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-4 * np.abs(ref_grad).max())


def test_two_point_jit_vmap_float32():
    rng = np.random.default_rng(7)
    batch = rng.normal(size=(3, 6, 5, 2)).astype(np.float32)
    fn = functools.partial(two_point, periodic=False, max_lag=2)
    jitted = jax.jit(fn)
    eager = np.stack([np.asarray(fn(x)) for x in batch])
    np.testing.assert_allclose(jitted(batch[0]), eager[0], atol=1e-6)
    out = jax.vmap(jitted)(batch)
    assert out.dtype == jnp.float32 and one_point(batch[0]).dtype == jnp.float32
    np.testing.assert_allclose(out, eager, atol=1e-6)
    ref = direct_two_point(batch[1].astype(np.float64), False, lags=[np.arange(-2, 3)] * 2)
    np.testing.assert_allclose(out[1], ref, atol=1e-5)
    jitted(batch[1])
    assert jitted._cache_size() == 1  # same shapes and dtype: no recompilation
    # float32 mask with a float64 field (and vice versa) keeps the field's dtype.
    assert tp(batch[0], mask=np.ones((6, 5)), max_lag=1).dtype == jnp.float32


def test_two_point_sharded_batch_matches_single_device():
    # XLA's SPMD partitioner replicates FFTs (all-gather; openxla/xla#24, jax-ml/jax#15680) and on
    # CPU jit + NamedSharding of vmap(two_point) can even fail a layout RET_CHECK, so batches are
    # sharded with shard_map: each device transforms its own fields.
    rng = np.random.default_rng(8)
    batch = rng.normal(size=(8, 6, 5, 2))
    mesh = jax.make_mesh((4,), ("batch",))
    sharded = jax.device_put(batch, NamedSharding(mesh, PartitionSpec("batch")))
    per_field = jax.vmap(functools.partial(two_point, max_lag=2, pairs=((1, 0), (0, 0))))
    fn = jax.jit(
        jax.shard_map(
            per_field, mesh=mesh, in_specs=PartitionSpec("batch"), out_specs=PartitionSpec("batch")
        )
    )
    out = fn(sharded)
    assert out.sharding.spec[0] == "batch"
    np.testing.assert_allclose(out, jax.jit(per_field)(batch), atol=1e-12)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((np.zeros((5, 2)),), {}, "m: expected 3 or 4 dimensions"),
        ((np.zeros((5, 6, 2)),), dict(max_lag=3), "max_lag: half-width 3 out of range"),
        ((np.zeros((5, 6, 2)),), dict(max_lag=(1, 1, 1)), "max_lag: expected an int or 2 ints"),
        ((np.zeros((5, 6, 2)),), dict(pairs="cross"), "pairs: unknown value"),
        ((np.zeros((5, 6, 2)),), dict(pairs=[(0, 2)]), "pairs: expected a non-empty list"),
        ((np.zeros((5, 6, 2)),), dict(mask=np.ones((6, 5))), "mask: expected shape"),
        (
            (np.zeros((5, 6, 2)),),
            dict(mask=2 * np.ones((5, 6))),
            r"mask: values must lie in \[0.0, 1.0\]",
        ),
        # grain or phase labels are not a field: their correlations are no phase's
        ((np.arange(30).reshape(5, 6, 1),), {}, "m: integer values 0..29 are labels"),
        ((np.ones((5, 6, 1), np.complex64),), {}, "m: complex values"),
    ],
)
def test_two_point_validation(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        two_point(*args, **kwargs)


def test_integer_indicators_equal_float_indicators():
    labels = np.random.default_rng(0).integers(0, 3, (6, 5))
    onehot = np.eye(3, dtype=np.int32)[labels]  # integer indicators are accepted
    np.testing.assert_allclose(two_point(onehot), two_point(onehot.astype(np.float64)))
