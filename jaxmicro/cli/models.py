"""``jaxmicro models``: the pretrained models shipped with the package."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the pretrained models shipped with the package",
        description="List the shipped models (use one with --model NAME in sample, outpaint "
        "and lgd): name, paper, what it generates and its measured figures.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from jaxmicro.pretrained import list_models

    models = list_models()
    if args.json:
        print(json.dumps(models, indent=1))
        return 0
    if not models:
        print("no shipped models")
    for m in models:
        metrics = ", ".join(f"{k} {v}" for k, v in m.get("metrics", {}).items())
        print(f"{m['name']} ({m.get('paper', '?')}, {m['size_mb']} MB): {m.get('generates', '')}")
        if metrics:
            print(f"    measured: {metrics}")
        if m.get("command"):
            print(f"    try: {m['command']}")
    return 0
