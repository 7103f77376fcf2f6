"""``jaxmicro sample``: draw fields from a trained diffusion run (PNG grid and .npy)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="sample a trained diffusion model",
        description="Draw samples from the EMA parameters of a `jaxmicro train` run, batched and "
        "sharded over the available devices.",
    )
    parser.add_argument("--checkpoint", required=True, help="run folder written by jaxmicro train")
    parser.add_argument("--n", type=int, default=16, help="number of samples")
    parser.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM stochasticity")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    parser.add_argument("--raw", action="store_true", help="use raw instead of EMA parameters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch",
        type=int,
        default=64,
        help="samples per device call (rounded to a multiple of the devices)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import jax
    import numpy as np
    from tqdm.auto import tqdm

    from jaxmicro.train import batch_mesh, generate, model_from_state, restore_run, save_grid

    if args.n < 1:
        raise ValueError(f"--n: expected a positive number of samples, got {args.n}")
    mesh = batch_mesh()
    config, graphdef, state = restore_run(args.checkpoint, step=args.step, mesh=mesh)
    model = model_from_state(graphdef, state, ema=not args.raw)
    key = jax.random.key(args.seed)
    chunks = []
    for start in tqdm(range(0, args.n, args.batch), desc="sampling"):
        n = min(args.batch, args.n - start)
        chunks.append(
            generate(
                jax.random.fold_in(key, start),
                model,
                config,
                n,
                sampler=args.sampler,
                steps=args.steps,
                eta=args.eta,
                mesh=mesh,
            )
        )
    x = np.concatenate(chunks)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "samples.npy", x)
    save_grid(x[:64], out / "samples.png")
    print(f"{x.shape[0]} samples {x.shape[1:]} -> {out / 'samples.npy'}, {out / 'samples.png'}")
    return 0
