"""Arguments shared by the commands: ``--model`` or ``--checkpoint``, and multi-process runs."""

from __future__ import annotations


def add_model_args(parser) -> None:
    """Adds ``--model NAME | --checkpoint DIR``, ``--step``, ``--raw`` and the multi-process
    options (``add_distributed_args``) to ``parser``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a shipped model (see `jaxmicro models`)")
    source.add_argument("--checkpoint", help="a run folder written by `jaxmicro train`")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    parser.add_argument("--raw", action="store_true", help="raw instead of EMA parameters")
    add_distributed_args(parser)


def model_from_args(args, mesh=None):
    """The ``jaxmicro.train.Model`` named by the arguments."""
    from pathlib import Path

    from jaxmicro.train.model import load_model

    if args.checkpoint and not Path(args.checkpoint).is_dir():
        raise ValueError(f"--checkpoint: {args.checkpoint} is not a folder")
    source = args.model or args.checkpoint
    return load_model(source, step=args.step, ema=not args.raw, mesh=mesh)


def check_counts(args) -> None:
    """Raises ``ValueError`` naming ``--num-samples`` or ``--batch-size`` unless positive."""
    for flag in ("--num-samples", "--batch-size"):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value < 1:
            raise ValueError(f"{flag}: expected a positive count, got {value}")


def parse_conditions(items) -> tuple[dict, int | None]:
    """``['grain_count=120', 'class=2']`` -> (scalar values, class value or None)."""
    values, class_value = {}, None
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--condition: expected NAME=VALUE, got {item!r}")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"--condition: {name} needs a number, got {text!r}") from None
        if name == "class":
            class_value = int(value)
        else:
            values[name] = value
    return values, class_value


def add_distributed_args(parser) -> None:
    """Adds ``--distributed`` and ``--coordinator/--num-processes/--process-id`` to ``parser``."""
    group = parser.add_argument_group(
        "multi-process runs", "see docs/multihost.md; `jaxmicro launch` sets these locally"
    )
    group.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run, detected from the cluster (SLURM, MPI, TPU)",
    )
    group.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    group.add_argument("--num-processes", type=int, help="number of processes (with --coordinator)")
    group.add_argument("--process-id", type=int, help="this process, 0..N-1 (with --coordinator)")


def init_distributed(args) -> bool:
    """Joins the run the arguments name (before any other JAX call); True with several processes.

    The standard output of processes other than 0 is discarded (process 0 reports); their errors
    still reach standard error.

    Raises:
        ValueError: naming the option (an incomplete or inconsistent set).
    """
    options = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(option is None for option in options):
        return False  # one process: leave jaxmicro.train (flax, orbax) unimported
    import jax

    from jaxmicro.train.parallel import initialize_distributed

    try:
        initialize_distributed(
            args.distributed,
            coordinator=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    except ValueError as err:
        name, _, rest = str(err).partition(":")
        raise ValueError(f"--{name.replace('_', '-')}:{rest}") from None
    if jax.process_index() != 0:
        import os
        import sys

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    return jax.process_count() > 1
