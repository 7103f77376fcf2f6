"""jaxmicro reconstruction against MCRpy: time per evaluation, evaluations, loss, memory.

    python benchmarks/mcr_vs_mcrpy.py [--problems a,b,c] [--optimizers jaxmicro,jaxopt,optax,scipy]
        [--seeds 1]

Problems (as measured for MCRpy, TensorFlow + SciPy L-BFGS-B, on this project's 2-core CPU):

- a: 64x64 periodic two-phase disks (volume fraction ~0.35), exact periodic S2 with |r| <= 7,
  200 evaluations. MCRpy: 3.0 ms per evaluation.
- b: a 32^3 volume from that 2D reference: S2 on the slices + mean variation (weight 100),
  100 evaluations. MCRpy with the same kind of loss (``FFTCorrelations`` + ``Variation``):
  0.50 s per evaluation, peak RSS 0.7 GB (measured by a colleague on this machine; MCRpy's
  default Gram-matrix ``Correlations`` descriptor, a different loss, takes 1.18 s).
- c: a 128x128 cubic orientation map (synthetic columnar polycrystal): SHSH degree 8, S2 with
  all cross-correlations |r| <= 8, three-point variogram |r| <= 3, mean variation (the CLI's
  defaults), 100 evaluations. MCRpy: about 1 s per evaluation and 6 GB of memory.

Each (problem, optimizer) runs in its own subprocess, so its peak RSS (``getrusage``) is its own;
the parent makes each reference once and the children read it from an ``.npy``, as a user's run
reads its reference.
Reported: the compiled loss-and-gradient alone (median of 10 calls, compilation excluded); the
whole jitted solve (median of 3 calls) divided by its evaluations; evaluations per iteration; the
loss after about the evaluation budget (a jitted optimizer runs a fixed number of iterations, so
the iteration count is rescaled, up to three solves, until the evaluations are within 10% of the
budget); peak RSS. With ``--seeds N`` every optimizer starts from the same N random fields
(keys 1..N, one compilation) and the loss is the median over them: single runs of these
non-convex problems differ by up to 2x between starts, more than between L-BFGS-B variants.
jaxopt's count includes one forward-only evaluation per iteration (its zoom line search
re-evaluates the start point for ``aux``), so its "evaluations" are not all gradients.

Optimizers: ``jaxmicro`` (``'lbfgsb'``, the library's own L-BFGS-B in a ``lax.while_loop``),
``jaxopt`` (``jaxopt.LBFGSB``) and ``optax`` (``optax.lbfgs``), all through the library's
``reconstruct``; and ``scipy``: SciPy's L-BFGS-B driven from the host by the same jitted
value-and-gradient (``maxfun`` = budget, so it may overshoot by a line search), which is MCRpy's
optimizer on our loss. If ``mcrpy`` is importable it is named in the output; its figures are
otherwise the ones quoted above (TensorFlow is not installed here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _timing import median_seconds

MCRPY = {  # ms per evaluation and peak memory measured for MCRpy on the 2-core machine
    "a": {"ms": 3.0, "rss_mb": None},
    "b": {"ms": 500.0, "rss_mb": 700.0},  # FFTCorrelations + Variation, as our loss
    "c": {"ms": 1000.0, "rss_mb": 6000.0},
}
BUDGET = {"a": 200, "b": 100, "c": 100}
OPTIMIZERS = {"jaxmicro": "lbfgsb", "jaxopt": "jaxopt", "optax": "lbfgs", "scipy": "scipy"}


def _reference(name: str):
    """The reference field of a problem (made in the parent process, read by the children)."""
    import jax

    from jaxmicro import synth

    if name in ("a", "b"):
        field, _, _ = synth.rsa_disks(jax.random.key(0), (64, 64), 4.0, 0.35)
        return np.asarray(field, np.float32)[..., None]
    ids = synth.voronoi(jax.random.key(0), (128, 128), 60, regularity=0.5, stretch=(3.0, 1.0))
    return np.asarray(synth.grain_orientations(jax.random.key(1), 60)[ids], np.float32)


def _problem(name: str):
    """``(spec, shape)`` of a problem."""
    from jaxmicro.reconstruct import Spec, descriptor

    if name == "a":
        return Spec((descriptor("two_point", max_lag=7),)), (64, 64)
    if name == "b":
        spec = Spec((descriptor("two_point", max_lag=7), descriptor("mean_variation", 100.0)))
        return spec, (32, 32, 32)
    from jaxmicro.reconstruct import default_descriptors

    spec = Spec(default_descriptors("orientations", 8), representation="orientations")
    return spec, (128, 128)


def measure(problem: str, optimizer: str, seeds: int, reference_path: str) -> dict:
    """One subprocess's measurements (see the module docstring)."""
    import jax
    import jax.numpy as jnp

    from jaxmicro.reconstruct import characterize, initial_field, loss, reconstruct, report

    reference = np.load(reference_path)  # as a user's run reads its reference
    spec, shape = _problem(problem)
    budget = BUDGET[problem]
    target = characterize(reference, spec)
    channels = 4 if spec.representation == "orientations" else reference.shape[-1]
    keys = [jax.random.key(seed) for seed in range(1, seeds + 1)]
    x0 = initial_field(keys[0], shape, spec, channels, jnp.float32)
    value_and_grad = jax.jit(jax.value_and_grad(lambda x, t: loss(x, t, spec)))
    jax.block_until_ready(value_and_grad(x0, target))
    alone = median_seconds(lambda: value_and_grad(x0, target), repeats=10, warmup=False)
    row = {
        "problem": problem,
        "optimizer": optimizer,
        "seeds": seeds,
        "ms_per_eval_alone": 1e3 * alone,
        "initial_loss": float(loss(x0, target, spec)),
    }
    if optimizer == "scipy":
        import scipy.optimize

        bounds = [(0.0, 1.0)] * x0.size if spec.representation == "phases" else None
        runs = []
        for key in keys:
            start_field = initial_field(key, shape, spec, channels, jnp.float32)
            count = [0]

            def fun(v, count=count):
                count[0] += 1
                value, grad = value_and_grad(jnp.asarray(v.reshape(x0.shape), jnp.float32), target)
                return float(value), np.asarray(grad, np.float64).ravel()

            start = time.perf_counter()
            res = scipy.optimize.minimize(
                fun,
                np.asarray(start_field, np.float64).ravel(),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxfun": budget, "maxiter": budget, "ftol": 0.0, "gtol": 0.0},
            )
            runs.append((count[0], int(res.nit), float(res.fun), time.perf_counter() - start))
        evals, iterations, losses, seconds = (
            np.array(column) for column in zip(*runs, strict=True)
        )
        row.update(ms_per_eval_solve=1e3 * seconds.sum() / evals.sum(), compile_s=0.0)
    else:

        def solve_for(iterations):
            return jax.jit(
                lambda key, t: reconstruct(
                    key, t, shape, spec, optimizer=optimizer, max_iter=iterations
                )
            )

        # A solve runs a fixed number of iterations: rescale it until it spends about the
        # budget (evaluations per iteration change along a run), at most three compilations.
        iterations, compile_s = budget, 0.0
        for _ in range(3):
            solve = solve_for(iterations)
            first, seconds, _ = report.timed_call(solve, keys[0], target)
            compile_s += seconds
            evals = int(first.n_evaluations)
            if abs(evals - budget) <= 0.1 * budget:
                break
            iterations = max(1, round(iterations * budget / evals))
        results = [first] + [solve(key, target) for key in keys[1:]]
        evals = np.array([int(r.n_evaluations) for r in results])
        losses = np.array([float(r.final_loss) for r in results])
        iterations = np.full(seeds, first.loss_history.shape[0])
        seconds = median_seconds(lambda: solve(keys[0], target), repeats=3, warmup=False)
        row.update(ms_per_eval_solve=1e3 * seconds / evals[0], compile_s=compile_s)
    row.update(
        evaluations=float(np.median(evals)),
        iterations=float(np.median(iterations)),
        evals_per_iteration=float(evals.sum() / max(iterations.sum(), 1)),
        loss=float(np.median(losses)),
        losses=losses.tolist(),
        peak_rss_mb=report.peak_rss_mb(),
    )
    return row


