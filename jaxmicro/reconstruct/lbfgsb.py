"""Box-constrained limited-memory BFGS (L-BFGS-B) in pure JAX: jittable, vmappable, counted.

Minimizes ``f(x)`` subject to ``lower <= x <= upper`` (bounds may be infinite, or absent) with
the algorithm of SciPy's ``minimize(method='L-BFGS-B')``, as one ``lax.while_loop`` that stops at
an iteration or evaluation budget. Each iteration:

1. Generalized Cauchy point: the first local minimizer of the quadratic model
   ``m(z) = g.z + z.B.z / 2`` along the projected steepest-descent path ``P(x - t g)``, with the
   limited-memory matrix in compact form ``B = theta I - W M W^T``, ``W = [Y, theta S]``
   (Byrd, Nocedal & Schnabel 1994, eq. 3.5). BLNZ pop the breakpoints one by one from a heap;
   here they come 64 at a time from ``top_k`` and the model's slope and curvature on their
   segments from prefix sums, so one pass of the loop nearly always finds the point.
2. Subspace minimization: the model minimized over the variables still free at the Cauchy point
   (BLNZ §5.1, direct primal method), then projected onto the box; if that is no descent
   direction, the step is truncated at the box instead (Morales & Nocedal 2011).
3. Line search along ``d = x_bar - x`` (More & Thuente 1994, as MINPACK-2's ``dcsrch`` in
   L-BFGS-B): first trial ``1 / |d|`` on the first iteration of a problem that is not fully
   boxed, else 1 (the full quasi-Newton step), never beyond the box; ends at sufficient decrease
   ``c1 = 1e-3`` with ``|phi'| <= c2 |phi'(0)|``, ``c2 = 0.9``, or at one of ``dcsrch``'s
   warnings; safeguarded cubic/secant steps, at most 20 trials. Most iterations accept the
   first trial: about 1-1.4 evaluations per iteration.
4. Memory update with ``s = x+ - x``, ``y = g+ - g`` unless ``s.y <= eps (-g.s)``; ``theta =
   y.y / s.y``. A failed line search empties the memory and retries from a gradient step; a
   failure with an empty memory ends the run.

In float64 the iterates are SciPy's to rounding (same losses, evaluation and iteration counts;
see ``tests/test_lbfgsb.py``). Differences from SciPy: everything runs in the dtype of ``x0``
(float32 trajectories part from float64 ones after some tens of iterations, like any two
float32 runs of a chaotic problem); a line search cut short by ``max_line_search`` or by the
evaluation budget keeps its best point if it lowered ``f`` (SciPy returns to the previous
iterate); a non-finite trial value halves the step.

Every call of ``value_and_grad(f)`` is counted (the first at ``x0`` included), and a line search
stops as soon as the evaluation budget is spent, so ``n_evaluations <= max_evals`` exactly.
Trial points are clipped to the box: no evaluated point and no returned point leaves it.

References:
    R. H. Byrd, P. Lu, J. Nocedal, C. Zhu, SIAM J. Sci. Comput. 16 (1995) 1190 (BLNZ: §4 eqs.
    4.1-4.9 Cauchy point, §5.1 subspace minimization); R. H. Byrd, J. Nocedal, R. B. Schnabel,
    Math. Program. 63 (1994) 129 (compact form, eqs. 2.17, 3.5); J. L. Morales, J. Nocedal, ACM
    TOMS 38 (2011) 7 (projected subspace step); J. J. More, D. J. Thuente, ACM TOMS 20 (1994) 286
    (line search, §4 cases 1-4); Nocedal & Wright, Numerical Optimization (2006), §7.2 and §16.7
    (L-BFGS, gradient projection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxmicro._validate import is_concrete

STATUS = (
    "running",
    "converged: projected gradient <= gtol",
    "converged: relative reduction <= ftol",
    "max_iter reached",
    "max_evals reached",
    "line search failed twice",
)
_MAX_STEP = 1e10  # SciPy's cap on the step of an unbounded direction
_CHUNK = 64  # breakpoints examined at once by the Cauchy search
_FEW = 256  # fixed variables gathered, rather than masked, in the subspace step


class LbfgsbResult(NamedTuple):
    """Outcome of :func:`minimize_lbfgsb` (a pytree; batched under ``vmap``).

    Attributes:
        x: the minimizer found, same pytree as ``x0``, inside the bounds.
        value: ``f(x)``.
        grad: gradient at ``x``, same pytree as ``x0``.
        n_evaluations: ``value_and_grad`` calls, the first at ``x0`` included (int32).
        n_iterations: accepted steps (int32).
        history: (max_iter,) ``f`` after each accepted step; entries after the last step hold
            the final value.
        status: index into :data:`STATUS` (int32): why the run stopped.
    """

    x: Any
    value: jax.Array
    grad: Any
    n_evaluations: jax.Array
    n_iterations: jax.Array
    history: jax.Array
    status: jax.Array


class _State(NamedTuple):
    x: jax.Array  # (n,)
    f: jax.Array
    g: jax.Array  # (n,)
    pairs: jax.Array  # (2m, n) ring buffer: rows y_1..y_m, then s_1..s_m
    gram: jax.Array  # (2m, 2m) pairs @ pairs^T, updated a row and column at a time
    stamp: jax.Array  # (m,) age of each pair (-1: empty)
    theta: jax.Array
    n_pairs: jax.Array  # pairs stored so far (stamps)
    it: jax.Array
    n_eval: jax.Array
    history: jax.Array
    status: jax.Array


class _Search(NamedTuple):
    """More-Thuente line-search state: stx is the best step so far, [stx, sty] the bracket."""

    stp: jax.Array
    stx: jax.Array
    fx: jax.Array
    gx: jax.Array
    sty: jax.Array
    fy: jax.Array
    gy: jax.Array
    bracketed: jax.Array
    stage2: jax.Array  # sufficient decrease and a nonnegative slope seen: plain function
    stmin: jax.Array
    stmax: jax.Array
    width: jax.Array
    width1: jax.Array
    x_t: jax.Array  # last trial point, its value and gradient
    f_t: jax.Array
    g_t: jax.Array
    x_x: jax.Array  # the point at stx and its gradient
    g_x: jax.Array
    trials: jax.Array
    n_eval: jax.Array
    done: jax.Array


def _compact_form(gram, stamp, theta):
    """``(scale (2m,), M (2m, 2m))`` with ``B = theta I - W M W^T``, ``W^T = scale * pairs``.

    ``W = [Y, theta S]`` is never formed: its products are those of the (2m, n) buffer of pairs
    (a pair per row, so that products over n run along contiguous memory) scaled per row.
    Empty slots get scale 0 and an identity block in ``K = M^{-1}``.
    """
    m = stamp.shape[0]
    valid = stamp >= 0
    sy, ss = gram[m:, :m], gram[m:, m:]  # sy_ij = s_i . y_j
    newer = (stamp[:, None] > stamp[None, :]) & valid[:, None] & valid[None, :]
    low = jnp.where(newer, sy, 0.0)  # L_ij = s_i . y_j for pair i newer than pair j
    k = jnp.block([[-jnp.diag(jnp.diag(sy)), low.T], [low, theta * ss]])
    both = jnp.concatenate([valid, valid])
    filler = jnp.concatenate([-jnp.ones(m, gram.dtype), jnp.ones(m, gram.dtype)])
    k = jnp.where(both[:, None] & both[None, :], k, 0.0) + jnp.diag(jnp.where(both, 0.0, filler))
    # Pairs from early and late iterations differ by orders of magnitude: equilibrate before
    # inverting (the diagonal of K is nonzero: s.y > 0 for every stored pair).
    e = 1.0 / jnp.sqrt(jnp.abs(jnp.diag(k)))
    mid = e[:, None] * jnp.linalg.inv(e[:, None] * k * e[None, :]) * e[None, :]
    scale = jnp.where(both, jnp.concatenate([jnp.ones(m), jnp.full(m, theta)]), 0.0)
    return scale.astype(gram.dtype), mid


class _Path(NamedTuple):
    left: jax.Array  # (n,) breakpoints not passed yet (inf once passed)
    p: jax.Array  # (2m,) W^T d, d the path direction after the passed breakpoints
    q: jax.Array  # (2m,) W^T z, z the displacement of the variables already at a bound
    free_sq: jax.Array  # |d|^2
    start: jax.Array  # where the next segment starts
    t_c: jax.Array  # the Cauchy time once found, else NaN


def _cauchy_point(x, g, lower, upper, theta, pairs, scale, mid):
    """Generalized Cauchy point ``(x_c, c = W^T (x_c - x), free mask)`` (BLNZ §4).

    The path ``P(x - t g)`` is linear between breakpoints (where a variable reaches its bound).
    Instead of a heap, the next ``_CHUNK`` breakpoints come from ``top_k``, and the model's slope
    f1 and curvature f2 at the start of each of their segments (BLNZ eqs. 4.6-4.9) from prefix
    sums over them; the loop moves to the next chunk only if no segment holds the minimizer
    (one chunk nearly always does: the variables at a bound with an outward gradient are fixed
    from the start and never enter a chunk).
    """
    t = jnp.where(g < 0, (x - upper) / g, jnp.where(g > 0, (x - lower) / g, jnp.inf))
    t = jnp.maximum(jnp.where(jnp.isnan(t), jnp.inf, t), 0.0)
    d = jnp.where(t > 0, -g, 0.0)
    chunk = min(_CHUNK, t.shape[0])

    def segments(path):
        neg, idx = jax.lax.top_k(-path.left, chunk)
        ends = -neg  # ascending; inf once every breakpoint has been passed
        a = d[idx, None] * (scale[:, None] * pairs[:, idx]).T  # adds to W^T d while free
        at_bound = jnp.where(jnp.isfinite(ends), ends, 0.0)[:, None] * a
        zero = jnp.zeros((1, mid.shape[0]), mid.dtype)
        p = path.p - jnp.concatenate([zero, jnp.cumsum(a[:-1], axis=0)])
        q = path.q + jnp.concatenate([zero, jnp.cumsum(at_bound[:-1], axis=0)])
        dd = d[idx] ** 2
        free_sq = path.free_sq - jnp.concatenate([jnp.zeros(1, dd.dtype), jnp.cumsum(dd[:-1])])
        starts = jnp.concatenate([path.start[None], ends[:-1]])
        mp = p @ mid
        f1 = -free_sq + theta * starts * free_sq - jnp.sum(mp * (q + starts[:, None] * p), axis=1)
        f2 = theta * free_sq - jnp.sum(mp * p, axis=1)
        dt = jnp.where(f1 >= 0, 0.0, jnp.where(f2 > 0, -f1 / f2, jnp.inf))
        stop = (f1 >= 0) | (dt < ends - starts) | ~jnp.isfinite(ends)
        k = jnp.argmax(stop)
        t_c = starts[k] + jnp.minimum(dt[k], ends[k] - starts[k])
        t_c = jnp.where(jnp.isfinite(t_c), t_c, starts[k])
        return _Path(
            path.left.at[idx].set(jnp.inf),
            p[-1] - a[-1],
            q[-1] + at_bound[-1],
            free_sq[-1] - dd[-1],
            ends[-1],
            jnp.where(jnp.any(stop), t_c, jnp.nan),
        )

    zero = jnp.zeros((), x.dtype)
    init = _Path(
        jnp.where(t > 0, t, jnp.inf),
        scale * (pairs @ d),
        jnp.zeros_like(mid[0]),
        d @ d,
        zero,
        zero + jnp.nan,
    )
    t_c = jax.lax.while_loop(lambda path: jnp.isnan(path.t_c), segments, init).t_c
    fixed = t <= t_c
    x_c = jnp.where(fixed, jnp.where(g < 0, upper, lower), x - t_c * g)
    x_c = jnp.clip(x_c, lower, upper)
    return x_c, scale * (pairs @ (x_c - x)), ~fixed


def _free_gram(pairs, gram, free):
    """``pairs Z pairs^T`` (2m, 2m) over the free variables.

    When at most ``_FEW`` variables are fixed, the stored Gram minus their part (gathered by
    ``top_k``); else the direct masked product (O(n m^2), the costliest step of an iteration).
    """
    few = min(_FEW, free.shape[0])
    n_fixed = jnp.sum(~free)

    def minus_fixed(_):
        _, idx = jax.lax.top_k((~free).astype(pairs.dtype), few)
        cols = jnp.where(jnp.arange(few) < n_fixed, pairs[:, idx], 0.0)
        return gram - cols @ cols.T

    def masked(_):
        return jnp.where(free[None, :], pairs, 0.0) @ pairs.T

    return jax.lax.cond(n_fixed <= few, minus_fixed, masked, None)


def _subspace_point(x, g, x_c, c, free, lower, upper, theta, pairs, gram, scale, mid):
    """Minimizer of the model over the free variables, projected onto the box (BLNZ §5.1)."""
    r = jnp.where(free, g + theta * (x_c - x) - (scale * (mid @ c)) @ pairs, 0.0)
    v = mid @ (scale * (pairs @ r))
    wzw = scale[:, None] * _free_gram(pairs, gram, free) * scale[None, :]  # W^T Z Z^T W
    v = jnp.linalg.solve(jnp.eye(mid.shape[0], dtype=mid.dtype) - mid @ wzw / theta, v)
    du = jnp.where(free, -(r + (scale * v) @ pairs / theta) / theta, 0.0)
    projected = jnp.clip(x_c + du, lower, upper)
    # Morales & Nocedal (2011): keep the projection if it descends, else stop at the box.
    to_bound = jnp.where(du > 0, (upper - x_c) / du, jnp.where(du < 0, (lower - x_c) / du, 1.0))
    alpha = jnp.clip(jnp.min(jnp.where(free, to_bound, 1.0)), 0.0, 1.0)
    truncated = jnp.clip(x_c + alpha * du, lower, upper)
    ok = jnp.all(jnp.isfinite(projected)) & (jnp.vdot(projected - x, g) < 0)
    return jnp.where(ok, projected, truncated)


def _safeguarded_step(stx, fx, dx, sty, fy, dy, stp, fp, dp, bracketed, stmin, stmax):
    """Next trial step and updated interval of the More-Thuente search (their §4, cases 1-4).

    Cubic and quadratic (secant) interpolation of the values and slopes at the best step stx,
    the other end sty and the trial stp, chosen and safeguarded as in MINPACK-2's ``dcstep``.

    Returns:
        ``(stx, fx, dx, sty, fy, dy, stp, bracketed)``.
    """
    sgnd = dp * jnp.sign(dx)
    higher = fp > fx
    opposite = ~higher & (sgnd < 0)
    smaller = ~higher & ~opposite & (jnp.abs(dp) < jnp.abs(dx))

    def cubic_parts(fa, da, a, fb, db, b):
        theta = 3.0 * (fa - fb) / (b - a) + da + db
        scale = jnp.maximum(jnp.maximum(jnp.abs(theta), jnp.abs(da)), jnp.abs(db))
        disc = (theta / scale) ** 2 - (da / scale) * (db / scale)
        return theta, scale * jnp.sqrt(jnp.maximum(disc, 0.0))

    theta, gamma = cubic_parts(fx, dx, stx, fp, dp, stp)
    # 1: higher value: the minimizer is bracketed; cubic, or halfway to the quadratic.
    g1 = jnp.where(stp < stx, -gamma, gamma)
    c1 = stx + ((g1 - dx) + theta) / (((g1 - dx) + g1) + dp) * (stp - stx)
    q1 = stx + (dx / ((fx - fp) / (stp - stx) + dx)) / 2.0 * (stp - stx)
    step1 = jnp.where(jnp.abs(c1 - stx) < jnp.abs(q1 - stx), c1, c1 + (q1 - c1) / 2.0)
    # 2: slopes of opposite sign: bracketed; the cubic or secant step farther from stp.
    g2 = jnp.where(stp > stx, -gamma, gamma)
    c2 = stp + ((g2 - dp) + theta) / (((g2 - dp) + g2) + dx) * (stx - stp)
    secant = stp + dp / (dp - dx) * (stx - stp)
    step2 = jnp.where(jnp.abs(c2 - stp) > jnp.abs(secant - stp), c2, secant)
    # 3: same sign, slope decreasing in magnitude: cubic only if it has a minimizer beyond stp.
    g3 = jnp.where(stp > stx, -gamma, gamma)
    r3 = ((g3 - dp) + theta) / ((g3 + (dx - dp)) + g3)
    c3 = jnp.where((r3 < 0) & (g3 != 0), stp + r3 * (stx - stp), jnp.where(stp > stx, stmax, stmin))
    closer = jnp.where(jnp.abs(c3 - stp) < jnp.abs(secant - stp), c3, secant)
    limit = stp + 0.66 * (sty - stp)
    inside = jnp.where(stp > stx, jnp.minimum(limit, closer), jnp.maximum(limit, closer))
    farther = jnp.where(jnp.abs(c3 - stp) > jnp.abs(secant - stp), c3, secant)
    step3 = jnp.where(bracketed, inside, jnp.clip(farther, stmin, stmax))
    # 4: same sign, slope not decreasing: cubic towards sty if bracketed, else to the limit.
    theta4, gamma4 = cubic_parts(fp, dp, stp, fy, dy, sty)
    g4 = jnp.where(stp > sty, -gamma4, gamma4)
    c4 = stp + ((g4 - dp) + theta4) / (((g4 - dp) + g4) + dy) * (sty - stp)
    step4 = jnp.where(bracketed, c4, jnp.where(stp > stx, stmax, stmin))
    new = jnp.select([higher, opposite, smaller], [step1, step2, step3], step4)
    to_y = higher | opposite  # the old best becomes the other end when the slopes differ
    sty, fy, dy = (
        jnp.where(higher, stp, jnp.where(opposite, stx, sty)),
        jnp.where(higher, fp, jnp.where(opposite, fx, fy)),
        jnp.where(higher, dp, jnp.where(opposite, dx, dy)),
    )
    stx, fx, dx = (jnp.where(higher, a, b) for a, b in ((stx, stp), (fx, fp), (dx, dp)))
    return stx, fx, dx, sty, fy, dy, new, bracketed | to_y


def _line_search(value_and_grad, x, f, g, d, gd0, stp0, stp_max, n_eval, max_evals, bounds, opts):
    """More-Thuente search along ``d`` (L-BFGS-B's ``lnsrlb`` + MINPACK-2 ``dcsrch`` logic).

    Ends at a trial with sufficient decrease ``f <= f0 + c1 stp gd0`` and ``|g.d| <= c2 |gd0|``,
    or at a warning (the interval below ``xtol``, rounding, or ``stp_max`` reached with
    decrease), after ``max_trials`` evaluations, or when the evaluation budget is spent. A trial
    with a non-finite value halves the step towards the best one.
    """
    lower, upper = bounds
    c1, c2, max_trials = opts
    xtol = 0.1
    gtest = c1 * gd0

    def cond(ls):
        return ~ls.done & (ls.trials < max_trials) & (ls.n_eval < max_evals) & (gd0 < 0)

    def body(ls):
        x_t = jnp.clip(x + ls.stp * d, lower, upper)
        f_t, g_t = value_and_grad(x_t)
        dphi = jnp.vdot(g_t, d)
        finite = jnp.isfinite(f_t) & jnp.isfinite(dphi)
        ftest = f + ls.stp * gtest
        stage2 = ls.stage2 | ((f_t <= ftest) & (dphi >= 0))
        b = ls.bracketed
        warn = (
            (b & ((ls.stp <= ls.stmin) | (ls.stp >= ls.stmax)))
            | (b & (ls.stmax - ls.stmin <= xtol * ls.stmax))
            | ((ls.stp == stp_max) & (f_t <= ftest) & (dphi <= gtest))
        )
        done = finite & (warn | ((f_t <= ftest) & (jnp.abs(dphi) <= -c2 * gd0)))
        # Stage 1 works on the modified function f - stp * gtest where f is above it.
        shift = jnp.where(~stage2 & (f_t <= ls.fx) & (f_t > ftest), gtest, 0.0)
        stx, fx, gx, sty, fy, gy, stp, bracketed = _safeguarded_step(
            ls.stx,
            ls.fx - ls.stx * shift,
            ls.gx - shift,
            ls.sty,
            ls.fy - ls.sty * shift,
            ls.gy - shift,
            ls.stp,
            f_t - ls.stp * shift,
            dphi - shift,
            b,
            ls.stmin,
            ls.stmax,
        )
        fx, fy, gx, gy = fx + stx * shift, fy + sty * shift, gx + shift, gy + shift
        width = jnp.where(bracketed, jnp.abs(sty - stx), ls.width)
        width1 = jnp.where(bracketed, ls.width, ls.width1)
        stp = jnp.where(bracketed & (width >= 0.66 * ls.width1), stx + 0.5 * (sty - stx), stp)
        stmin = jnp.where(bracketed, jnp.minimum(stx, sty), stp + 1.1 * (stp - stx))
        stmax = jnp.where(bracketed, jnp.maximum(stx, sty), stp + 4.0 * (stp - stx))
        stp = jnp.clip(stp, 0.0, stp_max)
        stuck = bracketed & ((stp <= stmin) | (stp >= stmax) | (stmax - stmin <= xtol * stmax))
        stp = jnp.where(stuck, stx, stp)
        moved_x = finite & (stx == ls.stp)  # the trial became the best step
        new = _Search(
            stp,
            stx,
            fx,
            gx,
            sty,
            fy,
            gy,
            bracketed,
            stage2,
            stmin,
            stmax,
            width,
            width1,
            x_t,
            f_t,
            g_t,
            jnp.where(moved_x, x_t, ls.x_x),
            jnp.where(moved_x, g_t, ls.g_x),
            ls.trials + 1,
            ls.n_eval + 1,
            done,
        )
        halved = ls._replace(
            stp=ls.stx + 0.5 * (ls.stp - ls.stx),
            x_t=x_t,
            f_t=f_t,
            g_t=g_t,
            trials=ls.trials + 1,
            n_eval=ls.n_eval + 1,
        )
        return jax.tree.map(lambda a, h: jnp.where(finite, a, h), new, halved)

    zero = jnp.zeros_like(f)
    init = _Search(
        stp0,
        zero,
        f,
        gd0,
        zero,
        f,
        gd0,
        jnp.bool_(False),
        jnp.bool_(False),
        zero,
        stp0 + 4.0 * stp0,
        stp_max,
        2.0 * stp_max,
        x,
        f,
        g,
        x,
        g,
        jnp.int32(0),
        n_eval,
        jnp.bool_(False),
    )
    return jax.lax.while_loop(cond, body, init)


def _flat_bound(bound, x0, fill: float, dtype) -> jax.Array:
    """Bound as a flat (n,) array: None -> ``fill``; scalar -> broadcast; pytree like ``x0``."""
    if bound is None:
        bound = fill
    if not isinstance(bound, (list, tuple, dict)) and jnp.ndim(bound) == 0:
        bound = jax.tree.map(lambda leaf: jnp.full(jnp.shape(leaf), bound, dtype), x0)
    else:
        bound = jax.tree.map(lambda b, leaf: jnp.broadcast_to(b, jnp.shape(leaf)), bound, x0)
    return ravel_pytree(bound)[0].astype(dtype)


def minimize_lbfgsb(
    fun: Callable[[Any], jax.Array],
    x0: Any,
    lower: Any = None,
    upper: Any = None,
    *,
    max_iter: int = 100,
    max_evals: int | None = None,
    memory: int = 10,
    gtol: float = 1e-5,
    ftol: float = 2.220446049250313e-9,
    c1: float = 1e-3,
    c2: float = 0.9,
    max_line_search: int = 20,
) -> LbfgsbResult:
    """Minimizes ``fun`` over the box ``[lower, upper]`` by L-BFGS-B (see the module docstring).

    Pure and traceable: wrap it in ``jax.jit`` (``fun`` and the keyword options are static) or
    ``jax.vmap`` it over starting points (the loop then runs until every member has stopped).

    Args:
        fun: scalar function of a pytree like ``x0``, differentiable (``jax.value_and_grad``).
        x0: starting point: a floating array of any shape, or a pytree of them (float32 or
            float64; the computation runs in that dtype). Projected onto the box first.
        lower, upper: bounds: None (unbounded), a scalar, or a pytree like ``x0`` whose leaves
            broadcast to those of ``x0``; entries may be -inf / +inf. ``lower <= upper``.
        max_iter: accepted steps at most (the length of ``history``).
        max_evals: ``value_and_grad`` calls at most, the one at ``x0`` included (None: no cap
            beyond ``1 + max_line_search * (max_iter + 1)``).
        memory: stored correction pairs (SciPy's ``maxcor``).
        gtol: stop when ``max |P(x - g) - x| <= gtol`` (projected gradient).
        ftol: stop when ``(f_prev - f) / max(|f_prev|, |f|, 1) <= ftol``. Pass 0 for both to
            spend the whole budget.
        c1, c2: sufficient-decrease and curvature constants of the line search.
        max_line_search: trials per line search.

    Returns:
        An :class:`LbfgsbResult`.

    References:
        Byrd, Lu, Nocedal & Zhu, SIAM J. Sci. Comput. 16 (1995) 1190; Morales & Nocedal, ACM
        TOMS 38 (2011) 7; Nocedal & Wright (2006) §7.2, §16.7.
    """
    if max_iter < 0 or memory < 1 or max_line_search < 1:
        raise ValueError(
            f"max_iter, memory, max_line_search: expected >= 0, >= 1, >= 1, got "
            f"{max_iter}, {memory}, {max_line_search}"
        )
    if max_evals is not None and max_evals < 1:
        raise ValueError(f"max_evals: expected >= 1 or None, got {max_evals}")
    flat0, unravel = ravel_pytree(x0)
    if not jnp.issubdtype(flat0.dtype, jnp.floating):
        raise ValueError(f"x0: expected floating arrays, got dtype {flat0.dtype}")
    dtype = flat0.dtype
    n, m = flat0.shape[0], memory
    with jax.ensure_compile_time_eval():  # concrete bounds stay concrete under jit: check them
        low = _flat_bound(lower, x0, -jnp.inf, dtype)
        up = _flat_bound(upper, x0, jnp.inf, dtype)
        crossed = is_concrete(low) and is_concrete(up) and bool(jnp.any(low > up))
    if crossed:
        raise ValueError("lower, upper: expected lower <= upper everywhere")
    bounded = lower is not None or upper is not None  # static: skip the Cauchy search if not
    constrained = jnp.any(jnp.isfinite(low) | jnp.isfinite(up))
    boxed = jnp.all(jnp.isfinite(low) & jnp.isfinite(up))
    budget = 1 + max_line_search * (max_iter + 1) if max_evals is None else max_evals
    eps = jnp.finfo(dtype).eps
    grad_fn = jax.value_and_grad(lambda v: fun(unravel(v)))

    def value_and_grad(v):
        f, g = grad_fn(v)
        return jnp.asarray(f, dtype), g.astype(dtype)

    def projected_gradient_norm(x, g):
        return jnp.max(jnp.abs(jnp.clip(x - g, low, up) - x), initial=0.0)

    def body(st: _State) -> _State:
        scale, mid = _compact_form(st.gram, st.stamp, st.theta)
        if bounded:
            x_c, c, free = _cauchy_point(st.x, st.g, low, up, st.theta, st.pairs, scale, mid)
        else:
            x_c, c, free = st.x, jnp.zeros(2 * m, dtype), jnp.ones(n, bool)
        model = (st.theta, st.pairs, st.gram, scale, mid)
        d = _subspace_point(st.x, st.g, x_c, c, free, low, up, *model) - st.x
        gd0 = jnp.vdot(st.g, d)
        first = st.it == 0
        to_bound = jnp.where(d < 0, (low - st.x) / d, jnp.where(d > 0, (up - st.x) / d, jnp.inf))
        feasible = jnp.clip(jnp.min(to_bound, initial=jnp.inf), 1.0, _MAX_STEP)
        stp_max = jnp.where(first & constrained, 1.0, feasible).astype(dtype)
        inv_norm = 1.0 / jnp.maximum(jnp.linalg.norm(d), jnp.finfo(dtype).tiny)
        stp0 = jnp.where(first & ~boxed, jnp.minimum(inv_norm, stp_max), 1.0).astype(dtype)
        ls = _line_search(
            value_and_grad,
            st.x,
            st.f,
            st.g,
            d,
            gd0,
            stp0,
            stp_max,
            st.n_eval,
            budget,
            (low, up),
            (c1, c2, max_line_search),
        )
        # A finished search moves to its last trial if that decreased f; an unfinished one (out
        # of trials or of budget) to its best step; else the search failed.
        use_trial = ls.done & (ls.f_t < st.f)
        moved = use_trial | (ls.stx > 0)
        x = jnp.where(use_trial, ls.x_t, ls.x_x)
        f = jnp.where(use_trial, ls.f_t, ls.fx)
        g = jnp.where(use_trial, ls.g_t, ls.g_x)
        s, y = x - st.x, g - st.g
        sy = jnp.vdot(s, y)
        keep = moved & (sy > eps * -jnp.vdot(st.g, s))
        slot = jnp.argmin(st.stamp)  # an empty slot, else the oldest pair
        pairs = st.pairs.at[slot].set(jnp.where(keep, y, st.pairs[slot]))
        pairs = pairs.at[m + slot].set(jnp.where(keep, s, st.pairs[m + slot]))
        col_y, col_s = pairs @ y, pairs @ s
        gram = st.gram.at[slot].set(col_y).at[:, slot].set(col_y)
        gram = gram.at[m + slot].set(col_s).at[:, m + slot].set(col_s)
        # A failed search empties the memory (SciPy's restart); failing with it empty ends.
        stamp = jnp.where(moved, st.stamp, -1)
        stamp = jnp.where(keep, stamp.at[slot].set(st.n_pairs), stamp)
        theta = jnp.where(keep, jnp.vdot(y, y) / sy, jnp.where(moved, st.theta, 1.0))
        it = st.it + moved
        history = jnp.where(moved, st.history.at[st.it].set(f), st.history)
        reduction = (st.f - f) / jnp.maximum(jnp.maximum(jnp.abs(st.f), jnp.abs(f)), 1.0)
        status = jnp.select(
            [
                ~moved & ~jnp.any(st.stamp >= 0),
                moved & (projected_gradient_norm(x, g) <= gtol),
                moved & (reduction <= ftol),
                it >= max_iter,
                ls.n_eval >= budget,
            ],
            [5, 1, 2, 3, 4],
            0,
        )
        return _State(
            jnp.where(moved, x, st.x),
            jnp.where(moved, f, st.f),
            jnp.where(moved, g, st.g),
            pairs,
            jnp.where(keep, gram, st.gram),
            stamp,
            theta.astype(dtype),
            st.n_pairs + keep,
            it,
            ls.n_eval,
            history,
            status.astype(jnp.int32),
        )

    x = jnp.clip(flat0, low, up)
    f, g = value_and_grad(x)
    status = jnp.select(
        [projected_gradient_norm(x, g) <= gtol, jnp.bool_(max_iter == 0), jnp.bool_(budget <= 1)],
        [1, 3, 4],
        0,
    )
    init = _State(
        x,
        f,
        g,
        jnp.zeros((2 * m, n), dtype),
        jnp.zeros((2 * m, 2 * m), dtype),
        jnp.full(m, -1, jnp.int32),
        jnp.ones((), dtype),
        jnp.int32(0),
        jnp.int32(0),
        jnp.int32(1),
        jnp.zeros(max_iter, dtype),
        status.astype(jnp.int32),
    )
    st = jax.lax.while_loop(lambda st: st.status == 0, body, init)
    history = jnp.where(jnp.arange(max_iter) < st.it, st.history, st.f)
    return LbfgsbResult(unravel(st.x), st.f, unravel(st.g), st.n_eval, st.it, history, st.status)
