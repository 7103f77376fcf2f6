"""``checked(fn)``: the value checks that a transformation skips run on device and raise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmicro import descriptors, orientations
from jaxmicro.checks import checked

GOOD = jnp.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
OFF_NORM = jnp.array([[1.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])


def test_checks_are_skipped_under_jit_and_vmap_without_checked():
    # The documented gap: an invalid quaternion passes through a transformation unnoticed.
    out = jax.jit(jax.vmap(orientations.quat_to_euler))(OFF_NORM)
    assert out.shape == (2, 3)
    with pytest.raises(ValueError, match="q: quaternions must have unit norm"):
        orientations.quat_to_euler(OFF_NORM)  # a plain call checks


def test_checked_raises_the_named_error_inside_vmap_and_matches_valid_results():
    f = checked(jax.vmap(orientations.quat_to_euler))
    np.testing.assert_allclose(f(GOOD), orientations.quat_to_euler(GOOD), atol=1e-6)
    with pytest.raises(ValueError, match=r"^q: quaternions must have unit norm \(tolerance"):
        f(OFF_NORM)
    with pytest.raises(ValueError, match="^q: contains non-finite"):
        f(GOOD.at[0, 1].set(jnp.nan))
    np.testing.assert_allclose(f(GOOD), orientations.quat_to_euler(GOOD), atol=1e-6)  # cached


def test_checked_under_grad_and_range_checks():
    def loss(euler):
        return jnp.sum(orientations.euler_to_quat(euler) ** 2)

    g = checked(jax.grad(loss))
    np.testing.assert_allclose(g(jnp.ones((3, 3))), jax.grad(loss)(jnp.ones((3, 3))), atol=1e-6)
    with pytest.raises(ValueError, match="^euler: contains non-finite"):
        g(jnp.full((3, 3), jnp.inf))
    lineal = checked(lambda p: descriptors.lineal_path(p, axis=0, max_length=4))
    field = jnp.zeros((8, 8, 1)).at[:4].set(1.0)
    expected = descriptors.lineal_path(field, axis=0, max_length=4)
    np.testing.assert_allclose(lineal(field), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"^phase: values must lie in \[0.0, 1.0\]"):
        lineal(field * 3)
