"""2D descriptors of a 3D field, averaged over its orthogonal slices (2D-to-3D reconstruction).

Direction ``d`` means the slices normal to spatial axis ``d``: ``field[i, :, :]`` for ``d = 0``,
``field[:, i, :]`` for ``d = 1``, ``field[:, :, i]`` for ``d = 2``. Each slice keeps the other two
spatial axes in increasing order, plus the channels: ``(n_a, n_b, C)`` with ``a < b``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxmicro import _validate


def slice_descriptors(
    field,
    fn: Callable,
    *,
    directions: Sequence[int] = (0, 1, 2),
    batch_size: int | None = None,
):
    """Mean of a 2D descriptor over the slices of a 3D field, per slice direction.

    ``out[k] = (1 / n_d) sum_i fn(slice_i normal to d)`` for ``d = directions[k]``: the inner
    average of the slice loss of the SHSH-MCR paper (eq. 5), with ``n_d`` the number of slices
    along ``d``. Slices are evaluated with ``vmap`` (or ``lax.map`` in vmapped chunks of
    ``batch_size`` to bound memory), never in a Python loop.

    Args:
        field: ``(n0, n1, n2, C)`` channels-last 3D field.
        fn: 2D descriptor ``(n_a, n_b, C) -> array or pytree``; its output shape must not depend
          on the slice direction (for non-cubic fields pass e.g. ``max_lag`` to ``two_point`` via
          ``functools.partial``).
        directions: distinct spatial axes in {0, 1, 2} (static); the output follows this order.
        batch_size: None to vmap over all slices of a direction at once, else slices per step.

    Compiled once per field shape, directions, batch size and ``fn`` (a static argument): pass
    the same function object, or a ``functools.partial`` of one (compared by its arguments), to
    reuse the compiled kernel; a new ``lambda`` on every call compiles again.

    Returns:
        ``fn``'s output with a leading axis of ``len(directions)`` (each leaf, for pytrees).

    Raises:
        ValueError: if ``field`` is not 3D channels-last, ``directions`` is invalid, or ``fn``
          returns different shapes for different directions.

    References:
        SHSH-MCR paper (mcr-shsh), Sec. 2.1, eq. 5.
    """
    _validate.check_ndim(field, "field", 4, "(n0, n1, n2, C): a 3D channels-last field")
    field = _validate.as_float_array(field, "field")
    dirs = tuple(directions)
    if not dirs or len(set(dirs)) != len(dirs) or any(d not in (0, 1, 2) for d in dirs):
        raise ValueError(f"directions: expected distinct axes from (0, 1, 2), got {directions!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size: expected None or a positive int, got {batch_size!r}")

    return _slice_descriptors(field, fn=_StaticFn(fn), dirs=dirs, batch_size=batch_size)


class _StaticFn:
    """A descriptor function as a static ``jit`` argument.

    ``functools.partial`` objects compare by their function, arguments and keywords (when those
    are hashable), so ``partial(two_point, max_lag=4)`` built afresh on every call reuses the
    compiled kernel; other callables compare by identity.
    """

    def __init__(self, fn: Callable):
        self.fn = fn
        self.key = _callable_key(fn)

    def __call__(self, *args):
        return self.fn(*args)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other) -> bool:
        return isinstance(other, _StaticFn) and self.key == other.key


def _callable_key(fn: Callable):
    if isinstance(fn, functools.partial):
        key = (
            functools.partial,
            _callable_key(fn.func),
            fn.args,
            tuple(sorted(fn.keywords.items())),
        )
        try:
            hash(key)
        except TypeError:
            return fn
        return key
    return fn


@functools.partial(jax.jit, static_argnames=("fn", "dirs", "batch_size"))
def _slice_descriptors(field, *, fn, dirs, batch_size):
    """vmap (or chunked ``lax.map``) of ``fn`` over the slices of each direction, then the mean."""

    def mean_over_slices(d):
        slices = jnp.moveaxis(field, d, 0)
        if batch_size is None:
            per_slice = jax.vmap(fn)(slices)
        else:
            per_slice = jax.lax.map(fn, slices, batch_size=batch_size)
        return jax.tree.map(lambda x: jnp.mean(x, axis=0), per_slice)

    means = [mean_over_slices(d) for d in dirs]
    # Checked while tracing, i.e. once per compiled kernel and not on every call.
    structures = [jax.tree.map(jnp.shape, m) for m in means]
    if any(s != structures[0] for s in structures[1:]):
        raise ValueError(
            "fn: returns different shapes for different slice directions "
            f"{dict(zip(dirs, structures, strict=True))}; make its output shape independent of "
            "the slice shape (e.g. two_point with max_lag)"
        )
    return jax.tree.map(lambda *xs: jnp.stack(xs), *means)
