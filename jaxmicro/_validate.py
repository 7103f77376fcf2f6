"""Input validation shared by the public boundaries of every subpackage.

Shape checks are static and always run. Value checks (finite, unit norm, range) need concrete
values: they run on NumPy arrays and concrete JAX arrays, and are skipped on tracers (inside
``jit``/``grad``/``vmap``), where the functions document their behaviour instead, unless the
caller traces through ``jaxmicro.checks.checked``: then each becomes a ``checkify`` check.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True if ``x`` holds values (not a tracer), so value checks can run."""
    return not isinstance(x, jax.core.Tracer)


TRACED_CHECKS = contextvars.ContextVar("jaxmicro_traced_checks", default=False)
"""True while ``jaxmicro.checks.checked`` traces: value checks on tracers become checkify checks."""


def _traced_check(ok, message: str) -> None:
    """Stages ``checkify.check(ok(), message)`` when ``TRACED_CHECKS`` is on (else nothing)."""
    if TRACED_CHECKS.get():
        from jax.experimental import checkify

        checkify.check(ok(), message)


def as_float_array(x, name: str) -> jax.Array:
    """Converts ``x`` to a floating JAX array (keeps float32/float64, promotes ints).

    Raises:
        ValueError: ``x`` is complex (its imaginary part would be dropped).
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"{name}: complex values ({x.dtype}); expected a real array")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check_trailing(x, name: str, size: int | Sequence[int]) -> None:
    """Raises ValueError unless the trailing axis of ``x`` has ``size`` (or one of the sizes)."""
    sizes = (size,) if isinstance(size, int) else tuple(size)
    shape = np.shape(x)
    if len(shape) == 0 or shape[-1] not in sizes:
        want = " or ".join(str(s) for s in sizes)
        raise ValueError(f"{name}: expected a trailing axis of size {want}, got shape {shape}")


def check_ndim(x, name: str, ndims: int | Sequence[int], what: str = "") -> None:
    """Raises ValueError unless ``x.ndim`` is one of ``ndims``."""
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    nd = np.ndim(x)
    if nd not in allowed:
        want = " or ".join(str(n) for n in allowed)
        extra = f" ({what})" if what else ""
        raise ValueError(f"{name}: expected {want} dimensions{extra}, got shape {np.shape(x)}")


_DEVICE_SUMMARY_SIZE = 1 << 16
"""Elements from which a JAX array is summarized on its device (smaller ones are fetched)."""


def _nonfinite(xp, x):
    """``(count of NaN and inf,)``; ``xp`` is ``numpy`` or ``jax.numpy``."""
    return (xp.sum(~xp.isfinite(x)),)


def _norm_stats(xp, q):
    """``(non-finite count, largest deviation of a row norm from 1)``."""
    return _nonfinite(xp, q)[0], xp.max(xp.abs(xp.linalg.norm(q, axis=-1) - 1.0), initial=0.0)


def _range_stats(xp, x):
    """``(non-finite count, min, max)``."""
    return _nonfinite(xp, x)[0], xp.min(x), xp.max(x)


@functools.cache
def _on_device(stats):
    return jax.jit(functools.partial(stats, jnp))


def _summary(x, stats) -> tuple[float, ...]:
    """``stats`` of a concrete, non-empty ``x``, as floats. A large (or, across processes, not
    fully addressable) JAX array is reduced on its device, so that only the summary crosses to
    the host; anything else is reduced with NumPy."""
    if isinstance(x, jax.Array) and (x.size >= _DEVICE_SUMMARY_SIZE or not x.is_fully_addressable):
        return tuple(float(v) for v in _on_device(stats)(x))
    return tuple(float(v) for v in stats(np, np.asarray(x)))


def _raise_nonfinite(bad: float, name: str) -> None:
    if bad:
        raise ValueError(f"{name}: contains {int(bad)} non-finite value(s) (NaN or inf)")


def check_finite(x, name: str) -> None:
    """Raises ValueError if a concrete ``x`` holds NaN or infinity."""
    if not is_concrete(x):
        message = f"{name}: contains non-finite value(s) (NaN or inf)"
        _traced_check(lambda: _nonfinite(jnp, x)[0] == 0, message)
    elif np.size(x):
        _raise_nonfinite(_summary(x, _nonfinite)[0], name)


def check_unit_norm(q, name: str, atol: float = 1e-3) -> None:
    """Raises ValueError if a concrete ``q`` holds NaN or infinity, or rows whose norm is off 1 by
    more than atol."""
    if not is_concrete(q):
        check_finite(q, name)
        message = f"{name}: quaternions must have unit norm (tolerance {atol})"
        _traced_check(lambda: _norm_stats(jnp, q)[1] <= atol, message)
    elif np.size(q):
        bad, worst = _summary(q, _norm_stats)
        _raise_nonfinite(bad, name)
        if worst > atol:
            raise ValueError(
                f"{name}: quaternions must have unit norm (tolerance {atol}); "
                f"the worst of {np.size(q) // np.shape(q)[-1]} deviates by {worst:.3g}"
            )


def check_range(x, name: str, low: float, high: float) -> None:
    """Raises ValueError if a concrete ``x`` holds NaN or infinity, or values outside
    [low, high]."""
    if not is_concrete(x):
        check_finite(x, name)
        message = f"{name}: values must lie in [{low}, {high}]"
        _traced_check(lambda: _within(*_range_stats(jnp, x)[1:], low, high), message)
    elif np.size(x):
        bad, lo, hi = _summary(x, _range_stats)
        _raise_nonfinite(bad, name)
        if not _within(lo, hi, low, high):
            raise ValueError(
                f"{name}: values must lie in [{low}, {high}], got [{lo:.4g}, {hi:.4g}]"
            )


def _within(lo, hi, low: float, high: float):
    return (lo >= low) & (hi <= high)


def check_choice(value, name: str, choices: Sequence) -> None:
    """Raises ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {sorted(choices)}")
