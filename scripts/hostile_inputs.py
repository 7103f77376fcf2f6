"""The hostile-input sweep of issue #19: every bad input of its list, run as a user runs it.

    python scripts/hostile_inputs.py [--work DIR]

Each command case runs as its own ``python -m jaxmicro ...`` process; library cases run here.
A case passes when the input is refused with exit code 2 (commands) or a ``ValueError`` /
``FloatingPointError`` (library) whose message names the argument, and no output file was
written. Prints one Markdown row per case: the input, the outcome, the first line of the
message. Needs the shipped ``lee-yun-fiber`` model (sample, evaluate) and about 3 minutes on 2
CPU cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _command(work: Path, name: str, args: list[str], expect: str, out: Path | None = None):
    done = subprocess.run(
        [sys.executable, "-m", "jaxmicro", *args], capture_output=True, text=True, cwd=work
    )
    message = (done.stderr.strip().splitlines() or [""])[-1]
    written = out is not None and out.exists() and any(out.iterdir())
    ok = (
        done.returncode == 2
        and expect in message
        and not written
        and "Traceback" not in done.stderr
    )
    return name, done.returncode, ok, message


def _library(name: str, fn, expect: str):
    try:
        fn()
    except (ValueError, FloatingPointError, TypeError) as err:
        return name, type(err).__name__, expect in str(err), str(err).splitlines()[0]
    return name, "no error", False, ""


def command_cases(work: Path) -> list:
    ref = work / "ref.npy"
    np.save(ref, (np.random.default_rng(0).random((24, 24)) > 0.5).astype(np.float32))
    np.save(work / "complex.npy", np.ones((8, 8), np.complex64))
    (work / "empty.npy").write_bytes(b"")
    (work / "text.npy").write_text("not an array\n")
    np.save(work / "nan.npy", np.full((16, 16, 1), np.nan, np.float32))
    (work / "file").write_text("a file, not a folder")
    used = work / "used"
    used.mkdir()
    (used / "other.txt").write_text("another run's file")
    (work / "x.txt").write_text("")
    ang = work / "deg.ang"
    from jaxmicro.io import EBSDMap, Phase, write_ang

    euler = np.random.default_rng(2).uniform(0.0, [360.0, 180.0, 360.0], (8, 8, 3))  # degrees
    cubic = Phase("Nickel", "m-3m", (3.52, 3.52, 3.52, 90.0, 90.0, 90.0))
    write_ang(ang, EBSDMap.from_euler(euler, np.ones((8, 8), np.int32), phases={1: cubic}))
    rec = ["reconstruct", "--reference"]
    sample = ["sample", "--model", "lee-yun-fiber"]
    cases = [
        ("reconstruct into a used folder", [*rec, str(ref), "--out", str(used)], "--out", None),
        (
            "data make into a used folder",
            ["data", "make", "rsa", "--out", str(used)],
            "already holds files",
            None,
        ),
        ("--out is a file", [*rec, str(ref), "--out", str(work / "file")], "--out", None),
        ("sample --eta nan", [*sample, "--eta", "nan", "--out", "o1"], "eta", work / "o1"),
        (
            "lgd with a NaN reference",
            [
                "lgd",
                "--model",
                "lee-yun-fiber",
                "--reference",
                str(work / "nan.npy"),
                "--out",
                "o2",
            ],
            "reference",
            work / "o2",
        ),  # fmt: skip
        (
            "complex .npy reference",
            [*rec, str(work / "complex.npy"), "--out", "o3"],
            "complex",
            work / "o3",
        ),
        (
            "max_lag 0",
            [*rec, str(ref), "--descriptors", "two_point:1:max_lag=0", "--out", "o4"],
            "max_lag",
            work / "o4",
        ),
        ("--window 0", [*rec, str(ref), "--window", "0", "--out", "o5"], "--window", work / "o5"),
        (".ang Euler angles in degrees", [*rec, str(ang), "--out", "o6"], "radians", work / "o6"),
        (
            "data make --grains 5 2",
            ["data", "make", "voronoi", "--grains", "5", "2", "--out", "o7"],
            "grains",
            work / "o7",
        ),
        (
            "data make --grains 0 0",
            ["data", "make", "voronoi", "--grains", "0", "0", "--out", "o8"],
            "grains",
            work / "o8",
        ),
        ("0-byte .npy", [*rec, str(work / "empty.npy"), "--out", "o9"], "empty", work / "o9"),
        (
            "non-NumPy .npy",
            [*rec, str(work / "text.npy"), "--out", "o10"],
            "reference",
            work / "o10",
        ),
        (
            "--shape too large for memory",
            [*rec, str(ref), "--shape", "100000,100000,100000", "--out", "o11"],
            "GiB",
            work / "o11",
        ),  # fmt: skip
        (
            "--descriptors two_point:1:foo=3",
            [*rec, str(ref), "--descriptors", "two_point:1:foo=3", "--out", "o12"],
            "foo",
            work / "o12",
        ),  # fmt: skip
        (
            "--config x.txt:a",
            ["train", "--config", str(work / "x.txt") + ":a", "--out", "o13"],
            "config",
            work / "o13",
        ),
        (
            "evaluate: missing input",
            ["evaluate", "--generated", "missing.npy", "--reference", str(ref), "--out", "o14"],
            "--generated",
            work / "o14",
        ),
        (
            "evaluate: 0-byte input",
            [
                "evaluate",
                "--generated",
                str(work / "empty.npy"),
                "--reference",
                str(ref),
                "--out",
                "o15",
            ],
            "empty",
            work / "o15",
        ),  # fmt: skip
        (
            "lgd: 0-byte reference",
            [
                "lgd",
                "--model",
                "lee-yun-fiber",
                "--reference",
                str(work / "empty.npy"),
                "--out",
                "o16",
            ],
            "empty",
            work / "o16",
        ),  # fmt: skip
        (
            "sample --batch-size 0",
            [*sample, "--batch-size", "0", "--out", "o17"],
            "--batch-size",
            work / "o17",
        ),
        (
            "sample --step of a shipped model",
            [*sample, "--step", "123456", "--out", "o18"],
            "step",
            work / "o18",
        ),
    ]
    return [_command(work, *case) for case in cases]


def library_cases() -> list:
    import jax
    import jax.numpy as jnp

    from jaxmicro import descriptors, reconstruct, synth

    key = jax.random.key(0)
    labels = jnp.asarray(np.random.default_rng(0).integers(0, 4, (8, 8, 1)))  # grain labels
    spec = reconstruct.Spec((reconstruct.descriptor("two_point", max_lag=2),))
    field = np.random.default_rng(1).random((8, 8, 1)).astype(np.float32)
    return [
        _library(
            "voronoi: more grains than voxels", lambda: synth.voronoi(key, (4, 4), 100), "n_grains"
        ),  # fmt: skip
        _library(
            "voronoi: a non-integer count", lambda: synth.voronoi(key, (8, 8), 3.5), "n_grains"
        ),  # fmt: skip
        _library("two_point on integer labels", lambda: descriptors.two_point(labels), "labels"),
        _library(
            "two_point on complex input",
            lambda: descriptors.two_point(jnp.ones((8, 8, 1), jnp.complex64)),
            "complex",
        ),
        _library(
            "reconstruct: max_iter=0",
            lambda: reconstruct.reconstruct(
                key, reconstruct.characterize(field, spec), (8, 8), spec, max_iter=0
            ),
            "max_iter",
        ),
        _library(
            "reconstruct: a raw array as target",
            lambda: reconstruct.reconstruct(key, field, (8, 8), spec),
            "target",
        ),
        _library(
            "reconstruct: a target of another spec",
            lambda: reconstruct.reconstruct(
                key,
                reconstruct.characterize(field, spec),
                (8, 8),
                reconstruct.Spec((reconstruct.descriptor("two_point", max_lag=3),)),
            ),
            "target",
        ),  # fmt: skip
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = command_cases(work) + library_cases()
    print("| input | outcome | refused, named, nothing written | message |")
    print("|---|---|---|---|")
    for name, code, ok, message in rows:
        print(f"| {name} | {code} | {'yes' if ok else 'NO'} | {message[:110]} |")
    failed = [r[0] for r in rows if not r[2]]
    print(
        f"\n{len(rows) - len(failed)} of {len(rows)} refused as they should be", *failed, sep="\n"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
