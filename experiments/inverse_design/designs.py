"""The three inverse designs as functions of a config; every solve is a ``jaxmicro`` call.

- :func:`two_phase_design`: ``reconstruct`` with ``extra_loss = w (log(k_00/k_last) - log
  target)^2 + g mean(m (1 - m))`` next to S2 and mean variation, then a full-resolution
  continuation with a larger ``g``; against the plain run (``w = 0``) and the reference family.
- :func:`texture_design`: per-grain quaternions -> ``rotate_stiffness`` -> ``effective_stiffness``
  -> ``E_z = 1 / S_33``, minimized by ``minimize_lbfgsb`` (unbounded: L-BFGS).
- :func:`guided_sampler`: DDIM samples of a trained model with ``property_guidance`` toward a
  target ``log(k_00/k_11)``, one compilation for every guidance scale.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmicro import descriptors, properties
from jaxmicro.diffusion import ddim_sample, property_guidance
from jaxmicro.orientations import quat_to_matrix, random_quats
from jaxmicro.reconstruct import Spec, characterize, descriptor, loss_terms, reconstruct
from jaxmicro.reconstruct.lbfgsb import minimize_lbfgsb
from jaxmicro.synth import rsa_disks, voronoi

# ---- shared --------------------------------------------------------------------------------------


def conductivity(m, contrast, *, tol, maxiter):
    """Effective conductivity ``(d, d)`` and ``SolveInfo`` of a phase-1 fraction field ``m``.

    ``m``: ``(*spatial)`` in [0, 1]; local conductivity ``(1 - m) k_0 + m k_1`` (``mix_phases``).
    """
    moduli = jnp.asarray(contrast, m.dtype)
    return properties.effective_conductivity_with_info(
        properties.mix_phases(m[..., None], moduli), tol=tol, maxiter=maxiter
    )


def log_ratio(m, contrast, *, tol, maxiter):
    """``log(k_00 / k_last)`` of the effective conductivity of ``m`` (``(*spatial)`` in [0, 1])."""
    k, _ = conductivity(m, contrast, tol=tol, maxiter=maxiter)
    return jnp.log(k[0, 0] / k[-1, -1])


def timed(fn, *args, repeats: int = 3) -> tuple[object, float]:
    """``(fn(*args), best wall seconds of `repeats` calls)``, after one untimed call."""
    out = jax.block_until_ready(fn(*args))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return out, best


# ---- 1. two-phase: target conductivity anisotropy with plausible S2 ------------------------------


def anisotropic_family(key, n: int, shape, lengths, fraction) -> np.ndarray:
    """``n`` thresholded Gaussian fields ``(n, *shape)`` in {0, 1}, phase-1 fraction exact.

    White noise filtered by the Gaussian covariance ``exp(-sum_a r_a^2 / (2 l_a^2))`` (in
    Fourier space), thresholded at each field's own ``1 - fraction`` quantile.
    """
    freqs = jnp.meshgrid(*[jnp.fft.fftfreq(s) for s in shape], indexing="ij")
    filt = jnp.exp(
        -sum((2 * jnp.pi * f * l) ** 2 for f, l in zip(freqs, lengths, strict=True)) / 4.0
    )

    def one(k):
        noise = jax.random.normal(k, shape)
        g = jnp.real(jnp.fft.ifftn(jnp.fft.fftn(noise) * filt))
        return (g > jnp.quantile(g, 1.0 - fraction)).astype(jnp.int32)

    return np.asarray(jax.vmap(one)(jax.random.split(key, n)))


def two_phase_spec(cfg) -> Spec:
    return Spec(
        (
            descriptor("two_point", 1.0, max_lag=cfg.tp_max_lag),
            descriptor("mean_variation", cfg.tp_variation),
        ),
        representation="phases",
        levels=cfg.tp_levels,
    )


def two_phase_design(cfg) -> dict:
    """Runs design 1; returns numbers (``'rows'``, one per run) and arrays (``'fields'``)."""
    key = jax.random.key(cfg.seed)
    shape = tuple(cfg.tp_shape)
    family = anisotropic_family(
        jax.random.fold_in(key, 1), cfg.tp_family + 1, shape, cfg.tp_lengths, cfg.tp_fraction
    )
    reference = family[0].astype(np.float64)[..., None]
    spec = two_phase_spec(cfg)
    target = characterize(reference, spec)
    solve = dict(tol=cfg.cg_tol, maxiter=cfg.cg_maxiter)
    contrast = tuple(cfg.contrast)

    def describe(m):
        """Ratio, S2 and MV errors, volume fraction and CG info of a field ``(*shape)``."""
        k, info = conductivity(jnp.asarray(m), contrast, **solve)
        errors = loss_terms(jnp.asarray(m)[..., None], target, spec)
        return {
            "ratio": float(k[0, 0] / k[-1, -1]),
            "k_diag": [float(v) for v in jnp.diag(k)],
            "s2_error": float(errors["two_point"]),
            "mv_error": float(errors["mean_variation"]),
            "volume_fraction": float(np.mean(m)),
            "cg_iterations": [int(i) for i in np.asarray(info.iterations)],
            "converged": bool(np.all(np.asarray(info.converged))),
        }

    family_rows = [describe(f.astype(np.float64)) for f in family]

    # Time of one solve (value) and of value + gradient, at full resolution.
    m0 = jnp.asarray(reference[..., 0])
    value = jax.jit(lambda m: log_ratio(m, contrast, **solve))
    grad = jax.jit(jax.value_and_grad(lambda m: log_ratio(m, contrast, **solve)))
    _, solve_s = timed(value, m0)
    _, grad_s = timed(grad, m0)

    # One compilation serves the plain run (w = 0) and every target: weight and goal are traced.
    @jax.jit
    def design(k, w, log_goal):
        def extra(grey_weight):
            def term(field):
                m = field[..., 0]
                grey = grey_weight * jnp.mean(m * (1.0 - m))
                return w * (log_ratio(m, contrast, **solve) - log_goal) ** 2 + grey

            return term

        first = reconstruct(
            k, target, shape, spec, max_iter=cfg.tp_max_iter, extra_loss=extra(cfg.tp_grey_weight)
        )
        if not cfg.tp_polish_iter:
            return first
        # Continuation at full resolution with a stronger push to {0, 1} (as SIMP raises its
        # penalty): the soft design is near the target, the polish makes it two-phase.
        polish = reconstruct(
            k,
            target,
            shape,
            dataclasses.replace(spec, levels=1),
            max_iter=cfg.tp_polish_iter,
            init=first.field,
            extra_loss=extra(cfg.tp_polish_grey),
        )
        return polish._replace(
            loss_history=jnp.concatenate([first.loss_history, polish.loss_history]),
            initial_loss=first.initial_loss,
            n_evaluations=first.n_evaluations + polish.n_evaluations,
        )

    start_key = jax.random.fold_in(key, 2)
    real = jnp.result_type(float)
    t0 = time.perf_counter()
    compiled = design.lower(start_key, jnp.zeros((), real), jnp.zeros((), real)).compile()
    compile_s = time.perf_counter() - t0
    results = {}
    runs = [("plain", None)] + [(f"target {t:g}", t) for t in cfg.tp_targets]
    for name, goal in runs:
        w = 0.0 if goal is None else cfg.tp_property_weight
        log_goal = 0.0 if goal is None else math.log(goal)
        t0 = time.perf_counter()
        res = jax.block_until_ready(
            compiled(start_key, jnp.asarray(w, real), jnp.asarray(log_goal, real))
        )
        design_s = time.perf_counter() - t0
        soft = np.asarray(res.field[..., 0], np.float64)
        binary = (soft > 0.5).astype(np.float64)
        row = {
            "run": name,
            "target": goal,
            "soft": describe(soft),
            "binary": describe(binary),
            "final_loss": float(res.final_loss),
            "evaluations": int(res.n_evaluations),
            "compile_seconds": round(compile_s, 2),
            "design_seconds": round(design_s, 2),
            "seconds_per_evaluation": design_s / max(int(res.n_evaluations), 1),
            "grey_fraction": float(np.mean((soft > 0.05) & (soft < 0.95))),
        }
        if goal is not None:
            row["binary"]["error"] = row["binary"]["ratio"] / goal - 1.0
            row["soft"]["error"] = row["soft"]["ratio"] / goal - 1.0
            row["reached"] = abs(row["binary"]["error"]) <= cfg.tp_tolerance
        results[name] = {"row": row, "field": soft, "history": np.asarray(res.loss_history)}
    ratios = np.array([r["ratio"] for r in family_rows])
    floor = np.array([r["s2_error"] for r in family_rows[1:]])
    return {
        "shape": list(shape),
        "contrast": list(contrast),
        "ratio_axes": [0, len(shape) - 1],
        "family": {
            "ratio_mean": float(ratios.mean()),
            "ratio_sd": float(ratios.std(ddof=1)) if len(ratios) > 1 else 0.0,
            "reference_ratio": float(ratios[0]),
            "s2_error_floor_median": float(np.median(floor)) if len(floor) else None,
            "s2_error_floor_max": float(floor.max()) if len(floor) else None,
            "members": len(family),
        },
        "solve_seconds": solve_s,
        "value_and_grad_seconds": grad_s,
        "rows": [r["row"] for r in results.values()],
        "fields": {"reference": family[0], **{n: r["field"] for n, r in results.items()}},
        "histories": {n: r["history"] for n, r in results.items()},
    }


# ---- 2. polycrystal: texture for a target Young's modulus along z --------------------------------


def young_modulus_z(c_eff):
    """Young's modulus along axis 2 of a Mandel stiffness ``(6, 6)``: ``1 / S_33``."""
    return 1.0 / jnp.linalg.inv(c_eff)[2, 2]


