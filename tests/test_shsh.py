"""Tests of jaxmicro.harmonics.shsh and shsh_to_quat: symmetrized HSH and their inverse."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from test_hsh import VOLUME, random_unit, s3_quadrature

from jaxmicro.harmonics import hsh, shsh, shsh_basis, shsh_dim, shsh_size, shsh_to_quat
from jaxmicro.harmonics.hsh import hsh_polynomial
from jaxmicro.orientations import (
    SYMMETRIES,
    misorientation_angle,
    quat_multiply,
    random_quats,
    symmetry_quats,
    to_fundamental_zone,
)


def character_count(symmetry: str, degree: int) -> int:
    """(n + 1) x multiplicity of the trivial representation of the group in D^{n/2}.

    The character of D^j at rotation angle a is sin((2j + 1) a / 2) / sin(a / 2) (2j + 1 at a = 0).
    """
    if degree % 2:
        return 0
    j = degree // 2
    s = np.asarray(symmetry_quats(symmetry, jnp.float64))
    angles = 2 * np.arccos(np.clip(np.abs(s[:, 0]), 0, 1))
    small = angles < 1e-9
    safe = np.where(small, 1.0, angles)
    chars = np.where(small, 2 * j + 1, np.sin((2 * j + 1) * safe / 2) / np.sin(safe / 2))
    return (degree + 1) * int(round(chars.mean()))


def test_dimensions_match_published_cubic_counts():
    # mcr-shsh: 9 functions at degree 8; representation theory for the rest.
    expected = {0: 1, 2: 0, 4: 0, 6: 0, 8: 9, 10: 0, 12: 13}
    assert {n: shsh_dim("cubic", n) for n in expected} == expected
    assert [shsh_dim("hexagonal", n) for n in range(0, 16, 2)] == [1, 0, 5, 0, 9, 0, 26, 15]
    assert shsh_dim("cubic", 7) == 0
    assert shsh_size("cubic", (4, 8, 12)) == 22


@pytest.mark.parametrize("symmetry", SYMMETRIES)
def test_dimensions_match_character_formula(symmetry):
    for n in range(0, 11):
        assert shsh_dim(symmetry, n) == character_count(symmetry, n), n


@pytest.mark.slow
def test_high_degree_cubic_dimensions():
    expected = {14: 0, 16: 17, 18: 19, 20: 21, 22: 0, 24: 50}
    assert {n: shsh_dim("cubic", n) for n in expected} == expected


@pytest.mark.parametrize("symmetry", SYMMETRIES)
def test_invariant_under_every_symmetry_element_and_antipode(symmetry):
    degrees = tuple(n for n in (2, 4, 8) if shsh_dim(symmetry, n))
    q = jnp.asarray(random_unit(10, 8))
    s = symmetry_quats(symmetry, jnp.float64)
    images = jnp.concatenate([quat_multiply(s[:, None, :], q[None]), -q[None]])  # (g + 1, 8, 4)
    f = np.asarray(shsh(jnp.concatenate([q[None], images]), symmetry, degrees))
    np.testing.assert_allclose(f[1:], np.broadcast_to(f[0], f[1:].shape), atol=1e-10)


def test_not_invariant_under_other_rotations():
    # A generic rotation (and sample-side symmetry q -> q * s) changes the cubic features.
    q = random_unit(11, 8)
    s = symmetry_quats("cubic", jnp.float64)[1]
    ref = np.asarray(shsh(q, "cubic"))
    assert np.max(np.abs(shsh(quat_multiply(jnp.asarray(q), s), "cubic") - ref)) > 1e-2


def test_basis_orthonormal_and_equal_to_independent_projector():
    # Projector from quadrature inner products <Z_i(s q), Z_j(q)>, not from least squares.
    n = 8
    q, w = s3_quadrature(2 * n)
    z = np.asarray(hsh(q, n))
    s = symmetry_quats("cubic", jnp.float64)
    proj = np.zeros((81, 81))
    for si in s:
        zs = np.asarray(hsh(quat_multiply(si, jnp.asarray(q)), n))
        proj += zs.T @ (w[:, None] * z) / len(s)
    basis = shsh_basis("cubic", n)
    np.testing.assert_allclose(basis.T @ basis, np.eye(9), atol=1e-13)
    np.testing.assert_allclose(basis @ basis.T, proj, atol=1e-12)
    assert not basis.flags.writeable


def test_features_orthonormal_by_exact_quadrature():
    q, w = s3_quadrature(24)
    f = np.asarray(shsh(q, "cubic", (0, 8, 12)))
    np.testing.assert_allclose(f.T @ (w[:, None] * f), np.eye(23), atol=1e-12)


@pytest.mark.parametrize("symmetry, degree", [("cubic", 8), ("hexagonal", 12), ("cubic", 12)])
def test_sum_of_squares_is_constant(symmetry, degree):
    # The SHSH of one degree span (invariant vector) x D^j, a space invariant under q -> q * r,
    # so the sum of squares of the orthonormal basis is dim / vol(S^3) everywhere.
    f = np.asarray(shsh(random_unit(12, 20), symmetry, (degree,)))
    np.testing.assert_allclose(np.sum(f**2, -1), f.shape[-1] / VOLUME, rtol=1e-12)


@pytest.mark.parametrize(
    "q", [np.array([0.3, -0.5, 0.7, 0.412310562561766]), np.array([1.0, 1e-7, 0.0, -1e-7])]
)
def test_gradients(q):
    q = jnp.asarray(q / np.linalg.norm(q))
    check_grads(
        lambda p: shsh(p, "cubic"), (q,), order=1, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5
    )


def test_jit_equals_eager_and_float32():
    q = random_unit(13, 6)
    eager = np.asarray(shsh(q, "hexagonal", (4, 12)))
    jitted = jax.jit(shsh, static_argnames=("symmetry", "degrees"))(
        q, symmetry="hexagonal", degrees=(4, 12)
    )
    np.testing.assert_allclose(jitted, eager, atol=1e-14)
    out32 = shsh(q.astype(np.float32), "hexagonal", (4, 12))
    assert out32.dtype == jnp.float32 and out32.shape == (6, 31)
    np.testing.assert_allclose(out32, eager, atol=2e-5)


def test_validation():
    q = random_unit(14, 2)
    with pytest.raises(ValueError, match="symmetry: unknown value 'cubicc'"):
        shsh(q, "cubicc")
    with pytest.raises(ValueError, match="degrees: degree 7 is odd"):
        shsh(q, "cubic", (7,))
    with pytest.raises(ValueError, match="degrees: .* give no symmetrized harmonics"):
        shsh(q, "cubic", (4, 6))
    with pytest.raises(ValueError, match="degrees: expected a non-empty"):
        shsh(q, "cubic", ())
    with pytest.raises(ValueError, match="q: expected a trailing axis of size 4"):
        shsh(q[:, :3], "cubic")
    with pytest.raises(ValueError, match="q: contains"):
        shsh(q * np.nan, "cubic")
    with pytest.raises(ValueError, match="q: quaternions must have unit norm"):
        shsh(0.5 * q, "cubic")
    with pytest.raises(ValueError, match="features: expected a trailing axis of size 9"):
        shsh_to_quat(np.zeros((2, 8)), "cubic")
    with pytest.raises(ValueError, match="features: contains"):
        shsh_to_quat(np.full((2, 9), np.nan), "cubic")


def test_round_trip_cubic_degree_8():
    """Every orientation is recovered: misorientation below 1e-5 rad (acos resolution ~1e-7)."""
    q = random_quats(jax.random.key(0), (200,))
    f = shsh(q, "cubic").reshape(2, 100, 9)
    back = shsh_to_quat(f, "cubic", database_size=10_000)
    assert back.shape == (2, 100, 4)
    angle = np.asarray(misorientation_angle(q, back.reshape(200, 4), "cubic"))
    assert np.max(angle) < 1e-5
    np.testing.assert_allclose(to_fundamental_zone(back, "cubic"), back, atol=1e-12)
    np.testing.assert_allclose(shsh(back.reshape(200, 4), "cubic"), f.reshape(200, 9), atol=1e-9)


def test_hexagonal_low_degrees_only_fix_the_c_axis():
    # Degrees 4 and 8 hold zonal harmonics only (invariant under any rotation about c), so they
    # cannot tell q from r q for a rotation r about c; degree 12 (m = 6 terms) can.
    q = jnp.asarray(random_unit(15, 10))
    r = jnp.asarray([np.cos(0.15), 0.0, 0.0, np.sin(0.15)])
    rq = quat_multiply(r, q)
    np.testing.assert_allclose(
        shsh(rq, "hexagonal", (4, 8)), shsh(q, "hexagonal", (4, 8)), atol=1e-12
    )
    assert np.max(np.abs(shsh(rq, "hexagonal", (12,)) - shsh(q, "hexagonal", (12,)))) > 1e-2


@pytest.mark.parametrize(
    "symmetry, degrees",
    [("cubic", (0, 8, 12)), ("hexagonal", (4, 12)), ("triclinic", (2,)), ("orthorhombic", (4,))],
)
def test_monomial_evaluation_equals_hsh_recurrence(symmetry, degrees):
    # shsh evaluates fitted monomial coefficients; the definition is the HSH recurrence @ basis.
    q = random_unit(16, 50)
    ref = np.concatenate(
        [
            hsh_polynomial(q, n, np) @ shsh_basis(symmetry, n)
            for n in degrees
            if shsh_dim(symmetry, n)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(shsh(q, symmetry, degrees), ref, atol=1e-12)
    out32 = shsh(q.astype(np.float32), symmetry, degrees)
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(out32, ref, atol=1e-5)


def test_homogeneous_extension_and_gradients_match_recurrence():
    # Off S^3 the features are the homogeneous degree-8 polynomial: shsh(c q) = c^8 shsh(q).
    q = jnp.asarray(random_unit(17, 4))
    f = np.asarray(shsh(q, "cubic"))
    scaled = jax.jit(lambda p: shsh(p, "cubic"))(1.1 * q)
    np.testing.assert_allclose(scaled, 1.1**8 * f, rtol=1e-12)
    # On S^3 (normalized input) the Jacobian equals the recurrence's, and the custom JVP holds
    # to second order.
    basis = jnp.asarray(shsh_basis("cubic", 8))

    def via_recurrence(p):
        return hsh_polynomial(p / jnp.linalg.norm(p), 8, jnp) @ basis

    def via_monomials(p):
        return shsh(p / jnp.linalg.norm(p), "cubic")

    # Jitted and mapped over the points: eager Jacobians of the recurrence dispatch thousands of
    # operations.
    monomial_jacobians = jax.jit(jax.vmap(jax.jacrev(via_monomials)))(q)
    recurrence_jacobians = jax.jit(jax.vmap(jax.jacfwd(via_recurrence)))(q)
    assert monomial_jacobians.shape == (4, 9, 4)
    np.testing.assert_allclose(monomial_jacobians, recurrence_jacobians, atol=1e-12)
    # Second order forward here (first order in both modes: test_gradients); the reverse and
    # mixed second-order programs, which only transpose these rules, in the slow run below.
    check_grads(lambda p: shsh(p, "cubic"), (q[0],), order=2, modes=("fwd",))


@pytest.mark.slow  # compiles the four second-order programs (3 s)
def test_custom_jvp_holds_to_second_order_in_both_modes():
    q = jnp.asarray(random_unit(17, 1))[0]
    check_grads(lambda p: shsh(p, "cubic"), (q,), order=2, modes=("fwd", "rev"))
