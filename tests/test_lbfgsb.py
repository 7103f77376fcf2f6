"""L-BFGS-B in JAX: agreement with SciPy, exact evaluation counts, bounds, jit, vmap, dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jaxmicro.reconstruct.lbfgsb import STATUS, _compact_form, minimize_lbfgsb

# Module fixtures are built once (--dist loadfile: a module runs on one worker); a long unit.
pytestmark = pytest.mark.heavy


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def quadratic_problem(n=12, seed=0):
    """A convex quadratic whose minimizer over [-1, 1]^n has active bounds (unique)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    h = a @ a.T / n + 0.1 * np.eye(n)
    b = 3.0 * rng.normal(size=n)
    return h, b, (lambda x: 0.5 * x @ (jnp.asarray(h, x.dtype) @ x) - jnp.asarray(b, x.dtype) @ x)


def scipy_minimum(fun, x0, bounds, callback=None, **options):
    value_and_grad = jax.jit(jax.value_and_grad(fun))

    def fg(v):
        f, g = value_and_grad(jnp.asarray(v))
        return float(f), np.asarray(g, np.float64)

    return scipy.optimize.minimize(
        fg,
        np.asarray(x0, np.float64),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        callback=callback,
        options=options,
    )


# One compiled solver per kind of problem, shared by the tests below (compiling the L-BFGS-B
# while_loop costs seconds; running it, milliseconds): Rosenbrock in 5 variables without bounds
# (no Cauchy search), and over a box whose bounds are traced arguments, finite or not.
X0 = jnp.array([-1.2, 1.0, -1.2, 1.0, 0.5])


def boxed_rosenbrock(x, lower, upper):
    return minimize_lbfgsb(rosenbrock, x, lower, upper, max_iter=100)


@pytest.fixture(scope="module")
def free():
    return jax.jit(lambda x: minimize_lbfgsb(rosenbrock, x, max_iter=100))


@pytest.fixture(scope="module")
def boxed():
    return jax.jit(boxed_rosenbrock)


@pytest.mark.parametrize("upper", [None, 0.8])
def test_rosenbrock_follows_scipy_step_for_step(upper, free, boxed):
    """Same algorithm as SciPy's L-BFGS-B: the same loss after every iteration, line-search
    backtracks included, and the same evaluation and iteration counts."""
    bounds = None if upper is None else [(-2.0, upper)] * 5
    losses = []
    ref = scipy_minimum(
        rosenbrock, X0, bounds, callback=lambda xk: losses.append(float(rosenbrock(xk)))
    )
    r = free(X0) if upper is None else boxed(X0, jnp.full(5, -2.0), jnp.full(5, upper))
    assert (int(r.n_iterations), int(r.n_evaluations)) == (ref.nit, ref.nfev)
    # atol: at the last iterates (loss ~1e-9) the two implementations' rounding differs by ~1e-15
    np.testing.assert_allclose(r.history[: ref.nit], losses, rtol=1e-6, atol=1e-14)
    np.testing.assert_allclose(r.x, ref.x, atol=1e-8)
    assert STATUS[int(r.status)] == "converged: relative reduction <= ftol"
    assert r.history.shape == (100,) and np.all(np.diff(np.asarray(r.history)) <= 0)
    np.testing.assert_array_equal(r.history[ref.nit :], r.value)  # padded with the final value
    np.testing.assert_allclose(r.value, rosenbrock(r.x), rtol=1e-8)
    if upper is None:
        np.testing.assert_allclose(r.x, np.ones(5), atol=1e-4)


def test_bound_constrained_quadratic_matches_scipy_and_kkt():
    h, b, fun = quadratic_problem()
    solve = jax.jit(lambda x: minimize_lbfgsb(fun, x, -1.0, 1.0, max_iter=100, gtol=1e-10, ftol=0))
    r = solve(jnp.zeros(12))
    ref = scipy_minimum(fun, np.zeros(12), [(-1, 1)] * 12, gtol=1e-10, ftol=0.0)
    x = np.asarray(r.x)
    np.testing.assert_allclose(x, ref.x, atol=1e-8)
    assert abs(int(r.n_evaluations) - ref.nfev) <= 3
    # KKT: zero gradient on free variables, outward gradient at the active bounds.
    g = h @ x - b
    at_low, at_up = x <= -1 + 1e-9, x >= 1 - 1e-9
    assert at_low.any() and at_up.any() and (~at_low & ~at_up).any()
    np.testing.assert_allclose(g[~at_low & ~at_up], 0.0, atol=1e-8)
    assert np.all(g[at_low] > 0) and np.all(g[at_up] < 0)


def counted(fun, log):
    """``fun`` that appends its argument to ``log`` on every (forward) evaluation."""

    def wrapped(x):
        jax.debug.callback(lambda v: log.append(np.asarray(v)), x)
        return fun(x)

    return wrapped


def test_evaluations_are_counted_exactly_and_stay_in_bounds():
    lower = jnp.array([-1.0, -0.5, -jnp.inf, 0.0, -1.0, -1.0])
    upper = jnp.array([1.0, 0.2, 0.3, jnp.inf, 1.0, 0.0])
    log = []
    run = jax.jit(
        lambda x: minimize_lbfgsb(
            counted(rosenbrock, log), x, lower, upper, max_iter=12, max_evals=14, gtol=0, ftol=0
        )
    )
    # From 5.0 (outside the box, projected first) 12 iterations take 13 evaluations; from 0.1
    # they would take 15, so the budget of 14 stops that run first (one compiled program).
    for start, reason in ((5.0, "max_iter reached"), (0.1, "max_evals reached")):
        log.clear()
        r = jax.block_until_ready(run(jnp.full(6, start)))
        assert int(r.n_evaluations) == len(log)
        visited = np.stack([*log, np.asarray(r.x)])
        assert np.all(visited >= np.asarray(lower)) and np.all(visited <= np.asarray(upper))
        assert STATUS[int(r.status)] == reason
        if reason == "max_iter reached":
            assert int(r.n_iterations) == 12 and len(log) < 14
        else:
            assert len(log) == 14 and int(r.n_iterations) < 12
    assert run._cache_size() == 1


