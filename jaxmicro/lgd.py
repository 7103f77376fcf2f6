"""Local-Global Decomposition: statistically conditioned generation with a diffusion model.

The pipeline of Buzzy, Robertson & Kalidindi (rogsh-local-global, Fig. 1):

1. targets: the 1-point (``omega``) and 2-point statistics of a reference harmonic-coefficient
   field (ROGSH or SHSH features per voxel, or phase indicators);
2. global model: a multi-output Gaussian random field with exactly these statistics
   (``jaxmicro.fields``);
3. the field is noised to level ``t0`` of the diffusion (or used as it is) and refined by a
   truncated reverse diffusion of ``t0`` steps whose denoiser carries the 1-point correction
   (eq. 6), optionally also 2-point gradient guidance;
4. the refined coefficient field is mapped back to orientations by the harmonics inverse.

The denoiser must work in the units of the reference (train it on patches of the same field).

References:
    Buzzy, Robertson & Kalidindi, Acta Mater. 2024 (rogsh-local-global) §3.3 eqs. 5-8, §5.1
    (t0 = 300 of 1000 steps); Robertson & Kalidindi, Acta Mater. 232 (2022) 117927.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxmicro import _validate, descriptors, fields
from jaxmicro.diffusion.guidance import EpsFn, one_point_correction, two_point_guidance
from jaxmicro.diffusion.repaint import path_sample, repaint_schedule
from jaxmicro.diffusion.schedule import Schedule

__all__ = ["lgd_orientations", "lgd_run", "lgd_sample"]


def lgd_sample(
    key: jax.Array,
    eps_fn: EpsFn,
    schedule: Schedule,
    reference,
    num_samples: int,
    *,
    t0: int = 300,
    renoise: bool = True,
    strength: float = 1.0,
    guidance_scale: float = 0.0,
    num_steps: int | None = None,
    periodic: bool = True,
    eta: float = 1.0,
    shape: Sequence[int] | None = None,
) -> jax.Array:
    """Generates coefficient fields with the 1- and 2-point statistics of ``reference``.

    Args:
        key: PRNG key.
        eps_fn: denoiser ``eps_fn(x, t)``, ``x`` ``(B, *spatial, C)``, ``t`` ``(B,)`` int steps.
        schedule: its diffusion schedule (``T`` steps).
        reference: ``(*spatial, C)`` reference field (2 or 3 spatial axes); samples have its shape.
        num_samples: number of fields (static).
        t0: level at which the diffusion takes over: the random field is noised to
            ``q(x_t0 | field)`` (schedule step ``t0 - 1``) and ``t0`` reverse steps follow
            (``1 <= t0 <= T``; the paper used 300 of 1000).
        renoise: if False, the random field itself is taken as ``x_t0`` (the paper's wording:
            the field replaces the initial noise sample of the truncated process).
        strength: weight of the 1-point correction (``one_point_correction``; 0 = off).
        guidance_scale: weight of 2-point gradient guidance toward the reference's full 2-point
            map (``two_point_guidance``; 0 = off).
        num_steps: run the truncated diffusion on a uniform sub-trajectory of this many steps.
        periodic: statistics and random field periodic (see ``fields.grf_from_reference``).
        eta: DDIM stochasticity of the reverse steps (1 = DDPM).
        shape: spatial shape of the samples, at most the reference's (default: the
            reference's); 2-point guidance needs the reference's shape.

    Returns:
        ``(num_samples, *shape, C)`` refined fields, dtype of ``reference``.

    References:
        rogsh-local-global §3.3 eqs. 5-8 and §5.1.
    """
    _validate.check_ndim(reference, "reference", (3, 4), "(*spatial, C) with 2 or 3 spatial axes")
    m = _validate.as_float_array(reference, "reference")
    if not 1 <= int(t0) <= schedule.num_steps:
        raise ValueError(f"t0: expected a level in [1, {schedule.num_steps}], got {t0}")
    spatial = m.shape[:-1] if shape is None else tuple(int(n) for n in shape)
    if not _is_zero(guidance_scale) and spatial != m.shape[:-1]:
        raise ValueError(f"shape: 2-point guidance needs the reference's shape {m.shape[:-1]}")
    field_key, noise_key, path_key = jax.random.split(key, 3)
    x = fields.grf_from_reference(field_key, m, num_samples, periodic=periodic, shape=spatial)
    if renoise:
        ab = schedule.alpha_bars[int(t0) - 1].astype(m.dtype)
        z = jax.vmap(lambda k: jax.random.normal(k, x.shape[1:], m.dtype))(
            jax.random.split(noise_key, int(num_samples))
        )
        x = jnp.sqrt(ab) * x + jnp.sqrt(1 - ab) * z
    denoiser = eps_fn
    if not _is_zero(guidance_scale):
        target = descriptors.two_point(m, periodic=periodic)
        kwargs = {"periodic": periodic}
        denoiser = two_point_guidance(
            denoiser, schedule, target, scale=guidance_scale, descriptor_kwargs=kwargs
        )
    if not _is_zero(strength):
        denoiser = one_point_correction(
            denoiser, schedule, descriptors.one_point(m), strength=strength
        )
    levels = repaint_schedule(int(t0), resample=1, plain_tail=0, num_steps=num_steps)
    return path_sample(path_key, denoiser, schedule, x, levels, eta=eta)


def lgd_orientations(
    field,
    symmetry: str,
    *,
    basis: str = "rogsh",
    degrees: Sequence[int] = (8,),
) -> jax.Array:
    """Maps harmonic-coefficient fields back to orientations (the last step of LGD).

    Args:
        field: ``(..., C)`` coefficients, e.g. the output of ``lgd_sample``.
        symmetry: crystal symmetry, as accepted by ``jaxmicro.harmonics``.
        basis: ``'rogsh'`` (reduced-order GSH of the local-global paper; returns Bunge Euler
            angles ``(..., 3)`` in radians via ``harmonics.rogsh_to_euler``) or ``'shsh'``
            (symmetrized hyperspherical harmonics; returns unit quaternions ``(..., 4)``,
            scalar first, via ``harmonics.shsh_to_quat``).
        degrees: the SHSH degrees of ``field`` (``basis='shsh'`` only).

    Returns:
        Orientations per voxel, see ``basis``.

    References:
        rogsh-local-global §4.2 and appendix B; mcr-shsh §2.2.
    """
    from jaxmicro import harmonics

    _validate.check_choice(basis, "basis", ("rogsh", "shsh"))
    if basis == "rogsh":
        return harmonics.rogsh_to_euler(field, symmetry)
    return harmonics.shsh_to_quat(field, symmetry, tuple(degrees))


def lgd_run(
    model,
    reference,
    num_samples: int,
    *,
    seed: int = 0,
    batch_size: int = 8,
    symmetry: str | None = None,
    basis: str = "rogsh",
    degrees: Sequence[int] = (8,),
    progress: bool = True,
    **options,
) -> dict:
    """Local-Global Decomposition with a trained ``jaxmicro.train.Model``, in batches.

    Args:
        model: the denoiser's model (read through ``Model.eps_fn``, so any parameterization and
            a learned variance work).
        reference: ``(*spatial, C)`` field in the units of the training data, or ``(*spatial)``
            for one channel.
        num_samples: number of samples.
        seed: batch ``i`` starting at sample ``s`` uses ``fold_in(key(seed), s)``.
        batch_size: samples per jitted call (a last, smaller chunk is drawn as a full batch and
            cut, so one compilation serves all chunks). In a multi-process run the batches are
            dealt out to the processes (contiguous runs) and gathered back, so every process
            returns the samples of a one-process run (every process must call this alike).
        symmetry: also map the samples to orientations for this crystal symmetry
            (``lgd_orientations``, then unit quaternions for every basis).
        basis, degrees: the harmonic basis of the fields (see ``lgd_orientations``).
        progress: show a progress bar.
        **options: keyword arguments of ``lgd_sample`` (t0, renoise, strength, guidance_scale,
            num_steps, periodic, eta, shape). One compiled sampler serves every model of one
            network structure and config, every reference of one shape and every ``strength``
            (they are arguments); the other options are compiled in.

    Returns:
        ``{'samples': (n, *shape, C) float32}``, plus with ``symmetry`` ``'orientations'``
        ``(n, *shape, 4)`` float32 unit quaternions (scalar first, P = -1, ``q0 >= 0``).

    Raises:
        ValueError: a non-finite reference, channels unlike the model's, bad counts, or
            non-finite samples.
    """
    import numpy as np
    from flax import nnx
    from tqdm.auto import tqdm

    from jaxmicro.train.sampling import config_key

    ref = np.asarray(reference, np.float32)
    if ref.ndim == len(model.config.data.shape):
        ref = ref[..., None]
    if ref.shape[-1] != model.config.model.in_channels:
        raise ValueError(
            f"reference: expected {model.config.model.in_channels} channels (the model's), "
            f"got shape {ref.shape}"
        )
    _validate.check_finite(ref, "reference")
    if int(num_samples) < 1 or int(batch_size) < 1:
        raise ValueError(
            f"num_samples, batch_size: expected positive counts, got {num_samples}, {batch_size}"
        )
    strength = float(options.pop("strength", 1.0))
    unknown = set(options) - _STATIC_OPTIONS
    if unknown:
        raise TypeError(f"lgd_run: unexpected options {sorted(unknown)}")
    if "shape" in options and options["shape"] is not None:
        options["shape"] = tuple(int(v) for v in options["shape"])
    graphdef, state = nnx.split(model.network)
    run = _compiled_lgd(
        graphdef,
        config_key(model.config),
        tuple(sorted(options.items())),
    )

    size = min(int(batch_size), int(num_samples))

    def sample(key, n):
        # every chunk draws a full batch (one compilation), the last one keeps n of them
        return np.asarray(run(state, ref, np.float32(strength), key, size))[:n]

    from jaxmicro.train.parallel import gather_shares, is_primary, process_share

    key = jax.random.key(seed)
    starts = range(0, num_samples, batch_size)
    # Chunks are independent: each process draws a contiguous run of them on its own devices.
    mine = [starts[c] for c in process_share(len(starts))]
    chunks = [
        sample(jax.random.fold_in(key, s), min(batch_size, num_samples - s))
        for s in tqdm(mine, desc="lgd", disable=not progress or not is_primary())
    ]
    x = np.concatenate(gather_shares(chunks, len(starts))).astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise FloatingPointError("lgd: the sampler produced non-finite values")
    result = {"samples": x}
    if symmetry:
        from jaxmicro.orientations import euler_to_quat

        o = lgd_orientations(x, symmetry, basis=basis, degrees=tuple(degrees))
        if basis == "rogsh":
            o = euler_to_quat(o)
        result["orientations"] = np.asarray(o, np.float32)
    return result


_STATIC_OPTIONS = {"t0", "renoise", "guidance_scale", "num_steps", "periodic", "eta", "shape"}


@functools.cache
def _compiled_lgd(graphdef, config_json: str, options: tuple):
    """The jitted ``run(network_state, reference, strength, key, n)`` of one model structure,
    config and set of static options: parameters, reference and the 1-point weight are
    arguments, so models of one structure, references of one shape and both weightings share
    one compilation (``n`` is static)."""
    from jaxmicro.train.sampling import network_eps_fn

    def run(state, reference, strength, key, n):
        eps_fn, schedule = network_eps_fn(graphdef, state, config_json)
        return lgd_sample(key, eps_fn, schedule, reference, n, strength=strength, **dict(options))

    return jax.jit(run, static_argnums=4)


def _is_zero(weight) -> bool:
    """True for a concrete zero weight (the wrapper is skipped); traced weights are kept."""
    return _validate.is_concrete(weight) and float(weight) == 0.0
