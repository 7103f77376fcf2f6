"""Plain calls of the samplers compile once per denoiser: the jitted-kernel boundary they share.

A sampler validates its arguments, then runs ``kernel(eps_fn, *arrays, **options)`` through
``call``: at the top level that is a ``jax.jit`` of the kernel with ``eps_fn`` and ``options``
static, kept for as long as the caller keeps ``eps_fn``, so repeated plain calls with the same
denoiser run at the speed of ``jax.jit`` (issue #19). The cache holds ``eps_fn`` weakly: once
the caller drops a denoiser, its compiled kernels and the parameters they captured are freed
(a loop over checkpoints keeps one model's parameters alive, not every model's). A bound
method (``model.eps``, a new object on every access) is kept as long as its instance. Inside a
trace (the caller jits, vmaps or differentiates), and for an ``eps_fn`` that cannot be
referenced weakly or hashed, the kernel is called directly.

``eps_fn`` is taken to be a pure function of its arguments: values it closes over are read when
it is first compiled. A denoiser whose captured state changes between calls must be a new
function object (``jaxmicro.train.denoiser`` builds one per model).
"""

from __future__ import annotations

import functools
import inspect
import weakref

import jax

_KERNELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""owner -> {(function, kernel, options): jitted kernel}. The owner is ``eps_fn`` itself, or
the instance of a bound method; entries go when the owner is garbage-collected."""


class _Weak:
    """Calls ``eps_fn`` through a weak reference, so that the compiled kernel does not keep it."""

    def __init__(self, eps_fn):
        ref = weakref.WeakMethod if inspect.ismethod(eps_fn) else weakref.ref
        self._ref = ref(eps_fn)

    def __call__(self, *args):
        return self._ref()(*args)


def _jitted(kernel, eps_fn, options: tuple):
    if inspect.ismethod(eps_fn):
        owner, function = eps_fn.__self__, eps_fn.__func__
    else:
        owner, function = eps_fn, None
    kernels = _KERNELS.setdefault(owner, {})
    key = (function, kernel, options)
    if key not in kernels:
        kernels[key] = jax.jit(functools.partial(kernel, _Weak(eps_fn), **dict(options)))
    return kernels[key]


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
    except TypeError:  # eps_fn not weakly referenceable or unhashable, or an unhashable option
        return kernel(eps_fn, *arrays, **options)
    return compiled(*arrays)