def test_jit_equals_eager_and_vmap_equals_loop(boxed):
    lower, upper = jnp.full(5, -2.0), jnp.full(5, 0.9)
    starts = jax.random.uniform(jax.random.key(0), (3, 5), minval=-1.0, maxval=1.0)
    eager, jitted = boxed_rosenbrock(starts[0], lower, upper), boxed(starts[0], lower, upper)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # Members stop at different iterations; the batched loop runs until the last has stopped.
    batched = jax.jit(jax.vmap(boxed_rosenbrock, in_axes=(0, None, None)))(starts, lower, upper)
    for i in range(3):
        single = boxed(starts[i], lower, upper)
        # Batched products round differently; some tens of iterations amplify that to ~1e-8.
        np.testing.assert_allclose(batched.x[i], single.x, rtol=1e-5, atol=1e-6)
        assert int(batched.n_evaluations[i]) == int(single.n_evaluations)
        assert int(batched.n_iterations[i]) == int(single.n_iterations)
    assert len(set(np.asarray(batched.n_iterations).tolist())) > 1


def test_infinite_bounds_equal_no_bounds(free, boxed):
    """The Cauchy search with every breakpoint at infinity reduces to the unbounded step."""
    x0 = jnp.array([-1.2, 1.0, 0.3, 0.8, -0.5])
    inf = jnp.full(5, jnp.inf)
    unbounded, infinite = free(x0), boxed(x0, -inf, inf)
    np.testing.assert_allclose(infinite.x, unbounded.x, rtol=1e-8)
    np.testing.assert_allclose(infinite.history, unbounded.history, rtol=1e-8)
    assert int(infinite.n_evaluations) == int(unbounded.n_evaluations)
    assert int(infinite.n_iterations) == int(unbounded.n_iterations) > 20


def test_float32_and_pytrees():
    """A pytree of float32 arrays of any shape, with bounds per leaf (scalar, broadcast, full),
    solved in float32 to SciPy's float64 minimizer of the flattened problem."""
    h, b, fun = quadratic_problem()
    tree0 = {"a": jnp.zeros((2, 3), jnp.float32), "b": jnp.zeros(6, jnp.float32)}
    tree_fun = lambda t: fun(jnp.concatenate([t["a"].ravel(), t["b"]]))  # noqa: E731
    b_low, b_up = np.array([-0.5, -1, -0.5, -1, -0.5, -1]), np.array([1, 0.5, 1, 0.5, 1, 0.5])
    lower = {"a": -1.0, "b": jnp.asarray(b_low)}
    upper = {"a": jnp.ones(3), "b": jnp.asarray(b_up)}
    r = jax.jit(lambda t: minimize_lbfgsb(tree_fun, t, lower, upper, max_iter=100))(tree0)
    assert r.x["a"].shape == (2, 3) and r.grad["b"].shape == (6,)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves((r.x, r.grad, r.value)))
    bounds = list(zip(np.r_[-np.ones(6), b_low], np.r_[np.ones(6), b_up], strict=True))
    ref = scipy_minimum(fun, np.zeros(12), bounds, gtol=1e-10, ftol=0.0)
    assert np.sum(np.abs(ref.x[6:]) == 0.5) == 3  # the leaf's own bounds are active
    np.testing.assert_allclose(jnp.concatenate([r.x["a"].ravel(), r.x["b"]]), ref.x, atol=2e-3)


def test_compact_form_equals_the_bfgs_recursion():
    """theta I - W M W^T is B after BFGS updates of theta I, in order (Byrd et al. 1994)."""
    rng = np.random.default_rng(3)
    n, m, theta = 7, 4, 1.7
    a = rng.normal(size=(n, n))
    h = a @ a.T + np.eye(n)
    s = rng.normal(size=(3, n))
    y = s @ h  # three curvature pairs of a convex quadratic
    buffer = np.zeros((2 * m, n))  # rows y_1..y_m, s_1..s_m
    for k, slot in enumerate([2, 0, 3]):  # ring slots of pairs 0, 1, 2
        buffer[slot], buffer[m + slot] = y[k], s[k]
    stamp = jnp.array([1, -1, 0, 2])
    scale, mid = _compact_form(jnp.asarray(buffer @ buffer.T), stamp, jnp.asarray(theta))
    w = np.asarray(scale)[:, None] * buffer
    compact = theta * np.eye(n) - w.T @ np.asarray(mid) @ w
    b_mat = theta * np.eye(n)
    for k in range(3):
        bs = b_mat @ s[k]
        b_mat = b_mat - np.outer(bs, bs) / (s[k] @ bs) + np.outer(y[k], y[k]) / (y[k] @ s[k])
    np.testing.assert_allclose(compact, b_mat, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_iter": -1}, "max_iter"),
        ({"memory": 0}, "memory"),
        ({"max_evals": 0}, "max_evals"),
        ({"lower": 1.0, "upper": 0.0}, "lower, upper"),
        ({"x0": jnp.zeros(3, jnp.int32)}, "x0"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = {"x0": jnp.zeros(3), **kwargs}
    with pytest.raises(ValueError, match=match):
        minimize_lbfgsb(rosenbrock, **args)


# The 'lbfgsb' reconstruction optimizer against jaxopt's: tests/test_reconstruct.py
# (test_lbfgsb_beats_jaxopt_at_equal_evaluations).
