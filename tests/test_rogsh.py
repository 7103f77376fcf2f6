"""Tests of the ROGSH bases (jaxmicro.harmonics.rogsh) against Bunge's GSH, and their inverses."""

from math import factorial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxmicro import orientations as ori
from jaxmicro.harmonics.rogsh import rogsh, rogsh_to_euler


def wigner_d(l, mp, m, beta):
    """Wigner's d^l_{mp, m}(beta) from his explicit sum (no division by sin beta)."""
    c, s = np.cos(beta / 2), np.sin(beta / 2)
    pre = np.sqrt(
        float(factorial(l + m) * factorial(l - m) * factorial(l + mp) * factorial(l - mp))
    )
    out = 0.0
    for k in range(max(0, m - mp), min(l + m, l - mp) + 1):
        den = factorial(l + m - k) * factorial(k) * factorial(l - mp - k) * factorial(k - m + mp)
        out = out + (-1) ** (k - m + mp) * pre / den * c ** (2 * l - 2 * k + m - mp) * s ** (
            2 * k - m + mp
        )
    return out


def bunge_t(l, m, n, euler):
    """Bunge's T_l^{mn} = e^{i m phi2} P_l^{mn}(Phi) e^{i n phi1}, P_l^{mn} = i^{n-m} d^l_{nm}."""
    p1, P, p2 = np.moveaxis(np.asarray(euler), -1, 0)
    return np.exp(1j * m * p2) * 1j ** (n - m) * wigner_d(l, n, m, P) * np.exp(1j * n * p1)


def random_euler(n, seed):
    q = ori.random_quats(jax.random.key(seed), (n,))
    return np.asarray(ori.quat_to_euler(q))


def invariant_space(l, symmetry, n=0):
    """Orthonormal coefficient vectors a_m (m = -l..l) with sum_m a_m T_l^{mn}(S g) invariant."""
    e = random_euler(40, 11)
    q = ori.euler_to_quat(e)
    ms = range(-l, l + 1)
    base = np.stack([bunge_t(l, m, n, e) for m in ms], -1)
    rows = []
    for s in ori.symmetry_quats(symmetry)[1:]:
        es = ori.quat_to_euler(ori.quat_multiply(s, q))
        rows.append(np.stack([bunge_t(l, m, n, es) for m in ms], -1) - base)
    _, sv, vh = np.linalg.svd(np.concatenate(rows))
    dim = int(np.sum(sv < 1e-9 * sv[0]))
    return vh.conj().T[:, len(sv) - dim :]


@pytest.fixture(scope="module")
def eulers():
    return random_euler(200, 0)


def test_hexagonal_matches_bunge(eulers):
    f = np.asarray(rogsh(eulers, "hexagonal"))
    np.testing.assert_allclose(f[:, 0], bunge_t(2, 0, 0, eulers).real, atol=1e-13)
    # Errata: the printed "Re T_2^{-1,1}" is Re T_2^{+1,1} (sample index n = +1).
    np.testing.assert_allclose(f[:, 1], bunge_t(2, 0, 1, eulers).real, atol=1e-13)
    np.testing.assert_allclose(f[:, 1], -bunge_t(2, 0, -1, eulers).real, atol=1e-13)
    t6 = (bunge_t(6, 6, 0, eulers) + bunge_t(6, -6, 0, eulers)) / np.sqrt(2)
    np.testing.assert_allclose(f[:, 2], t6.real, atol=1e-12)


def test_cubic_matches_bunge(eulers):
    f = np.asarray(rogsh(eulers, "cubic"))
    a4 = invariant_space(4, "cubic")
    assert a4.shape == (9, 1)
    a4 = a4[:, 0] / a4[4, 0] * np.sqrt(7 / 12)  # the unit invariant with a positive m = 0 weight
    np.testing.assert_allclose(a4[[0, 8]], np.sqrt(5 / 24), atol=1e-10)
    t4 = [sum(a4[m + 4] * bunge_t(4, m, n, eulers) for m in range(-4, 5)) for n in (-4, 0)]
    np.testing.assert_allclose(f[:, 0], t4[0].real, atol=1e-12)
    np.testing.assert_allclose(f[:, 1], t4[1].real, atol=1e-12)
    # T_12^{0,2}: a unit vector of the 2-dimensional cubic l = 12 invariant space.
    basis = np.stack([bunge_t(12, m, 0, eulers) for m in range(-12, 13)], -1)
    coef, *_ = np.linalg.lstsq(basis, f[:, 2].astype(complex), rcond=None)
    np.testing.assert_allclose(basis @ coef, f[:, 2], atol=1e-11)
    a12 = invariant_space(12, "cubic")
    assert a12.shape[1] == 2
    np.testing.assert_allclose(np.linalg.norm(coef), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(a12 @ (a12.conj().T @ coef) - coef), 0, atol=1e-9)


