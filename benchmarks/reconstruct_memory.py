"""Peak memory of ``jaxmicro reconstruct``, as the command reports it, in its two usual cases.

    python benchmarks/reconstruct_memory.py [--cases plain,example] [--repeats 3]

Cases, each run as its own ``python -m jaxmicro reconstruct`` process (``--repeats`` times):

- plain: a 128x128 cubic Euler map (``.npy``, radians; a periodic Voronoi polycrystal of 60
  grains 3x taller than wide with uniform orientations, as problem (c) of ``mcr_vs_mcrpy.py``),
  the command's defaults (SHSH degree 8, S2 |r| <= 8 with all pairs, three-point variogram
  |r| <= 3, mean variation, L-BFGS-B, one start, one level) and ``--max-iter 100``;
- example: ``--example`` (48x48, 2 levels x 300 iterations, 4 starts in one ``vmap``).

Reported per run: ``peak_rss_mb`` of the run's ``result.json`` (``getrusage`` at the end of the
run, in MiB), the process's own peak from ``wait4`` (the same figure, up to the final writes),
wall time, the compilation time the command records, and the final loss; then min, median and
max per case. The peak of both cases is the compilation of the solve (XLA's scratch on top of
the imports, the reference and the characterization), so it varies by some tens of MiB from run
to run with the order in which XLA's threads compile its kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def _reference(path: str) -> None:
    """Writes the plain case's 128x128 cubic Euler map (radians) to ``path``."""
    import jax

    from jaxmicro import synth
    from jaxmicro.orientations import quat_to_euler

    ids = synth.voronoi(jax.random.key(0), (128, 128), 60, regularity=0.5, stretch=(3.0, 1.0))
    quats = synth.grain_orientations(jax.random.key(1), 60)[ids]
    np.save(path, np.mod(np.asarray(quat_to_euler(quats), np.float32), 2 * np.pi))


def _run(args: list[str], out: str) -> dict:
    """One command in its own process: its record, its ``wait4`` peak and its wall time."""
    cmd = [sys.executable, "-m", "jaxmicro", "reconstruct", *args, "--out", out, "--overwrite"]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if proc.returncode:
            log.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{log.read()[-3000:]}")
    record = json.loads(open(os.path.join(out, "result.json")).read())
    return {
        "peak_rss_mb": record["peak_rss_mb"],
        "wait4_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "wall_s": wall,
        "compile_s": record["compile_seconds"],
        "final_loss": record["final_loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="plain,example")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()}, CPUs: {os.cpu_count()}")
    workdir = tempfile.mkdtemp()
    cases = {}
    for case in args.cases.split(","):
        if case == "plain":
            reference = os.path.join(workdir, "euler128.npy")
            _reference(reference)
            cases[case] = ["--reference", reference, "--max-iter", "100"]
        elif case == "example":
            cases[case] = ["--example"]
        else:
            raise SystemExit(f"--cases: unknown case {case!r}; expected plain or example")
    rows = []
    print("| case | run | peak RSS MiB (result.json) | wait4 MiB | wall s | compile s | loss |")
    print("|---|---|---|---|---|---|---|")
    for case, extra in cases.items():
        for i in range(args.repeats):
            row = _run(extra, os.path.join(workdir, f"{case}{i}"))
            rows.append((case, row))
            print(
                f"| {case} | {i + 1} | {row['peak_rss_mb']:.0f} | {row['wait4_mb']:.0f} | "
                f"{row['wall_s']:.0f} | {row['compile_s']:.1f} | {row['final_loss']:.4g} |",
                flush=True,
            )
    print()
    print("| case | peak RSS MiB: min | median | max |")
    print("|---|---|---|---|")
    for case in cases:
        peaks = [r["peak_rss_mb"] for c, r in rows if c == case]
        print(f"| {case} | {min(peaks):.0f} | {statistics.median(peaks):.0f} | {max(peaks):.0f} |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
