"""L-BFGS-B in JAX: agreement with SciPy, exact evaluation counts, bounds, jit, vmap, dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jaxmicro.reconstruct.lbfgsb import STATUS, _compact_form, minimize_lbfgsb


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


@pytest.mark.parametrize("upper", [None, 0.8])
def test_rosenbrock_follows_scipy_step_for_step(upper):
    """Same algorithm as SciPy's L-BFGS-B: the same loss after every iteration, line-search
    backtracks included, and the same evaluation and iteration counts."""
    x0 = jnp.array([-1.2, 1.0, -1.2, 1.0, 0.5])
    bounds = None if upper is None else [(-2.0, upper)] * 5
    losses = []
    ref = scipy_minimum(
        rosenbrock, x0, bounds, callback=lambda xk: losses.append(float(rosenbrock(xk)))
    )
    lo, hi = (None, None) if upper is None else (-2.0, upper)
    r = jax.jit(lambda x: minimize_lbfgsb(rosenbrock, x, lo, hi, max_iter=100))(x0)
    assert (int(r.n_iterations), int(r.n_evaluations)) == (ref.nit, ref.nfev)
    np.testing.assert_allclose(r.history[: ref.nit], losses, rtol=1e-6)
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
    for max_evals, start in ((None, 0.1), (7, 5.0)):  # 5.0: outside the box, projected first
        log = []
        run = jax.jit(
            lambda x, n=max_evals, log=log: minimize_lbfgsb(
                counted(rosenbrock, log), x, lower, upper, max_iter=12, max_evals=n, gtol=0, ftol=0
            )
        )
        r = jax.block_until_ready(run(jnp.full(6, start)))
        assert int(r.n_evaluations) == len(log)
        visited = np.stack([*log, np.asarray(r.x)])
        assert np.all(visited >= np.asarray(lower)) and np.all(visited <= np.asarray(upper))
        if max_evals is None:
            assert int(r.n_iterations) == 12 and STATUS[int(r.status)] == "max_iter reached"
        else:
            assert len(log) == max_evals and STATUS[int(r.status)] == "max_evals reached"


def test_jit_equals_eager_and_vmap_equals_loop():
    solve = lambda x: minimize_lbfgsb(  # noqa: E731
        rosenbrock, x, -2.0, 0.9, max_iter=15, gtol=0.0, ftol=0.0
    )
    starts = jax.random.uniform(jax.random.key(0), (3, 5), minval=-1.0, maxval=1.0)
    jitted = jax.jit(solve)
    eager = solve(starts[0])
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted(starts[0])), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    batched = jax.jit(jax.vmap(solve))(starts)
    for i in range(3):
        single = jitted(starts[i])
        # Batched products round differently; 15 iterations amplify that to ~1e-8.
        np.testing.assert_allclose(batched.x[i], single.x, rtol=1e-5, atol=1e-6)
        assert int(batched.n_evaluations[i]) == int(single.n_evaluations)


def test_infinite_bounds_equal_no_bounds():
    """The Cauchy search with every breakpoint at infinity reduces to the unbounded step."""
    x0 = jnp.array([-1.2, 1.0, 0.3])
    free = minimize_lbfgsb(rosenbrock, x0, max_iter=25, gtol=0.0)
    inf = jnp.full(3, jnp.inf)
    boxed = minimize_lbfgsb(rosenbrock, x0, -inf, inf, max_iter=25, gtol=0.0)
    np.testing.assert_allclose(boxed.x, free.x, rtol=1e-8)
    assert int(boxed.n_evaluations) == int(free.n_evaluations)


def test_float32_and_pytrees():
    h, b, fun = quadratic_problem()
    x32 = jnp.zeros(12, jnp.float32)
    r = jax.jit(lambda x: minimize_lbfgsb(fun, x, -1.0, 1.0, max_iter=100))(x32)
    assert r.x.dtype == jnp.float32 and r.value.dtype == jnp.float32
    ref = scipy_minimum(fun, np.zeros(12), [(-1, 1)] * 12, gtol=1e-10, ftol=0.0)
    np.testing.assert_allclose(r.x, ref.x, atol=2e-3)
    # A pytree of arrays of any shape, with bounds given per leaf.
    tree0 = {"a": jnp.zeros((2, 3), jnp.float32), "b": jnp.zeros(6, jnp.float32)}
    tree_fun = lambda t: fun(jnp.concatenate([t["a"].ravel(), t["b"]]))  # noqa: E731
    lower = {"a": -1.0, "b": -jnp.ones(6)}
    upper = {"a": jnp.ones((2, 3)), "b": 1.0}
    rt = minimize_lbfgsb(tree_fun, tree0, lower, upper, max_iter=100)
    assert rt.x["a"].shape == (2, 3) and rt.grad["b"].shape == (6,)
    np.testing.assert_allclose(jnp.concatenate([rt.x["a"].ravel(), rt.x["b"]]), r.x, atol=1e-5)


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


def test_reconstruction_beats_jaxopt_at_equal_evaluations():
    """The 'lbfgsb' reconstruction optimizer against jaxopt's ('jaxopt'), about 40 evaluations."""
    from jaxmicro.reconstruct import Spec, characterize, descriptor, reconstruct

    yy, xx = np.indices((16, 16))
    disks = ((yy - 5) ** 2 + (xx - 4) ** 2 < 12) | ((yy - 11) ** 2 + (xx - 12) ** 2 < 9)
    spec = Spec((descriptor("two_point", max_lag=4),))
    target = characterize(disks[..., None].astype(float), spec)
    run = jax.jit(reconstruct, static_argnames=("shape", "spec", "optimizer", "max_iter"))
    ours = run(jax.random.key(0), target, (16, 16), spec, optimizer="lbfgsb", max_iter=40)
    theirs = run(jax.random.key(0), target, (16, 16), spec, optimizer="jaxopt", max_iter=20)
    assert abs(int(ours.n_evaluations) - int(theirs.n_evaluations)) <= 4
    assert float(ours.final_loss) < float(theirs.final_loss) < float(ours.initial_loss)
    assert float(ours.field.min()) >= 0.0 and float(ours.field.max()) <= 1.0
