"""``jaxmicro data``: build synthetic microstructure datasets.

jaxmicro data make voronoi-rgb -n 8 --size 32 --out data/voronoi-rgb
jaxmicro data make potts -n 2 --size 48 --block 16 --sweeps 20 --out data/potts
jaxmicro data make rsa -n 16 --size 64 --out data/rsa
jaxmicro data info data/voronoi-rgb
"""

from __future__ import annotations

import argparse

# Command-line flags that override generator parameters: flag -> (parameter, type, nargs).
_PARAMS = {
    "--grains": ("grains", int, 2, "grain-count range MIN MAX (voronoi kinds)"),
    "--regularity": ("regularity", float, None, "seed regularity in [0, 1] (voronoi kinds)"),
    "--stretch": ("stretch", float, "+", "per-axis grain elongation (voronoi kinds)"),
    "--colors": ("n_colors", int, None, "colour budget (voronoi-rgb)"),
    "--sweeps": ("sweeps", int, None, "Monte Carlo sweeps (potts)"),
    "--kT": ("kT", float, None, "Potts temperature (potts)"),
    "--block": ("block", int, None, "block edge length (potts)"),
    "--n-boundary": ("n_boundary", int, None, "boundary blocks per volume (potts)"),
    "--initial-grains": (
        "initial_grains",
        int,
        None,
        "Voronoi grains of the start (potts; 0: every site its own grain)",
    ),
    "--radius": ("radius", float, None, "disk radius (rsa)"),
    "--volume-fraction": ("volume_fraction", float, None, "inclusion fraction (rsa, two-phase)"),
    "--correlation-length": ("correlation_length", float, None, "Gaussian field length"),
}


def register(subparsers) -> None:
    from jaxmicro.data._build import KINDS

    parser = subparsers.add_parser("data", help="build synthetic microstructure datasets")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = sub.add_parser("make", help="generate a dataset into sharded .npz files")
    make.add_argument("kind", choices=sorted(KINDS))
    make.add_argument(
        "-n",
        "--n",
        "--num-samples",
        dest="num_samples",
        type=int,
        default=8,
        help="samples (potts: simulations)",
    )
    make.add_argument("--size", type=int, default=32, help="edge length of each volume")
    make.add_argument("--dim", type=int, choices=(2, 3), default=None, help="2D or 3D")
    make.add_argument("--out", required=True, help="output directory")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--shard-size", type=int, default=64, help="samples per shard")
    make.add_argument("--am", action="store_true", help="potts: additive-manufacturing variant")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    for flag, (dest, kind, nargs, text) in _PARAMS.items():
        make.add_argument(flag, dest=dest, type=kind, nargs=nargs, default=None, help=text)
    make.set_defaults(func=run)
    info = sub.add_parser("info", help="summarize a dataset directory")
    info.add_argument("directory")
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxmicro.data._build import make_dataset, read_metadata

    if args.action == "info":
        meta = read_metadata(args.directory)
        print(
            f"{meta['kind']}: {meta['n_samples']} samples of shape {meta['sample_shape']} "
            f"({meta['dtype']}) in {len(meta['shards'])} shard(s); params {meta['params']}"
        )
        return 0
    params = {
        dest: tuple(value) if isinstance(value, list) else value
        for dest, *_ in _PARAMS.values()
        if (value := getattr(args, dest)) is not None
    }
    if args.am:
        params["am"] = True
    meta = make_dataset(
        args.kind,
        args.out,
        num_samples=args.num_samples,
        size=args.size,
        dim=args.dim,
        seed=args.seed,
        shard_size=args.shard_size,
        overwrite=args.overwrite,
        progress=not args.quiet,
        **params,
    )
    print(f"wrote {meta['n_samples']} samples to {args.out} ({len(meta['shards'])} shard(s))")
    return 0