def _table(rows: list[dict]) -> str:
    head = (
        "| problem | optimizer | ms/eval (alone) | ms/eval (in solve) | speed-up vs MCRpy "
        "| evals | iterations | evals/iter | loss at ~budget: median (min-max) | peak RSS MB "
        "| compile s |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        ref = MCRPY[r["problem"]]["ms"]
        spread = f" ({min(r['losses']):.2g}-{max(r['losses']):.2g})" if r["seeds"] > 1 else ""
        lines.append(
            f"| {r['problem']} | {r['optimizer']} | {r['ms_per_eval_alone']:.2f} "
            f"| {r['ms_per_eval_solve']:.2f} | {ref / r['ms_per_eval_solve']:.0f}x "
            f"| {r['evaluations']:.0f} | {r['iterations']:.0f} | {r['evals_per_iteration']:.2f} "
            f"| {r['loss']:.3g}{spread} | {r['peak_rss_mb']:.0f} | {r['compile_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="a,b,c")
    parser.add_argument("--optimizers", default="jaxmicro,jaxopt,optax,scipy")
    parser.add_argument("--seeds", type=int, default=1, help="random starts per optimizer")
    parser.add_argument(
        "--child", nargs=4, metavar=("PROBLEM", "OPTIMIZER", "SEEDS", "REF"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        problem, optimizer, seeds, reference_path = args.child
        row = measure(problem, optimizer, int(seeds), reference_path)
        print("RESULT " + json.dumps(row), flush=True)
        return
    try:
        import mcrpy  # noqa: F401

        print("mcrpy is importable, but this script does not drive it; MCRpy figures as quoted.")
    except ImportError:
        print("MCRpy not installed: its figures are the ones measured on this machine (docstring).")
    print(f"load average: {os.getloadavg()}, CPUs: {os.cpu_count()}")
    rows = []
    workdir = tempfile.mkdtemp()
    for problem in args.problems.split(","):
        reference_path = os.path.join(workdir, f"{problem}.npy")
        np.save(reference_path, _reference(problem))
        for name in args.optimizers.split(","):
            cmd = [sys.executable, __file__, "--child", problem, OPTIMIZERS[name], str(args.seeds)]
            cmd.append(reference_path)
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode or not lines:
                print(f"{problem}/{name} failed:\n{done.stderr[-2000:]}")
                continue
            row = json.loads(lines[-1][len("RESULT ") :])
            row["optimizer"] = name
            rows.append(row)
            print(
                f"{problem}/{name}: {row['ms_per_eval_solve']:.2f} ms/eval, loss {row['loss']:.3g}",
                flush=True,
            )
    print(_table(rows))
    for problem in sorted({r["problem"] for r in rows}):
        ref = MCRPY[problem]
        rss = f", {ref['rss_mb']:.0f} MB" if ref["rss_mb"] else ""
        print(f"MCRpy {problem}: {ref['ms']:.1f} ms per evaluation{rss}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
