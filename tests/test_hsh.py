"""Tests of jaxmicro.harmonics.hsh: real hyperspherical harmonics."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import special

from jaxmicro.harmonics import hsh, hsh_index

VOLUME = 2 * np.pi**2  # measure of S^3


def s3_quadrature(max_degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 4), weights (N,) integrating polynomials of degree <= max_degree on S^3 exactly.

    q = (cos psi, sin psi u), u on S^2: Gauss-Chebyshev (second kind) in x = cos psi for the
    weight sin^2 psi dpsi = sqrt(1 - x^2) dx, times Gauss-Legendre in cos(theta) and the
    trapezoid rule in phi. Terms odd in u integrate to zero exactly on the S^2 rule, and the
    remaining ones are polynomials in x of degree <= max_degree.
    """
    n_psi = max_degree // 2 + 1
    k = np.arange(1, n_psi + 1)
    x = np.cos(k * np.pi / (n_psi + 1))
    w_x = np.pi / (n_psi + 1) * np.sin(k * np.pi / (n_psi + 1)) ** 2
    ct, w_t = np.polynomial.legendre.leggauss(max_degree // 2 + 1)
    n_phi = max_degree + 1
    phi = 2 * np.pi * np.arange(n_phi) / n_phi
    X, CT, PHI = np.meshgrid(x, ct, phi, indexing="ij")
    S, ST = np.sqrt(1 - X**2), np.sqrt(1 - CT**2)
    q = np.stack([X, S * ST * np.cos(PHI), S * ST * np.sin(PHI), S * CT], axis=-1)
    w = w_x[:, None, None] * w_t[None, :, None] * np.full(n_phi, 2 * np.pi / n_phi)
    return q.reshape(-1, 4), w.reshape(-1)


def random_unit(seed: int, n: int, dtype=np.float64) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return (q / np.linalg.norm(q, axis=-1, keepdims=True)).astype(dtype)


def reference_hsh(q: np.ndarray, n: int) -> np.ndarray:
    """Angle form of Mason & Schuh (real convention) with scipy special functions."""
    omega = 2 * np.arccos(np.clip(q[:, 0], -1, 1))
    r = np.linalg.norm(q[:, 1:], axis=-1)
    theta, phi = np.arccos(q[:, 3] / r), np.arctan2(q[:, 2], q[:, 1])
    cols = []
    for l, m, sine in hsh_index(n):
        f = math.factorial
        norm = (2**l * f(l) / np.pi) * np.sqrt(
            (2 * l + 1) * f(l - m) * (n + 1) * f(n - l) / (f(l + m) * f(n + l + 1))
        )
        legendre = (-1) ** m * special.lpmv(m, l, np.cos(theta))  # lpmv has the C-S phase
        if sine:
            azimuth = np.sin(m * phi)
        else:
            azimuth = np.cos(m * phi) if m else np.full_like(phi, np.sqrt(0.5))
        radial = np.sin(omega / 2) ** l * special.eval_gegenbauer(n - l, l + 1, np.cos(omega / 2))
        cols.append(norm * radial * legendre * azimuth)
    return np.stack(cols, axis=-1)


def test_index_order_and_size():
    assert hsh_index(1) == ((0, 0, False), (1, 1, False), (1, 1, True), (1, 0, False))
    for n in range(6):
        assert len(hsh_index(n)) == (n + 1) ** 2
        assert hsh(random_unit(0, 3), n).shape == (3, (n + 1) ** 2)


def test_degree_zero_is_constant():
    out = hsh(random_unit(1, 5), 0)
    np.testing.assert_allclose(out, 1 / np.sqrt(VOLUME), rtol=1e-14)


def test_low_degree_closed_forms():
    q = random_unit(2, 7)
    q0, x, y, z = q.T
    np.testing.assert_allclose(hsh(q, 1), np.sqrt(2) / np.pi * q, rtol=1e-13)
    z2 = np.asarray(hsh(q, 2))
    labels = hsh_index(2)
    np.testing.assert_allclose(z2[:, 0], (4 * q0**2 - 1) / (np.sqrt(2) * np.pi), rtol=1e-13)
    c22, s22 = labels.index((2, 2, False)), labels.index((2, 2, True))
    np.testing.assert_allclose(z2[:, c22], np.sqrt(3) / np.pi * (x**2 - y**2), atol=1e-14)
    np.testing.assert_allclose(z2[:, s22], np.sqrt(3) / np.pi * 2 * x * y, atol=1e-14)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 12])
def test_matches_scipy_angle_form(n):
    q = random_unit(3, 50)
    np.testing.assert_allclose(hsh(q, n), reference_hsh(q, n), atol=1e-12)


