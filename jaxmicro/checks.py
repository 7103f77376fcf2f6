"""Value checks under ``jit``, ``vmap`` and ``grad``: ``checked(fn)``.

A public function checks its arguments' values (finite, unit-norm quaternions, ranges such as
Euler angles in radians) only when they are concrete; inside a transformation they are tracers and
the checks are skipped, so invalid values propagate as NaN or wrong results. ``checked(fn)`` traces
``fn`` with those checks staged as ``jax.experimental.checkify`` checks, compiles it once, and
raises the first failed check as a ``ValueError`` with the same argument-naming message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from jaxmicro._validate import TRACED_CHECKS

__all__ = ["checked"]


def checked(fn: Callable, **jit_options) -> Callable:
    """``jax.jit(fn, **jit_options)`` whose value checks run on device and raise ``ValueError``.

    Args:
        fn: a function of arrays calling jaxmicro functions (under ``vmap``, ``grad``, ...).
        **jit_options: passed to ``jax.jit`` (e.g. ``static_argnames``).

    Returns:
        A function with ``fn``'s signature and result. It compiles on its first call per input
        shape and raises ``ValueError`` (message naming the argument) when a check fails.

    Example:
        >>> f = checked(jax.vmap(orientations.quat_to_euler))
        >>> f(jnp.array([[1.0, 0, 0, 0], [2.0, 0, 0, 0]]))  # ValueError: q: ... unit norm
    """
    from jax.experimental import checkify

    compiled = jax.jit(checkify.checkify(fn), **jit_options)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        token = TRACED_CHECKS.set(True)
        try:
            error, out = compiled(*args, **kwargs)
        finally:
            TRACED_CHECKS.reset(token)
        message = error.get()
        if message is not None:
            raise ValueError(message.split(" (`check` failed")[0].strip())
        return out

    return run
