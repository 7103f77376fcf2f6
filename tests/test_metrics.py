"""Distribution distances, set metrics and statistic discrepancies vs independent references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from jax.test_util import check_grads
from sklearn.metrics import r2_score as sk_r2

from jaxmicro import metrics, orientations
from jaxmicro.metrics._statistics import ODF_DEGREES


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    return rng.gamma(2.0, 1.5, 137), rng.gamma(2.5, 1.2, 91)


def test_ks_and_emd_match_scipy(samples):
    a, b = samples
    assert metrics.ks_distance(a, b) == pytest.approx(scipy.stats.ks_2samp(a, b).statistic, 1e-12)
    spread = max(a.max(), b.max()) - min(a.min(), b.min())
    w1 = scipy.stats.wasserstein_distance(a, b)
    assert metrics.emd_normalized(a, b) * spread == pytest.approx(w1, rel=1e-12)
    # ties and integer samples
    ia, ib = np.array([1, 2, 2, 3, 5]), np.array([2, 2, 4])
    assert metrics.ks_distance(ia, ib) == pytest.approx(scipy.stats.ks_2samp(ia, ib).statistic)
    assert metrics.emd_normalized(ia, ib) * 4 == pytest.approx(
        scipy.stats.wasserstein_distance(ia, ib)
    )
    assert metrics.emd_normalized(np.ones(3), np.ones(4)) == 0


def test_distances_dtype_jit_and_symmetry(samples):
    a, b = (x.astype(np.float32) for x in samples)
    for fn in (metrics.ks_distance, metrics.emd_normalized):
        out = fn(a, b)
        assert out.dtype == jnp.float32
        assert jax.jit(fn)(a, b) == pytest.approx(float(out), rel=1e-6)
        assert fn(b, a) == pytest.approx(float(out), rel=1e-6)
        assert fn(a, a) == 0


def test_kl_matches_scipy_entropy_on_pooled_bins(samples):
    a, b = samples
    edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 21)
    p = np.histogram(a, edges)[0] + 0.5
    q = np.histogram(b, edges)[0] + 0.5
    want = scipy.stats.entropy(p, q)
    assert metrics.kl_divergence(a, b, bins=20) == pytest.approx(want, rel=1e-10)
    assert metrics.kl_divergence(a, a, bins=20) == pytest.approx(0, abs=1e-15)
    assert metrics.kl_divergence(b, a, bins=20) > 0
    with pytest.raises(ValueError, match="bins"):
        metrics.kl_divergence(a, b, bins=0)


def test_r2_matches_sklearn():
    rng = np.random.default_rng(1)
    target = rng.uniform(0.7, 0.8, 40)
    achieved = target + rng.normal(0, 0.01, 40)
    assert metrics.r2_score(target, achieved) == pytest.approx(sk_r2(target, achieved), 1e-12)
    with pytest.raises(ValueError, match="achieved"):
        metrics.r2_score(target, achieved[:-1])


def test_histogram_emd_matches_scipy():
    rng = np.random.default_rng(2)
    p, q = rng.uniform(size=12), rng.uniform(size=12)
    x = np.arange(12)
    want = scipy.stats.wasserstein_distance(x, x, p, q) / 11
    assert metrics.histogram_emd(p, q) == pytest.approx(want, rel=1e-12)


def test_frechet_identical_and_closed_form():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 4))
    assert metrics.frechet_distance(x, x) == pytest.approx(0, abs=1e-10)

    # samples whose mean and (ddof=1) covariance are exactly mu and C
    def exact(mu, c, n):
        z = rng.normal(size=(n, len(mu)))
        z -= z.mean(0)
        z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z.T)))).T
        return z @ np.linalg.cholesky(c).T + mu

    a_c = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])
    b_c = np.array([[1.0, -0.2, 0.1], [-0.2, 0.8, 0.0], [0.1, 0.0, 1.5]])
    mu_a, mu_b = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, 0.0])
    want = np.sum((mu_a - mu_b) ** 2) + np.trace(a_c + b_c - 2 * scipy.linalg.sqrtm(a_c @ b_c))
    got = metrics.frechet_distance(exact(mu_a, a_c, 30), exact(mu_b, b_c, 40))
    assert got == pytest.approx(np.real(want), rel=1e-9)
    # 1-D: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2
    one = metrics.frechet_distance(exact([1.0], [[4.0]], 20), exact([0.0], [[1.0]], 20))
    assert one == pytest.approx(1 + 1, rel=1e-10)


def test_frechet_gradients_and_float32():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(8, 3)), rng.normal(size=(7, 3)) + 0.3
    check_grads(metrics.frechet_distance, (a, b), order=1, modes=("fwd", "rev"), rtol=1e-4)
    assert metrics.frechet_distance(a.astype(np.float32), b.astype(np.float32)).dtype == (
        jnp.float32
    )


def test_precision_recall():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 5))
    p, r = metrics.precision_recall(x, x, k=3)
    assert p == 1 and r == 1
    p, r = metrics.precision_recall(x, x + 100, k=3)
    assert p == 0 and r == 0
    y = rng.normal(size=(30, 5)) * 1.5
    d_xx = np.linalg.norm(x[:, None] - x[None], axis=-1)
    d_yy = np.linalg.norm(y[:, None] - y[None], axis=-1)
    d_yx = np.linalg.norm(y[:, None] - x[None], axis=-1)
    rad_x, rad_y = np.sort(d_xx, 1)[:, 3], np.sort(d_yy, 1)[:, 3]
    want_p = np.mean(np.any(d_yx <= rad_x[None], axis=1))
    want_r = np.mean(np.any(d_yx.T <= rad_y[None], axis=1))
    p, r = metrics.precision_recall(x, y, k=3)
    assert (float(p), float(r)) == pytest.approx((want_p, want_r))
    with pytest.raises(ValueError, match="features_a: expected at least 4"):
        metrics.precision_recall(x[:3], y, k=3)


def test_nearest_training_mse_flags_copies():
    rng = np.random.default_rng(6)
    train = rng.uniform(size=(6, 8, 8))
    gen = np.concatenate([train[[4]], rng.uniform(size=(2, 8, 8))])
    mse, idx = metrics.nearest_training_mse(gen, train)
    assert mse[0] == pytest.approx(0, abs=1e-12) and idx[0] == 4
    brute = ((gen[:, None] - train[None]) ** 2).mean(axis=(2, 3))
    np.testing.assert_allclose(mse, brute.min(1), atol=1e-12)
    np.testing.assert_array_equal(idx, brute.argmin(1))


def test_copying_z_is_scipys_mann_whitney_with_ties():
    from scipy import stats

    rng = np.random.default_rng(11)
    # discrete distances (pixel MSEs are multiples of 4 / pixels): many ties
    held = rng.binomial(40, 0.3, size=300) / 8.0
    for shift, sign in ((0.0, 0), (-0.25, -1), (0.25, 1)):  # exact in float32 and 64
        gen = rng.binomial(40, 0.3, size=200) / 8.0 + shift
        z = float(metrics.copying_z(gen, held))
        ref = stats.mannwhitneyu(gen, held, use_continuity=False, method="asymptotic")
        u_centred = ref.statistic - gen.size * held.size / 2
        assert abs(z) == pytest.approx(stats.norm.isf(ref.pvalue / 2), rel=1e-5)
        assert np.sign(z) == np.sign(u_centred)
        z32 = metrics.copying_z(gen.astype(np.float32), held.astype(np.float32))
        assert float(z32) == pytest.approx(z, rel=1e-4, abs=1e-4)
        if sign:  # samples closer to the training set than held-out images: copying
            assert np.sign(z) == sign and abs(z) > 3
        else:
            assert abs(z) < 3


def test_copying_z_flags_copies_and_checks_input():
    rng = np.random.default_rng(12)
    train = np.sign(rng.normal(size=(40, 8, 8)))
    fresh = np.sign(rng.normal(size=(30, 8, 8)))
    copies = train[:30] * np.where(rng.uniform(size=(30, 8, 8)) < 0.05, -1, 1)  # 5 % flipped
    base, _ = metrics.nearest_training_mse(fresh, train)
    new, _ = metrics.nearest_training_mse(np.sign(rng.normal(size=(30, 8, 8))), train)
    copied, _ = metrics.nearest_training_mse(copies, train)
    assert float(metrics.copying_z(copied, base)) < -5
    assert abs(float(metrics.copying_z(new, base))) < 3
    with pytest.raises(ValueError, match="held_out_distances"):
        metrics.copying_z(base, base[:, None])
    with pytest.raises(ValueError, match="generated_distances"):
        metrics.copying_z(base[:1], base)


def test_principal_components():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(30, 6)) @ rng.normal(size=(6, 6))
    mean, basis = metrics.principal_components(x, n_components=3)
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-10)
    var = np.var((x - mean) @ basis.T, axis=0, ddof=1)
    np.testing.assert_allclose(var, np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1][:3], rtol=1e-9)


def test_correlation_discrepancy():
    r = np.linspace(0, 10, 11)
    ref = np.exp(-r / 3)
    assert metrics.correlation_discrepancy(ref, ref) == 0
    assert metrics.correlation_discrepancy(ref, 1.1 * ref) == pytest.approx(10.0)
    gen = ref + 0.01 * np.sin(r)
    want = 100 * np.trapezoid(np.abs(gen - ref), r) / np.trapezoid(ref, r)
    assert metrics.correlation_discrepancy(ref, gen, r=r) == pytest.approx(want)
    r2 = r**1.5
    want = 100 * np.trapezoid(np.abs(gen - ref), r2) / np.trapezoid(ref, r2)
    assert metrics.correlation_discrepancy(ref, gen, r=r2) == pytest.approx(want)


def test_correlation_discrepancy_on_hand_made_curves():
    """Eq. 23 by hand: trapezoids on unit spacing, area between / area under the reference."""
    ref = np.array([0.3, 0.2, 0.1, 0.1])  # area 0.25 + 0.15 + 0.1 = 0.5
    gen = np.array([0.3, 0.25, 0.1, 0.1])  # |gen - ref| = (0, 0.05, 0, 0): area 0.05
    assert metrics.correlation_discrepancy(ref, gen) == pytest.approx(10.0)
    # batched curves, and the same absolute error on a curve with a 10x smaller area
    both = metrics.correlation_discrepancy(
        np.stack([ref, ref / 10]), np.stack([gen, gen - 0.9 * ref])
    )
    np.testing.assert_allclose(both, [10.0, 100 * 0.05 / 0.05], rtol=1e-6)


def test_radial_average_matches_loop():
    rng = np.random.default_rng(8)
    corr = rng.uniform(size=(2, 9, 8))
    got = np.asarray(metrics.radial_average(corr, ndim=2))
    d = np.round(np.hypot(*np.meshgrid(np.arange(9) - 4, np.arange(8) - 4, indexing="ij")))
    want = np.stack([[c[d == s].mean() for s in range(5)] for c in corr])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_two_point_mse():
    rng = np.random.default_rng(9)
    a = (rng.uniform(size=(3, 8, 8, 1)) > 0.5).astype(float)
    b = (rng.uniform(size=(2, 8, 8, 1)) > 0.3).astype(float)
    assert metrics.two_point_mse(a, a) == 0

    def s2(m):  # periodic autocorrelation by direct sums, lags centred at n // 2
        out = np.zeros((8, 8))
        for i in range(8):
            for j in range(8):
                out[i, j] = np.mean(m * np.roll(m, (-(i - 4), -(j - 4)), axis=(0, 1)))
        return out

    want = np.mean(
        (np.mean([s2(m[..., 0]) for m in a], 0) - np.mean([s2(m[..., 0]) for m in b], 0)) ** 2
    )
    assert metrics.two_point_mse(a, b) == pytest.approx(want, rel=1e-10)


def test_odf_mse_is_symmetry_invariant():
    q = orientations.random_quats(jax.random.key(0), (50,))
    sym = orientations.symmetry_quats("cubic")
    moved = orientations.quat_multiply(sym[jnp.arange(50) % 24], q)
    assert metrics.odf_mse(q, moved, "cubic") == pytest.approx(0, abs=1e-20)
    other = orientations.random_quats(jax.random.key(1), (50,))
    assert metrics.odf_mse(q, other, "cubic") > 1e-6


def test_odf_mse_default_degrees_see_rotations_about_c():
    # A hexagonal texture and the same texture turned by 20 degrees about the crystal c-axis
    # (q -> r_c * q, not a symmetry element): degrees 4 and 8 see only the c-axis and miss it,
    # the default degrees (up to 12) do not.
    from jaxmicro import synth

    key = jax.random.key(3)
    texture = orientations.random_quats(key, (), jnp.float64)
    q = synth.grain_orientations(key, 2000, texture=texture, spread=0.15, dtype=jnp.float64)
    r_c = orientations.axis_angle_to_quat(jnp.array([0.0, 0.0, 1.0]), jnp.deg2rad(20.0))
    turned = orientations.quat_multiply(r_c, q)
    assert metrics.odf_mse(q, turned, "hexagonal", degrees=(4, 8)) < 1e-20
    assert metrics.odf_mse(q, turned, "hexagonal") > 1e-4
    assert ODF_DEGREES["hexagonal"] == (4, 8, 12)


@pytest.mark.parametrize("symmetry", orientations.SYMMETRIES)
def test_odf_degrees_determine_the_orientation(symmetry):
    # Local injectivity: the features' Jacobian with respect to the three rotations q -> dq * q
    # has rank 3 at generic orientations (rank 2 would leave a rotation invisible).
    from jaxmicro import harmonics

    degrees = ODF_DEGREES[symmetry]
    qs = orientations.random_quats(jax.random.key(4), (5,), jnp.float64)

    def features(v, q):
        angle = jnp.sqrt(jnp.sum(v * v) + 1e-300)
        dq = jnp.concatenate([jnp.cos(angle / 2)[None], jnp.sin(angle / 2) * v / angle])
        return harmonics.shsh(orientations.quat_multiply(dq, q), symmetry, degrees)

    for q in qs:
        jac = np.asarray(jax.jacfwd(features)(jnp.full(3, 1e-9), q))
        sv = np.linalg.svd(jac, compute_uv=False)
        assert sv[2] > 1e-4 * sv[0]
