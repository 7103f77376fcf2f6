"""``jaxmicro sample``: draw fields from a trained or shipped diffusion model (.npy, PNG grid)."""

from __future__ import annotations

import argparse

from jaxmicro.cli._model_args import (
    add_model_args,
    check_counts,
    init_distributed,
    model_from_args,
    parse_conditions,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="sample a trained diffusion model",
        description="Draw samples from the EMA parameters of a `jaxmicro train` run or a shipped "
        "model, batched and sharded over the available devices. Conditional models take "
        "physical values (--condition grain_count=120); without --condition they sample "
        "unconditionally. Latent models are decoded.",
    )
    add_model_args(parser)
    parser.add_argument(
        "-n", "--n", "--num-samples", dest="num_samples", type=int, default=16, help="samples"
    )
    parser.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument(
        "--eta",
        type=float,
        default=None,
        help="DDIM stochasticity (default: the shipped model's measured choice, else 0)",
    )
    parser.add_argument(
        "--condition",
        action="append",
        metavar="NAME=VALUE",
        help="a condition in physical units (repeat for several; class=K for a class label)",
    )
    parser.add_argument(
        "--guidance", type=float, default=None, help="classifier-free guidance scale (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="samples per device call (rounded to a multiple of the devices)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import jax
    import numpy as np

    check_counts(args)
    values, class_value = parse_conditions(args.condition)
    init_distributed(args)
    from jaxmicro.train import batch_mesh, generate, save_grid
    from jaxmicro.train.parallel import is_primary, prepare_output_dir_once

    out = prepare_output_dir_once(args.out, overwrite=args.overwrite, name="--out")
    mesh = batch_mesh()
    model = model_from_args(args, mesh)
    conditions = model.conditions(values, class_value)
    eta = model.ddim_eta if args.eta is None else args.eta
    if args.guidance is not None and conditions is None:
        raise ValueError("--guidance: classifier-free guidance needs --condition")
    x = generate(
        jax.random.key(args.seed),
        model,
        args.num_samples,
        sampler=args.sampler,
        steps=args.steps,
        eta=eta,
        conditions=conditions,
        guidance_scale=args.guidance,
        mesh=mesh,
        batch_size=args.batch_size,
        progress=True,
    )
    if not is_primary():  # every process holds all samples; process 0 writes them
        return 0
    np.save(out / "samples.npy", x)
    save_grid(x[:64], out / "samples.png")
    record = {
        "model": args.model or str(args.checkpoint),
        "num_samples": args.num_samples,
        "sampler": args.sampler,
        "steps": args.steps if args.sampler == "ddim" else model.config.num_diffusion_steps,
        "eta": eta if args.sampler == "ddim" else None,
        "conditions": {**values, **({"class": class_value} if class_value is not None else {})},
        "guidance": args.guidance,
        "seed": args.seed,
    }
    (out / "sample.json").write_text(json.dumps(record, indent=1))
    print(f"{x.shape[0]} samples {x.shape[1:]} -> {out / 'samples.npy'}, {out / 'samples.png'}")
    return 0
