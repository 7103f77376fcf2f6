"""``jaxmicro launch``: run a command as N local processes of one multi-process JAX run.

    jaxmicro launch --processes 2 [--cpu-devices 2 | --gpus-per-process 1] -- train --config ...

Starts ``jaxmicro COMMAND ARGS --coordinator 127.0.0.1:PORT --num-processes N --process-id I``
for I = 0..N-1 (a free loopback port unless --port) and waits for all of them. One process per
GPU of a multi-GPU node (``--gpus-per-process 1`` gives each its own ``CUDA_VISIBLE_DEVICES``),
or several CPU processes with fake devices to try a multi-host run on one machine
(``--cpu-devices``). If one process fails, the others are stopped; the exit status is the first
failure's. Clusters start their processes themselves (docs/multihost.md).
"""

from __future__ import annotations

import argparse

COMMANDS = ("train", "sample", "outpaint", "lgd", "reconstruct")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "launch",
        help="run a command as N local processes of one multi-process run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--processes", type=int, required=True, help="number of processes N")
    parser.add_argument("--port", type=int, default=None, help="coordinator port (default: free)")
    devices = parser.add_mutually_exclusive_group()
    devices.add_argument(
        "--cpu-devices", type=int, help="run on CPU with this many fake devices per process"
    )
    devices.add_argument(
        "--gpus-per-process", type=int, help="give process I the GPUs I*G .. I*G+G-1"
    )
    parser.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="-- COMMAND ARGS..."
    )
    parser.set_defaults(func=run)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the coordinator's, when none is given)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_cpu_devices(xla_flags: str, count: int) -> str:
    """``XLA_FLAGS`` with its host device count set to ``count`` (other flags kept)."""
    name = "--xla_force_host_platform_device_count"
    flags = [f for f in xla_flags.split() if not f.startswith(name)]
    return " ".join([*flags, f"{name}={count}"])


def _environment(args, index: int) -> dict:
    import os

    env = dict(os.environ)
    if args.cpu_devices:
        env["JAX_PLATFORMS"] = "cpu"
        env["XLA_FLAGS"] = with_cpu_devices(env.get("XLA_FLAGS", ""), args.cpu_devices)
    if args.gpus_per_process:
        g = args.gpus_per_process
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(index * g + k) for k in range(g))
    return env


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys
    import time

    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command or command[0] not in COMMANDS:
        raise ValueError(f"command: expected -- COMMAND ARGS with COMMAND in {COMMANDS}")
    if "--coordinator" in command or "--distributed" in command:
        raise ValueError("command: launch sets --coordinator itself; leave it out")
    for name in ("processes", "cpu_devices", "gpus_per_process"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected a count >= 1, got {value}")
    port = args.port or free_port()
    procs = []
    for i in range(args.processes):
        flags = [f"--coordinator=127.0.0.1:{port}", f"--num-processes={args.processes}"]
        argv = [sys.executable, "-m", "jaxmicro", *command, *flags, f"--process-id={i}"]
        procs.append(subprocess.Popen(argv, env=_environment(args, i)))
    status = 0
    try:
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed:
                status = failed[0]
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        status = 130
    finally:
        for p in procs:  # only the processes started here
            if p.poll() is None and status:
                p.terminate()
        for p in procs:
            p.wait()
    if not status:
        status = next((p.returncode for p in procs if p.returncode), 0)
    return status