@pytest.mark.parametrize("sym", ["hexagonal", "cubic"])
def test_invariant_under_symmetry_and_equivalent_triplets(eulers, sym):
    f = rogsh(eulers, sym)
    q = ori.euler_to_quat(eulers)
    s = ori.symmetry_quats(sym)
    moved = ori.quat_to_euler(ori.quat_multiply(s[:, None], q[None]))  # (n_sym, 200, 3)
    np.testing.assert_allclose(rogsh(moved, sym), np.broadcast_to(f, moved.shape), atol=1e-10)
    p1, P, p2 = eulers.T
    same = [
        np.stack([p1 + np.pi, -P, p2 + np.pi], -1),
        np.stack([p1 - 2 * np.pi, P + 2 * np.pi, p2 + 4 * np.pi], -1),
    ]
    for e in same:
        np.testing.assert_allclose(rogsh(e, sym), f, atol=1e-10)


@pytest.mark.parametrize(
    ("sym", "transform"),
    [
        ("hexagonal", lambda p1, P, p2: (np.pi - p1, P, p2)),
        ("hexagonal", lambda p1, P, p2: (p1, P, -p2)),
        ("cubic", lambda p1, P, p2: (p1 + np.pi / 2, P, p2)),
        ("cubic", lambda p1, P, p2: (-p1, P, -p2)),
    ],
)
def test_extra_invariances_make_the_map_many_to_one(eulers, sym, transform):
    other = np.stack(transform(*eulers.T), -1)
    np.testing.assert_allclose(rogsh(other, sym), rogsh(eulers, sym), atol=1e-12)
    angle = ori.misorientation_angle(ori.euler_to_quat(eulers), ori.euler_to_quat(other), sym)
    assert np.median(np.degrees(angle)) > 5  # genuinely different orientations


def test_hexagonal_inverse_round_trip(eulers):
    f = rogsh(eulers, "hexagonal")
    back = rogsh_to_euler(f, "hexagonal")
    np.testing.assert_allclose(rogsh(back, "hexagonal"), f, atol=1e-12)
    assert np.all((back[:, 1] >= 0) & (back[:, 1] <= np.pi / 2 + 1e-15))
    # The result is one of the four orientation classes sharing the coefficients.
    p1, P, p2 = eulers.T
    classes = [(p1, P, p2), (np.pi - p1, P, p2), (p1, P, -p2), (np.pi - p1, P, -p2)]
    qb = ori.euler_to_quat(back)
    angles = [
        ori.misorientation_angle(ori.euler_to_quat(np.stack(c, -1)), qb, "hexagonal")
        for c in classes
    ]
    assert np.max(np.min(angles, axis=0)) < 1e-6


def test_cubic_inverse_round_trip_statistics():
    # Tolerance: coefficient residual below 1e-12 for every orientation (measured: max 3e-14
    # over 10^4 random orientations, docs/orientations.md). The recovered orientation is one of
    # the (typically 16) classes sharing the coefficients, so it is not compared with the input.
    e = random_euler(400, 3)
    f = rogsh(e, "cubic")
    back = rogsh_to_euler(f, "cubic")
    residual = np.abs(np.asarray(rogsh(back, "cubic")) - np.asarray(f)).max(-1)
    assert residual.max() < 1e-12
    assert np.all(np.isfinite(back))
    assert np.all((back >= 0) & (back < 2 * np.pi))


def test_inverse_of_invalid_coefficients_is_finite():
    rng = np.random.default_rng(4)
    for sym in ("hexagonal", "cubic"):
        c = rng.uniform(-1, 1, size=(50, 3))
        back = rogsh_to_euler(c, sym)
        assert np.all(np.isfinite(back))
        assert np.all((back >= 0) & (back < 2 * np.pi))


def test_check_grads(eulers):
    for sym in ("hexagonal", "cubic"):
        f = jax.jit(lambda e, sym=sym: rogsh(e, sym))
        check_grads(f, (jnp.asarray(eulers[:4]),), order=1, modes=("fwd", "rev"))


def test_jit_eager_and_dtypes(eulers):
    for sym in ("hexagonal", "cubic"):
        f = rogsh(eulers[:16], sym)
        jit_f = jax.jit(rogsh, static_argnames="symmetry")(eulers[:16], symmetry=sym)
        np.testing.assert_allclose(jit_f, f, atol=1e-14)
        inv = jax.jit(rogsh_to_euler, static_argnames="symmetry")
        np.testing.assert_allclose(inv(f, symmetry=sym), rogsh_to_euler(f, sym), atol=1e-12)
        f32 = rogsh(eulers[:16].astype(np.float32), sym)
        assert f32.dtype == jnp.float32
        np.testing.assert_allclose(f32, f, atol=2e-4)  # float32 cancellation in the l = 12 term
        back32 = rogsh_to_euler(f32, sym)
        assert back32.dtype == jnp.float32
        np.testing.assert_allclose(rogsh(back32, sym), f32, atol=2e-3)


def test_validation_errors():
    with pytest.raises(ValueError, match="symmetry"):
        rogsh(np.zeros(3), "tetragonal")
    with pytest.raises(ValueError, match="symmetry"):
        rogsh_to_euler(np.zeros(3), "orthorhombic")
    with pytest.raises(ValueError, match="euler: expected a trailing axis of size 3"):
        rogsh(np.zeros((2, 4)), "cubic")
    with pytest.raises(ValueError, match="c: contains 1 non-finite"):
        rogsh_to_euler([0.1, np.nan, 0.2], "cubic")
