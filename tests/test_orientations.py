"""Tests of jaxmicro.orientations: conventions, round trips, symmetry, misorientation, IPF."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxmicro import orientations as ori
from jaxmicro.orientations.ipf import _barycentric_matrix

GOLDEN = Path(__file__).parent / "data" / "orientations_golden.npz"
MAX_DISORIENTATION_DEG = {"cubic": 62.80, "hexagonal": 93.84}


def bunge_matrix(euler):
    """Bunge passive matrix g = R_z(phi2) R_x(Phi) R_z(phi1), written out independently."""
    p1, P, p2 = np.moveaxis(np.asarray(euler, dtype=np.float64), -1, 0)
    c1, s1, c2, s2, c, s = np.cos(p1), np.sin(p1), np.cos(p2), np.sin(p2), np.cos(P), np.sin(P)
    rows = [
        [c1 * c2 - s1 * s2 * c, s1 * c2 + c1 * s2 * c, s2 * s],
        [-c1 * s2 - s1 * c2 * c, -s1 * s2 + c1 * c2 * c, c2 * s],
        [s1 * s, -c1 * s, c],
    ]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def same_rotation(a, b):
    """Max |a - b| up to the sign of each quaternion."""
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.minimum(np.abs(a - b).max(-1), np.abs(a + b).max(-1)))


@pytest.fixture(scope="module")
def quats():
    return ori.random_quats(jax.random.key(0), (64,))


@pytest.fixture(scope="module")
def eulers():
    rng = np.random.default_rng(1)
    lo, hi = [0.0, 0.05, 0.0], [2 * np.pi, np.pi - 0.05, 2 * np.pi]
    return rng.uniform(lo, hi, size=(64, 3))


# --- conversions ---------------------------------------------------------------------------------


def test_euler_to_quat_matches_bunge_matrix(eulers):
    q = ori.euler_to_quat(eulers)
    np.testing.assert_allclose(ori.quat_to_matrix(q), bunge_matrix(eulers), atol=1e-13)
    assert np.all(np.asarray(q)[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-14)


def test_known_values():
    # Passive rotation by 90 deg about z: q = (cos 45, 0, 0, sin 45), g maps x_s to -y_c.
    q = ori.axis_angle_to_quat([0.0, 0.0, 1.0], np.pi / 2)
    np.testing.assert_allclose(q, [np.sqrt(0.5), 0, 0, np.sqrt(0.5)], atol=1e-15)
    np.testing.assert_allclose(ori.euler_to_quat([np.pi / 2, 0, 0]), q, atol=1e-15)
    np.testing.assert_allclose(ori.quat_rotate(q, [1.0, 0, 0]), [0, -1, 0], atol=1e-15)
    np.testing.assert_allclose(
        ori.quat_to_matrix(q), [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-15
    )
    np.testing.assert_allclose(ori.quat_angle(q), np.pi / 2, atol=1e-15)
    # Euler (0, Phi, 0) is a passive rotation by Phi about x.
    np.testing.assert_allclose(
        ori.euler_to_quat([0.0, 0.4, 0.0]), ori.axis_angle_to_quat([1.0, 0, 0], 0.4), atol=1e-15
    )


def test_golden_values_from_independent_library():
    g = np.load(GOLDEN)
    np.testing.assert_allclose(ori.euler_to_quat(g["euler"]), g["quat"], atol=1e-10)
    np.testing.assert_allclose(ori.quat_to_matrix(g["quat"]), g["matrix"], atol=1e-10)
    for sym in ("cubic", "hexagonal"):
        got = ori.misorientation_angle(g["pair_a"], g["pair_b"], sym)
        np.testing.assert_allclose(got, g[f"misorientation_{sym}"], atol=1e-8)


def test_euler_round_trip(eulers):
    back = ori.quat_to_euler(ori.euler_to_quat(eulers))
    np.testing.assert_allclose(back, eulers, atol=1e-12)


@pytest.mark.parametrize("Phi", [0.0, 1e-9, 1e-5, np.pi - 1e-5, np.pi - 1e-9, np.pi])
def test_euler_round_trip_near_singularities(Phi):
    e = np.array([[0.3, Phi, 1.2], [5.9, Phi, 0.1], [0.0, Phi, 0.0]])
    q = ori.euler_to_quat(e)
    back = ori.quat_to_euler(q)
    # Angles are not unique at the singularities: compare the rotations.
    assert same_rotation(ori.euler_to_quat(back), q) < 1e-12
    np.testing.assert_allclose(back[:, 1], Phi, atol=1e-12)
    assert np.all((back[:, [0, 2]] >= 0) & (back[:, [0, 2]] < 2 * np.pi))
    if Phi in (0.0, np.pi):
        np.testing.assert_array_equal(back[:, 2], 0.0)  # the degenerate sum goes to phi1


def test_quat_to_euler_ignores_sign_and_norm(quats):
    e = ori.quat_to_euler(quats)
    np.testing.assert_allclose(ori.quat_to_euler(-quats), e, atol=1e-12)
    np.testing.assert_allclose(ori.quat_to_euler(quats * 1.0005), e, atol=1e-12)


def test_matrix_round_trip(quats):
    m = ori.quat_to_matrix(quats)
    np.testing.assert_allclose(
        m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-14
    )
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-13)
    assert same_rotation(ori.matrix_to_quat(m), quats) < 1e-14
    # Each Shepperd branch: rotations by pi about x, y, z and the identity.
    axes = np.eye(3)
    special = np.concatenate([[[1.0, 0, 0, 0]], np.concatenate([np.zeros((3, 1)), axes], 1)])
    assert same_rotation(ori.matrix_to_quat(ori.quat_to_matrix(special)), special) < 1e-15


def test_multiply_composes_matrices(quats):
    a, b = quats[:32], quats[32:]
    ab = ori.quat_multiply(a, b)
    np.testing.assert_allclose(
        ori.quat_to_matrix(ab), ori.quat_to_matrix(a) @ ori.quat_to_matrix(b), atol=1e-14
    )
    identity = ori.quat_multiply(a, ori.quat_conjugate(a))
    np.testing.assert_allclose(identity, np.broadcast_to([1.0, 0, 0, 0], a.shape), atol=1e-15)


def test_rotate_matches_matrix(quats):
    v = np.random.default_rng(2).normal(size=(64, 3))
    want = np.einsum("nij,nj->ni", ori.quat_to_matrix(quats), v)
    np.testing.assert_allclose(ori.quat_rotate(quats, v), want, atol=1e-13)


def test_axis_angle_and_angle():
    rng = np.random.default_rng(3)
    axis = rng.normal(size=(20, 3))
    angle = rng.uniform(0, 2 * np.pi, size=20)
    q = ori.axis_angle_to_quat(axis, angle)
    np.testing.assert_allclose(ori.quat_angle(q), np.minimum(angle, 2 * np.pi - angle), atol=1e-12)
    n = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    np.testing.assert_allclose(ori.quat_rotate(q, n), n, atol=1e-13)  # the axis is fixed


def test_random_quats_are_haar_uniform():
    q = np.asarray(ori.random_quats(jax.random.key(5), (20000,)))
    assert q.shape == (20000, 4) and np.all(q[:, 0] >= 0)
    # On S^3, E|q0| = 4 / (3 pi) (sd of the mean 0.0019) and E[g] = 0 for the Haar measure.
    assert abs(q[:, 0].mean() - 4 / (3 * np.pi)) < 0.01
    assert np.abs(np.asarray(ori.quat_to_matrix(q)).mean(0)).max() < 0.03
    # The rotation angle w has density (1 - cos w) / pi: E[w] = pi / 2 + 2 / pi.
    w = np.asarray(ori.quat_angle(q))
    assert abs(w.mean() - (np.pi / 2 + 2 / np.pi)) < 0.02


# --- symmetry ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sym", "n"),
    [
        ("cubic", 24),
        ("hexagonal", 12),
        ("tetragonal", 8),
        ("trigonal", 6),
        ("orthorhombic", 4),
        ("monoclinic", 2),
        ("triclinic", 1),
    ],
)
def test_groups_are_closed(sym, n):
    s = np.asarray(ori.symmetry_quats(sym))
    assert s.shape == (n, 4)
    np.testing.assert_array_equal(s[0], [1.0, 0, 0, 0])
    np.testing.assert_allclose(np.linalg.norm(s, axis=-1), 1.0, atol=1e-15)
    overlap = np.abs(s @ s.T)  # |<s_i, s_j>| = 1 iff same rotation
    np.testing.assert_allclose(overlap[~np.eye(n, dtype=bool)].max(initial=0) < 1 - 1e-6, True)
    products = np.asarray(ori.quat_multiply(s[:, None], s[None, :])).reshape(-1, 4)
    assert np.all(np.abs(products @ s.T).max(-1) > 1 - 1e-12)


def test_group_axis_settings():
    # hexagonal: 2-fold along a1 = x and along [10-10] (azimuth 30 deg); monoclinic: 2-fold along y.
    hexa = np.asarray(ori.symmetry_quats("hexagonal"))
    for axis in ([1.0, 0, 0], [np.cos(np.pi / 6), np.sin(np.pi / 6), 0]):
        assert np.abs(hexa @ np.r_[0.0, axis]).max() > 1 - 1e-15
    np.testing.assert_allclose(ori.symmetry_quats("monoclinic")[1], [0, 0, 1, 0], atol=1e-15)


@pytest.mark.parametrize("sym", ["cubic", "hexagonal", "orthorhombic"])
def test_fundamental_zone(quats, sym):
    fz = ori.to_fundamental_zone(quats, sym)
    np.testing.assert_allclose(ori.to_fundamental_zone(fz, sym), fz, atol=1e-14)  # idempotent
    np.testing.assert_allclose(ori.misorientation_angle(fz, quats, sym), 0.0, atol=1e-7)
    # The smallest angle among all equivalents, and the same result from any equivalent.
    s = ori.symmetry_quats(sym)
    equivalents = ori.quat_multiply(s[:, None], quats[None])
    assert np.all(ori.quat_angle(fz) <= ori.quat_angle(equivalents).min(0) + 1e-12)
    np.testing.assert_allclose(ori.to_fundamental_zone(equivalents[-1], sym), fz, atol=1e-12)
    np.testing.assert_allclose(
        ori.misorientation_angle(fz[:32], fz[32:], sym),
        ori.misorientation_angle(quats[:32], quats[32:], sym),
        atol=1e-12,
    )


@pytest.mark.parametrize("sym", ["cubic", "hexagonal", "trigonal"])
def test_misorientation_invariances(quats, sym):
    a, b = quats[:32], quats[32:]
    angle = ori.misorientation_angle(a, b, sym)
    assert np.all((angle >= 0) & (angle <= np.deg2rad(MAX_DISORIENTATION_DEG.get(sym, 180))))
    np.testing.assert_allclose(ori.misorientation_angle(b, a, sym), angle, atol=1e-12)
    s = ori.symmetry_quats(sym)
    sa = ori.quat_multiply(s[-1], a)
    sb = ori.quat_multiply(s[len(s) // 2], b)
    np.testing.assert_allclose(ori.misorientation_angle(sa, sb, sym), angle, atol=1e-12)
    r = ori.random_quats(jax.random.key(9), ())
    ar, br = ori.quat_multiply(a, r), ori.quat_multiply(b, r)  # a common sample rotation
    np.testing.assert_allclose(ori.misorientation_angle(ar, br, sym), angle, atol=1e-12)
    # Brute force over both sides: min_{i,j} angle(s_i b a^-1 s_j^-1).
    d = ori.quat_multiply(b, ori.quat_conjugate(a))
    both = ori.quat_multiply(
        ori.quat_multiply(s[:, None, None], d), ori.quat_conjugate(s)[None, :, None]
    )
    np.testing.assert_allclose(ori.quat_angle(both).min((0, 1)), angle, atol=1e-12)


def test_misorientation_known_values():
    a = ori.random_quats(jax.random.key(4), (5,))
    # Sigma-3 twin: 60 deg about <111>, applied in the crystal frame.
    twin = ori.quat_multiply(ori.axis_angle_to_quat([1.0, 1.0, 1.0], np.pi / 3), a)
    np.testing.assert_allclose(ori.misorientation_angle(a, twin, "cubic"), np.pi / 3, atol=1e-12)
    # 100 deg about z is 10 deg for cubic, 20 deg for hexagonal, 100 deg without symmetry.
    b = ori.quat_multiply(ori.axis_angle_to_quat([0.0, 0, 1], np.deg2rad(100)), a)
    np.testing.assert_allclose(ori.misorientation_angle(a, b, "cubic"), np.deg2rad(10), atol=1e-12)
    np.testing.assert_allclose(
        ori.misorientation_angle(a, b, "hexagonal"), np.deg2rad(20), atol=1e-12
    )
    np.testing.assert_allclose(
        ori.misorientation_angle(a, b, "triclinic"), np.deg2rad(100), atol=1e-12
    )


# --- IPF -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sym", ori.IPF_SYMMETRIES)
def test_ipf_sector_tiles_the_sphere(sym):
    # Exactly one Laue-equivalent of a random direction lies inside the colour triangle.
    h = np.random.default_rng(6).normal(size=(500, 3))
    s = ori.symmetry_quats(sym)
    proper = np.asarray(ori.quat_rotate(s[:, None], h[None]))
    candidates = np.concatenate([proper, -proper])
    inside = np.all(candidates @ _barycentric_matrix(sym).T > 1e-9, axis=-1).sum(0)
    np.testing.assert_array_equal(inside, 1)


@pytest.mark.parametrize("sym", ori.IPF_SYMMETRIES)
def test_ipf_colors_valid_and_invariant(quats, sym):
    rgb = np.asarray(ori.ipf_color(quats, sym, direction=(1.0, 0.5, 0.2)))
    assert rgb.shape == (64, 3)
    assert np.all((rgb >= 0) & (rgb <= 1)) and np.allclose(rgb.max(-1), 1.0)
    s = ori.symmetry_quats(sym)
    moved = ori.quat_multiply(s[-1], quats)
    np.testing.assert_allclose(ori.ipf_color(moved, sym, direction=(1.0, 0.5, 0.2)), rgb, atol=1e-9)


def test_ipf_cubic_against_sorting_reference(quats):
    # Independent reduction for m-3m: sort |h| so that z >= x >= y, then the barycentric key.
    h = np.abs(np.einsum("nij,j->ni", ori.quat_to_matrix(quats), [0.0, 0, 1]))
    y, x, z = np.sort(h, axis=-1).T
    abc = np.stack([z - x, np.sqrt(2) * (x - y), np.sqrt(3) * y], -1)
    np.testing.assert_allclose(
        ori.ipf_color(quats, "cubic"), abc / abc.max(-1, keepdims=True), atol=1e-12
    )


def test_ipf_corner_colours():
    identity = np.array([1.0, 0, 0, 0])
    for direction, rgb in [((0, 0, 1), (1, 0, 0)), ((1, 0, 1), (0, 1, 0)), ((1, 1, 1), (0, 0, 1))]:
        np.testing.assert_allclose(ori.ipf_color(identity, "cubic", direction), rgb, atol=1e-12)
    hexa = [((0, 0, 1), (1, 0, 0)), ((1, 0, 0), (0, 1, 0)), ((np.sqrt(3), 1, 0), (0, 0, 1))]
    for direction, rgb in hexa:
        np.testing.assert_allclose(ori.ipf_color(identity, "hexagonal", direction), rgb, atol=1e-12)


# --- JAX behaviour -------------------------------------------------------------------------------


def test_check_grads_away_from_singularities(eulers, quats):
    e = jnp.asarray(eulers[:4])
    q = quats[:4]
    check_grads(ori.euler_to_quat, (e,), order=1, modes=("fwd", "rev"))
    check_grads(ori.quat_to_euler, (ori.euler_to_quat(e),), order=1, modes=("fwd", "rev"))
    check_grads(ori.quat_to_matrix, (q,), order=1, modes=("fwd", "rev"))
    check_grads(ori.matrix_to_quat, (ori.quat_to_matrix(q),), order=1, modes=("fwd", "rev"))
    check_grads(ori.quat_multiply, (q, quats[4:8]), order=1, modes=("fwd", "rev"))
    check_grads(ori.quat_rotate, (q, jnp.ones((4, 3))), order=1, modes=("fwd", "rev"))
    check_grads(ori.quat_angle, (q,), order=1, modes=("fwd", "rev"))
    check_grads(
        ori.axis_angle_to_quat, (jnp.ones((4, 3)), jnp.full(4, 0.7)), order=1, modes=("fwd", "rev")
    )
    check_grads(
        lambda a, b: ori.misorientation_angle(a, b, "cubic"),
        (q, quats[4:8]),
        order=1,
        modes=("fwd", "rev"),
    )


def test_gradients_finite_at_singular_points():
    q = jnp.array([[1.0, 0, 0, 0], [0.0, 1, 0, 0], [0.0, 0, 0, 1]])
    assert np.all(np.isfinite(jax.jacfwd(ori.quat_to_euler)(q)))
    assert np.all(np.isfinite(jax.grad(lambda x: ori.quat_angle(x).sum())(q)))
    g = jax.grad(lambda x: ori.misorientation_angle(x, x, "cubic").sum())(q)
    assert np.all(np.isfinite(g))


def test_jit_equals_eager(quats, eulers):
    a, b = quats[:32], quats[32:]
    cases = [
        (ori.euler_to_quat, (eulers,), {}),
        (ori.quat_to_euler, (a,), {}),
        (ori.quat_to_matrix, (a,), {}),
        (ori.matrix_to_quat, (ori.quat_to_matrix(a),), {}),
        (ori.quat_multiply, (a, b), {}),
        (ori.quat_rotate, (a, eulers[:32]), {}),
        (ori.to_fundamental_zone, (a,), {"symmetry": "cubic"}),
        (ori.misorientation_angle, (a, b), {"symmetry": "hexagonal"}),
        (ori.ipf_color, (a,), {"symmetry": "cubic"}),
    ]
    for fn, args, kw in cases:
        jitted = jax.jit(fn, static_argnames=tuple(kw))
        np.testing.assert_allclose(
            jitted(*args, **kw), fn(*args, **kw), atol=1e-14, err_msg=fn.__name__
        )


def test_vmap_equals_loop(quats):
    a, b = quats[:8], quats[8:16]
    f = lambda x, y: ori.misorientation_angle(x, y, "cubic")  # noqa: E731
    np.testing.assert_allclose(
        jax.vmap(f)(a, b), [f(x, y) for x, y in zip(a, b, strict=True)], atol=1e-14
    )


def test_sharded_equals_single_device(quats):
    mesh = jax.make_mesh((4,), ("batch",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    a, b = jax.device_put(quats[:32], sharding), jax.device_put(quats[32:], sharding)
    f = jax.jit(ori.misorientation_angle, static_argnames="symmetry")
    np.testing.assert_allclose(
        f(a, b, symmetry="cubic"), f(quats[:32], quats[32:], symmetry="cubic"), atol=1e-14
    )


def test_dtype_preserved(quats, eulers):
    q32 = np.asarray(quats, dtype=np.float32)
    e32 = np.asarray(eulers, dtype=np.float32)
    outs = [
        ori.euler_to_quat(e32),
        ori.quat_to_euler(q32),
        ori.quat_to_matrix(q32),
        ori.matrix_to_quat(ori.quat_to_matrix(q32)),
        ori.quat_multiply(q32, q32),
        ori.quat_rotate(q32, e32),
        ori.quat_angle(q32),
        ori.to_fundamental_zone(q32, "cubic"),
        ori.misorientation_angle(q32, q32[::-1], "cubic"),
        ori.ipf_color(q32, "hexagonal"),
        ori.random_quats(jax.random.key(0), (3,), dtype=jnp.float32),
        ori.symmetry_quats("cubic", dtype=jnp.float32),
    ]
    assert all(o.dtype == jnp.float32 for o in outs)
    assert ori.euler_to_quat(eulers).dtype == jnp.float64
    np.testing.assert_allclose(ori.euler_to_quat(e32), ori.euler_to_quat(eulers), atol=1e-6)
    np.testing.assert_allclose(
        ori.misorientation_angle(q32[:32], q32[32:], "cubic"),
        ori.misorientation_angle(quats[:32], quats[32:], "cubic"),
        atol=1e-5,
    )


def test_validation_errors(quats):
    with pytest.raises(ValueError, match="symmetry"):
        ori.symmetry_quats("icosahedral")
    with pytest.raises(ValueError, match="symmetry"):
        ori.misorientation_angle(quats, quats, "cubicc")
    with pytest.raises(ValueError, match="symmetry"):
        ori.ipf_color(quats, "triclinic")
    with pytest.raises(ValueError, match="euler: expected a trailing axis of size 3"):
        ori.euler_to_quat(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="q: expected a trailing axis of size 4"):
        ori.quat_to_euler(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="q: quaternions must have unit norm"):
        ori.quat_to_matrix([[1.0, 0.1, 0, 0]])
    with pytest.raises(ValueError, match="q2: contains 1 non-finite"):
        ori.misorientation_angle(quats[0], [np.nan, 0, 0, 1], "cubic")
    with pytest.raises(ValueError, match="euler: contains"):
        ori.euler_to_quat([0.0, np.inf, 0.0])
    with pytest.raises(ValueError, match="m: expected trailing axes"):
        ori.matrix_to_quat(np.eye(4))
    with pytest.raises(ValueError, match="m: expected proper rotation"):
        ori.matrix_to_quat(np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="axis: rotation axes must be non-zero"):
        ori.axis_angle_to_quat([0.0, 0, 0], 1.0)
    with pytest.raises(ValueError, match="direction"):
        ori.ipf_color(quats, "cubic", direction=(0.0, 0, 0))
    # Within the tolerance the input is accepted; inside jit the value checks are skipped.
    ori.quat_to_matrix([[1.0 + 5e-4, 0, 0, 0]])
    out = jax.jit(ori.quat_to_euler)(jnp.array([[np.nan, 0, 0, 1.0]]))
    assert np.isnan(out).any()


def test_one_symmetry_check_everywhere():
    # Every symmetry argument goes through orientations.check_symmetry: one list of names, one
    # message for an unknown name, and a distinct one for a known name a function does not support.
    from jaxmicro import harmonics
    from jaxmicro.io.ebsd import SYMMETRIES as EBSD_SYMMETRIES
    from jaxmicro.io.ebsd import Phase

    assert EBSD_SYMMETRIES is ori.SYMMETRIES
    calls = [
        lambda s: ori.to_fundamental_zone(np.array([1.0, 0, 0, 0]), s),
        lambda s: ori.ipf_color(np.array([1.0, 0, 0, 0]), s),
        lambda s: harmonics.shsh(np.array([1.0, 0, 0, 0]), s),
        lambda s: harmonics.rogsh(np.zeros(3), s),
        lambda s: Phase.from_symmetry("x", s),
    ]
    messages = set()
    for call in calls:
        with pytest.raises(ValueError, match="symmetry: unknown value 'icosahedral'") as err:
            call("icosahedral")
        messages.add(str(err.value))
    assert len(messages) == 1
    with pytest.raises(ValueError, match="'monoclinic' is not supported here"):
        ori.ipf_color(np.array([1.0, 0, 0, 0]), "monoclinic")
    with pytest.raises(ValueError, match="'tetragonal' is not supported here"):
        harmonics.rogsh(np.zeros(3), "tetragonal")
