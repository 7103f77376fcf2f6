"""Arguments shared by the commands that sample a trained model: ``--model`` or ``--checkpoint``."""

from __future__ import annotations


def add_model_args(parser) -> None:
    """Adds ``--model NAME | --checkpoint DIR``, ``--step`` and ``--raw`` to ``parser``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a shipped model (see `jaxmicro models`)")
    source.add_argument("--checkpoint", help="a run folder written by `jaxmicro train`")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    parser.add_argument("--raw", action="store_true", help="raw instead of EMA parameters")


def model_from_args(args, mesh=None):
    """The ``jaxmicro.train.Model`` named by the arguments."""
    from pathlib import Path

    from jaxmicro.train.model import load_model

    if args.checkpoint and not Path(args.checkpoint).is_dir():
        raise ValueError(f"--checkpoint: {args.checkpoint} is not a folder")
    source = args.model or args.checkpoint
    return load_model(source, step=args.step, ema=not args.raw, mesh=mesh)


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
