"""``jaxmicro lgd``: Local-Global Decomposition with a trained diffusion run and a reference."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lgd",
        help="generate fields with the statistics of a reference (Local-Global Decomposition)",
        description="Sample Gaussian random fields with the 1- and 2-point statistics of "
        "REFERENCE, noise them to level t0 and refine them with t0 reverse steps of a trained "
        "`jaxmicro train` run, with the 1-point correction (Buzzy et al. 2024). The reference "
        "must be in the units of the training data.",
    )
    parser.add_argument("--checkpoint", required=True, help="run folder written by jaxmicro train")
    parser.add_argument(
        "--reference",
        required=True,
        help=".npy field (*spatial, C), or (*spatial) for one channel",
    )
    parser.add_argument("--n", type=int, default=8, help="number of samples")
    parser.add_argument("--t0", type=int, default=300, help="start level of the diffusion")
    parser.add_argument("--no-renoise", action="store_true", help="seed with the field as is")
    parser.add_argument("--strength", type=float, default=1.0, help="1-point correction weight")
    parser.add_argument("--guidance", type=float, default=0.0, help="2-point guidance scale")
    parser.add_argument("--steps", type=int, default=None, help="sub-trajectory steps")
    parser.add_argument("--non-periodic", action="store_true", help="reference is not periodic")
    parser.add_argument("--symmetry", default=None, help="also write orientations (e.g. cubic)")
    parser.add_argument("--basis", choices=("rogsh", "shsh"), default="rogsh")
    parser.add_argument("--degrees", type=int, nargs="+", default=[8], help="SHSH degrees")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    parser.add_argument("--batch", type=int, default=8, help="samples per device call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import jax
    import jax.numpy as jnp
    import numpy as np
    from tqdm.auto import tqdm

    from jaxmicro.diffusion.posterior import eps_from_output, split_output
    from jaxmicro.lgd import lgd_orientations, lgd_sample
    from jaxmicro.train import make_schedule, model_from_state, restore_run, save_grid

    if args.n < 1 or args.batch < 1:
        raise ValueError(f"--n, --batch: expected positive counts, got {args.n}, {args.batch}")
    config, graphdef, state = restore_run(args.checkpoint, step=args.step)
    model = model_from_state(graphdef, state, ema=True)
    schedule = make_schedule(config, dtype=jnp.float32)
    reference = np.load(args.reference).astype(np.float32)
    if reference.ndim == len(config.data.shape):
        reference = reference[..., None]
    if reference.shape[-1] != config.model.in_channels:
        raise ValueError(
            f"--reference: expected {config.model.in_channels} channels (the model's), "
            f"got shape {reference.shape}"
        )

    def eps_fn(x, t):
        pred, _ = split_output(model(x, t), learned_variance=config.model.learned_variance)
        return eps_from_output(schedule, x, t, pred, parameterization=config.parameterization)

    options = {
        "t0": args.t0,
        "renoise": not args.no_renoise,
        "strength": args.strength,
        "guidance_scale": args.guidance,
        "num_steps": args.steps,
        "periodic": not args.non_periodic,
    }
    sample = jax.jit(
        lambda key, n: lgd_sample(key, eps_fn, schedule, reference, n, **options),
        static_argnums=1,
    )
    key = jax.random.key(args.seed)
    chunks = [
        np.asarray(sample(jax.random.fold_in(key, start), min(args.batch, args.n - start)))
        for start in tqdm(range(0, args.n, args.batch), desc="lgd")
    ]
    x = np.concatenate(chunks)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "samples.npy", x)
    save_grid(x[:64], out / "samples.png")
    written = [out / "samples.npy", out / "samples.png"]
    if args.symmetry:
        orientations = lgd_orientations(
            x, args.symmetry, basis=args.basis, degrees=tuple(args.degrees)
        )
        np.save(out / "orientations.npy", np.asarray(orientations))
        written.append(out / "orientations.npy")
    print(f"{x.shape[0]} samples {x.shape[1:]} -> " + ", ".join(str(p) for p in written))
    return 0
