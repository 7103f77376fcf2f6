"""Plain calls of the samplers compile once per denoiser: the jitted-kernel boundary they share.

A sampler validates its arguments, then runs ``kernel(eps_fn, *arrays, **options)`` through
``call``: at the top level that is a ``jax.jit`` of the kernel with ``eps_fn`` and ``options``
static, kept for the ``CACHE_SIZE`` most recent ``(kernel, eps_fn, options)`` settings, so
repeated plain calls with the same denoiser run at the speed of ``jax.jit`` (issue #19). Inside
a trace (the caller jits, vmaps or differentiates) and for an unhashable ``eps_fn`` the kernel
is called directly.

``eps_fn`` is taken to be a pure function of its arguments: values it closes over are read when
it is first compiled. A denoiser whose captured state changes between calls must be a new
function object (``jaxmicro.train.denoiser`` builds one per model).
"""

from __future__ import annotations

import functools

import jax

CACHE_SIZE = 8
"""Compiled sampler kernels kept (each holds its ``eps_fn`` and the arrays it closes over)."""


@functools.lru_cache(maxsize=CACHE_SIZE)
def _jitted(kernel, eps_fn, options: tuple):
    return jax.jit(functools.partial(kernel, eps_fn, **dict(options)))


def _tracing(arrays) -> bool:
    """Whether a transformation is active (its tracers may hide in ``eps_fn``'s closure)."""
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(arrays)):
        return True
    try:
        from jax._src.core import trace_state_clean
    except ImportError:  # private helper gone: rely on the arrays alone
        return False
    return not trace_state_clean()


def call(kernel, eps_fn, options: dict, *arrays):
    """``kernel(eps_fn, *arrays, **options)``, through a cached ``jax.jit`` at the top level."""
    if _tracing(arrays):
        return kernel(eps_fn, *arrays, **options)
    try:
        compiled = _jitted(kernel, eps_fn, tuple(sorted(options.items())))
    except TypeError:  # an unhashable eps_fn or option value
        return kernel(eps_fn, *arrays, **options)
    return compiled(*arrays)