def grain_stiffness(params, ids, crystal, *, tol, maxiter):
    """Effective stiffness and ``SolveInfo`` of grains ``ids`` with orientations ``params``.

    ``params``: ``(n_grains, 4)`` unnormalized quaternions (the design variables); ``ids``: grain
    ids ``(n1, n2, n3)``; ``crystal``: ``(6, 6)`` Mandel single-crystal stiffness.
    """
    q = params / jnp.linalg.norm(params, axis=-1, keepdims=True)
    return properties.effective_stiffness_with_info(
        properties.rotate_stiffness(crystal, q[ids]), tol=tol, maxiter=maxiter
    )


def direction_angles(q) -> dict:
    """Mean angle (degrees) of the crystal direction along sample z to <100> and to <111>."""
    d = np.abs(np.asarray(quat_to_matrix(jnp.asarray(q)))[..., :, 2])  # g e_z: crystal frame
    to100 = np.degrees(np.arccos(np.clip(d.max(-1), -1, 1)))
    to111 = np.degrees(np.arccos(np.clip(d.sum(-1) / np.sqrt(3), -1, 1)))
    return {"to_100": float(to100.mean()), "to_111": float(to111.mean())}


def texture_design(cfg) -> dict:
    """Runs design 2 for every target of ``cfg.pc_targets``."""
    key = jax.random.key(cfg.seed)
    shape = tuple(cfg.pc_shape)
    ids = voronoi(jax.random.fold_in(key, 3), shape, cfg.pc_grains, regularity=0.5)
    q_start = random_quats(jax.random.fold_in(key, 4), (cfg.pc_grains,))
    crystal = properties.cubic_stiffness(*[jnp.asarray(c, q_start.dtype) for c in cfg.pc_constants])
    solve = dict(tol=cfg.cg_tol, maxiter=cfg.cg_maxiter)

    def stiffness(params):
        return grain_stiffness(params, ids, crystal, **solve)

    def young(params):
        return young_modulus_z(stiffness(params)[0])

    young_jit = jax.jit(young)
    _, solve_s = timed(young_jit, q_start)
    _, grad_s = timed(jax.jit(jax.value_and_grad(young)), q_start)
    e_start = float(young_jit(q_start))
    # Bounds for context: uniform-strain (Voigt) and uniform-stress (Reuss) averages of the
    # start texture (E_z of the mean stiffness and of the inverse mean compliance).
    c_local = properties.rotate_stiffness(crystal, q_start[ids])
    voigt = float(young_modulus_z(jnp.mean(c_local, axis=tuple(range(3)))))
    reuss = float(1.0 / jnp.mean(jnp.linalg.inv(c_local), axis=tuple(range(3)))[2, 2])

    # One compilation serves every target (traced).
    @jax.jit
    def design(x0, goal):
        def objective(params):
            return (young(params) / goal - 1.0) ** 2

        return minimize_lbfgsb(objective, x0, max_iter=cfg.pc_max_iter, gtol=1e-12, ftol=1e-14)

    t0 = time.perf_counter()
    compiled = design.lower(q_start, jnp.zeros((), q_start.dtype)).compile()
    compile_s = time.perf_counter() - t0
    rows, finals = [], {}
    for goal in cfg.pc_targets:
        t0 = time.perf_counter()
        sol = jax.block_until_ready(compiled(q_start, jnp.asarray(goal, q_start.dtype)))
        design_s = time.perf_counter() - t0
        c_eff, info = stiffness(sol.x)
        e_final = float(young_modulus_z(c_eff))
        history = np.asarray(sol.history)
        rel = np.sqrt(np.maximum(history[: int(sol.n_iterations)], 0.0))
        hit = np.nonzero(rel <= cfg.pc_tolerance)[0]
        q_final = sol.x / jnp.linalg.norm(sol.x, axis=-1, keepdims=True)
        dot = jnp.abs(jnp.sum(q_final * q_start, axis=-1))
        rotation = np.degrees(2 * np.arccos(np.clip(np.asarray(dot), 0.0, 1.0)))
        rows.append(
            {
                "target": goal,
                "start": e_start,
                "achieved": e_final,
                "error": e_final / goal - 1.0,
                "reached": abs(e_final / goal - 1.0) <= cfg.pc_tolerance,
                "iterations": int(sol.n_iterations),
                "evaluations": int(sol.n_evaluations),
                "iterations_to_tolerance": int(hit[0]) + 1 if len(hit) else None,
                "compile_seconds": round(compile_s, 2),
                "design_seconds": round(design_s, 2),
                "mean_rotation_deg": float(rotation.mean()),
                "angles_start": direction_angles(q_start),
                "angles_final": direction_angles(q_final),
                "cg_iterations": [int(i) for i in np.asarray(info.iterations)],
                "converged": bool(np.all(np.asarray(info.converged))),
            }
        )
        finals[goal] = np.asarray(q_final)
    return {
        "shape": list(shape),
        "grains": cfg.pc_grains,
        "constants_gpa": list(cfg.pc_constants),
        "single_crystal": {
            "E_100": cubic_young(cfg.pc_constants, (0, 0, 1)),
            "E_110": cubic_young(cfg.pc_constants, (0, 1, 1)),
            "E_111": cubic_young(cfg.pc_constants, (1, 1, 1)),
        },
        "start_voigt": voigt,
        "start_reuss": reuss,
        "solve_seconds": solve_s,
        "value_and_grad_seconds": grad_s,
        "rows": rows,
        "ids": np.asarray(ids),
        "q_start": np.asarray(q_start),
        "q_final": finals,
    }


