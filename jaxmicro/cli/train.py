"""``jaxmicro train``: train a diffusion model from an experiment config."""

from __future__ import annotations

import argparse

from jaxmicro.cli._model_args import add_distributed_args, init_distributed


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a diffusion model",
        description="Train (or resume) a diffusion model described by an experiment config.",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="path/to/config.py:variant (the file defines get_config(variant))",
    )
    parser.add_argument("--out", required=True, help="run folder (checkpoints, metrics, samples)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --out"
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=None,
        help="number of devices for data parallelism (default: all)",
    )
    parser.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="take at most this many steps now, checkpoint, and exit",
    )
    add_distributed_args(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    init_distributed(args)
    from jaxmicro.train import fit, load_experiment_config
    from jaxmicro.train.parallel import is_primary

    config = load_experiment_config(args.config)
    records = fit(
        config,
        args.out,
        resume=args.resume,
        num_devices=args.devices,
        stop_after=args.stop_after,
        progress=not args.no_progress,
    )
    if records and is_primary():
        print(f"step {records[-1]['step']}: loss {records[-1]['loss']:.5f} -> {args.out}")
    return 0
