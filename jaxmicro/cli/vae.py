"""``jaxmicro vae``: train the KL-VAE of latent diffusion, encode datasets, export the model."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "vae",
        help="train, export and apply the autoencoder of latent diffusion",
        description="The KL-VAE of latent diffusion (PolyCrysDiff §2.1): train it, encode a "
        "dataset to latents, export a self-contained copy.",
    )
    sub = parser.add_subparsers(dest="vae_command", metavar="SUBCOMMAND", required=True)

    train = sub.add_parser("train", help="train (or resume) a VAE run")
    train.add_argument(
        "--config",
        required=True,
        help="path/to/config.py:variant (get_config(variant) returns a VAETrainConfig)",
    )
    train.add_argument("--out", required=True, help="run folder (checkpoints, metrics, scale)")
    train.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --out"
    )
    train.add_argument(
        "--devices", type=int, default=None, help="devices for data parallelism (default: all)"
    )
    train.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="take at most this many steps now, checkpoint, and exit",
    )
    train.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first (multi-host runs)",
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=run_train)

    encode = sub.add_parser("encode", help="write the latents of a dataset (cached)")
    encode.add_argument("--vae", required=True, help="VAE run folder or exported folder")
    encode.add_argument("--data", required=True, help="dataset folder (jaxmicro data make)")
    encode.add_argument("--out", required=True, help="new folder for the latents dataset")
    encode.add_argument(
        "--representation",
        default="auto",
        help="sample -> field map: auto, identity, binary, boundaries, grain-values",
    )
    encode.add_argument("--batch-size", type=int, default=8, help="fields per encoder call")
    encode.add_argument(
        "--overwrite", action="store_true", help="replace what --out holds (another dataset)"
    )
    encode.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    encode.set_defaults(func=run_encode)

    export = sub.add_parser("export", help="write a self-contained autoencoder folder")
    export.add_argument("--run", required=True, help="VAE run folder")
    export.add_argument("--dest", required=True, help="new folder (vae_config.json, params.npz)")
    export.add_argument("--overwrite", action="store_true", help="replace what --dest holds")
    export.set_defaults(func=run_export)


def run_train(args: argparse.Namespace) -> int:
    from jaxmicro.train.autoencoder import fit_vae, load_vae_experiment_config
    from jaxmicro.train.parallel import initialize_distributed

    initialize_distributed(args.distributed)
    config = load_vae_experiment_config(args.config)
    records = fit_vae(
        config,
        args.out,
        resume=args.resume,
        num_devices=args.devices,
        stop_after=args.stop_after,
        progress=not args.no_progress,
    )
    if records:
        last = records[-1]
        print(f"step {last['step']}: loss {last['loss']:.5f} (mse {last['mse']:.5f}) -> {args.out}")
    return 0


def run_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from jaxmicro.train.autoencoder import encode_dataset, load_autoencoder

    meta = encode_dataset(
        load_autoencoder(args.vae),
        args.data,
        args.out,
        representation=args.representation,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    shape = "x".join(str(s) for s in meta["sample_shape"])
    stats = ", ".join(
        f"{name} {' '.join(f'{v:.4g}' for v in np.atleast_1d(meta.get(name, 0.0)))}"
        for name in ("shift", "scale")
    )
    print(f"{meta['n_samples']} latents of shape {shape} ({stats}) -> {args.out}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from jaxmicro.train.autoencoder import export_autoencoder

    dest = export_autoencoder(args.run, args.dest, overwrite=args.overwrite)
    print(f"autoencoder -> {dest}")
    return 0