def cubic_young(constants, direction) -> float:
    """Young's modulus of a cubic crystal along a crystal direction (closed form, Voigt S)."""
    c11, c12, c44 = constants
    c = np.zeros((6, 6))
    c[:3, :3] = c12
    c[np.arange(3), np.arange(3)] = c11
    c[np.arange(3, 6), np.arange(3, 6)] = c44
    s = np.linalg.inv(c)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    j = d[0] ** 2 * d[1] ** 2 + d[1] ** 2 * d[2] ** 2 + d[2] ** 2 * d[0] ** 2
    return float(1.0 / (s[0, 0] - 2.0 * (s[0, 0] - s[0, 1] - s[3, 3] / 2.0) * j))


# ---- 3. property-guided sampling ---------------------------------------------------------------


def phase_fraction(x0):
    """Model units ``{-1, +1}`` -> phase-1 fraction in [0, 1], ``(*spatial, 1) -> (*spatial)``."""
    return jnp.clip((x0[..., 0] + 1.0) / 2.0, 0.0, 1.0)


def guided_eta(model, cfg) -> float:
    """The DDIM eta of the guided samples: ``cfg.gd_eta``, else the model's measured one."""
    return model.ddim_eta if cfg.gd_eta is None else float(cfg.gd_eta)


def guided_sampler(model, cfg):
    """``sample(key, scale) -> (gd_batch, *shape)`` with property guidance toward ``gd_target``.

    One compilation serves every scale (traced).
    """
    contrast = tuple(cfg.contrast)
    solve = dict(tol=cfg.cg_tol, maxiter=cfg.cg_maxiter)
    eps_fn = model.eps_fn()
    schedule = model.schedule

    def property_fn(x0):
        return log_ratio(phase_fraction(x0), contrast, **solve)

    @jax.jit
    def sample(key, scale):
        guided = property_guidance(
            eps_fn, schedule, property_fn, jnp.float32(math.log(cfg.gd_target)), scale=scale
        )
        return ddim_sample(
            key,
            guided,
            schedule,
            model.sample_shape,
            num_samples=cfg.gd_batch,
            num_steps=cfg.gd_steps,
            eta=guided_eta(model, cfg),
            clip_x0=(-1.0, 1.0),
        )

    return sample