def test_orthonormal_across_degrees_by_exact_quadrature():
    degrees = range(7)
    q, w = s3_quadrature(12)
    z = np.concatenate([np.asarray(hsh(q, n)) for n in degrees], axis=-1)
    gram = z.T @ (w[:, None] * z)
    np.testing.assert_allclose(gram, np.eye(z.shape[1]), atol=1e-12)
    assert np.isclose(w.sum(), VOLUME)


def test_orthonormal_degree_12_by_exact_quadrature():
    q, w = s3_quadrature(24)
    z = np.asarray(hsh(q, 12))
    np.testing.assert_allclose(z.T @ (w[:, None] * z), np.eye(169), atol=1e-11)


@pytest.mark.parametrize("n", [3, 8])
def test_addition_theorem_and_parity(n):
    q = random_unit(4, 20)
    z = np.asarray(hsh(q, n))
    # The sum of squares of an orthonormal basis of an SO(4)-invariant space is constant.
    np.testing.assert_allclose(np.sum(z**2, axis=-1), (n + 1) ** 2 / VOLUME, rtol=1e-12)
    np.testing.assert_allclose(hsh(-q, n), (-1) ** n * z, atol=1e-14)


def test_identity_and_vanishing_vector_part_are_regular():
    identity = np.array([1.0, 0.0, 0.0, 0.0])
    near = np.array([np.sqrt(1 - 3e-24), 1e-12, 1e-12, 1e-12])
    for n in (0, 4, 8):
        for q in (identity, near, -identity):
            assert np.all(np.isfinite(hsh(q, n)))
            grad = jax.jacfwd(lambda p, n=n: hsh(p, n))(jnp.asarray(q))
            assert np.all(np.isfinite(grad))
    # At q_v = 0 only the l = 0 harmonics survive: C^1_n(q0) / sqrt(h) = (n + 1) sqrt(2) / (2 pi).
    z = np.asarray(hsh(identity, 6))
    np.testing.assert_allclose(z[0], 7 * np.sqrt(2) / (2 * np.pi), rtol=1e-13)
    np.testing.assert_allclose(z[1:], 0.0, atol=1e-15)


IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "q, order, modes",
    [
        (np.array([0.3, -0.5, 0.7, 0.412310562561766]), 1, ("fwd", "rev")),
        # At the identity (vanishing vector part): first derivatives in both modes, second
        # derivatives forward over forward by default (1.4 s of compilation); every mixed and
        # reverse second-order program (6 s more) in the slow run.
        (IDENTITY, 1, ("fwd", "rev")),
        (IDENTITY, 2, ("fwd",)),
        pytest.param(IDENTITY, 2, ("fwd", "rev"), marks=pytest.mark.slow),
        (np.array([0.99999999, 1e-5, -2e-5, 1e-5]), 1, ("fwd", "rev")),
    ],
    ids=["generic", "identity", "identity-order2-fwd", "identity-order2", "near-identity"],
)
def test_gradients(q, order, modes):
    q = jnp.asarray(q / np.linalg.norm(q))
    check_grads(lambda p: hsh(p, 6), (q,), order=order, modes=modes, atol=1e-5, rtol=1e-5)


def test_jit_vmap_and_batch_shapes():
    q = random_unit(5, 12).reshape(3, 4, 4)
    eager = np.asarray(hsh(q, 8))
    jitted = jax.jit(hsh, static_argnames="degree")(q, degree=8)
    mapped = jax.vmap(lambda p: hsh(p, 8))(q.reshape(12, 4)).reshape(3, 4, 81)
    assert eager.shape == (3, 4, 81)
    np.testing.assert_allclose(jitted, eager, atol=1e-14)
    np.testing.assert_allclose(mapped, eager, atol=1e-14)


def test_float32_preserved_and_accurate():
    q = random_unit(6, 30)
    out32 = hsh(q.astype(np.float32), 8)
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(out32, hsh(q, 8), atol=2e-5)
    assert hsh(jnp.asarray(q, jnp.float64), 2).dtype == jnp.float64


def test_validation():
    q = random_unit(7, 2)
    with pytest.raises(ValueError, match="q: expected a trailing axis of size 4"):
        hsh(q[:, :3], 2)
    with pytest.raises(ValueError, match="q: contains 2 non-finite"):
        hsh(np.where(np.arange(4) == 0, np.nan, q), 2)
    with pytest.raises(ValueError, match="q: quaternions must have unit norm"):
        hsh(2 * q, 2)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="degree: expected a non-negative integer"):
            hsh(q, bad)
