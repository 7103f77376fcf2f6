"""Test configuration: 4 fake CPU devices, float64 available, programs compiled without LLVM
optimization.

x64 is enabled for the whole run so that identities can be checked to 1e-10; tests of float32
behaviour pass float32 arrays explicitly. The run is dominated by compiling many small programs:
``--xla_backend_optimization_level=0`` skips LLVM's optimization passes (a third less wall time
on the heavy modules). XLA's own HLO passes still run; values differ from the optimized build
only by rounding (two_point, its gradient and a conductivity solve in float64: at most 1 ulp;
a UNet forward: bit-identical). Subprocesses inherit it.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def pytest_collection_modifyitems(items):
    """Modules marked ``heavy`` (shared module fixtures, trainings: the longest units of work,
    since ``--dist loadfile`` keeps a module on one worker) are handed out first, so that no long
    unit starts last and leaves the other worker idle at the end of the run. (``--dist
    loadgroup`` would allow finer units, but pytest-xdist 3.8 cannot group tests under pytest 9,
    so each module's fixtures were built once per worker.)"""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)