def reference_images(model, cfg, n: int) -> np.ndarray:
    """``(n, H, W)`` {0, 1} images of the training law: the model's ``reference.npy``, else RSA."""
    path = None if model.path is None else model.path / "reference.npy"
    if path is not None and path.is_file():
        ref = np.load(path, allow_pickle=False)
        ref = ref[..., 0] if ref.ndim == 4 else ref
        return (np.asarray(ref) > (0 if ref.min() < 0 else 0.5)).astype(np.float64)[:n]
    shape = tuple(model.sample_shape[:-1])
    keys = jax.random.split(jax.random.key(cfg.seed + 7), n)
    fields = [rsa_disks(k, shape, cfg.gd_fiber_radius, cfg.gd_fiber_fraction)[0] for k in keys]
    return np.stack([np.asarray(f, np.float64) for f in fields])


def describe_samples(binary: np.ndarray, reference_s2: np.ndarray, cfg) -> dict:
    """Per-sample ratio and volume fraction, the S2 error of the set's mean S2 and per sample,
    and the S2 anisotropy ``S2(L, 0) / S2(0, L)`` at ``L = H // 8`` (mean over samples)."""
    contrast = tuple(cfg.contrast)
    solve = dict(tol=cfg.cg_tol, maxiter=cfg.cg_maxiter)
    ratio_fn = jax.jit(jax.vmap(lambda m: jnp.exp(log_ratio(m, contrast, **solve))))
    ratios = np.asarray(ratio_fn(jnp.asarray(binary)))
    each = two_points(binary)
    s2 = each.mean(axis=0)
    norm = np.sum(reference_s2**2)
    c, lag = s2.shape[0] // 2, s2.shape[0] // 8
    return {
        "ratio": ratios,
        "volume_fraction": binary.mean(axis=(1, 2)),
        "s2_relative_error": float(np.sum((s2 - reference_s2) ** 2) / norm),
        "s2_sample_error_median": float(
            np.median(np.sum((each - reference_s2) ** 2, axis=(1, 2)) / norm)
        ),
        "s2_anisotropy": float(np.mean(each[:, c + lag, c] / each[:, c, c + lag])),
        "s2_mean": s2,
    }


def two_points(binary: np.ndarray) -> np.ndarray:
    """Phase-1 auto-correlations ``(N, H, W)`` (centred) of {0, 1} images ``(N, H, W)``."""
    fn = jax.jit(jax.vmap(lambda m: descriptors.two_point(m[..., None])[0, 0]))
    return np.asarray(fn(jnp.asarray(binary)))


def mean_two_point(binary: np.ndarray) -> np.ndarray:
    """Mean phase-1 auto-correlation ``(H, W)`` of a set of {0, 1} images ``(N, H, W)``."""
    return two_points(binary).mean(axis=0)
