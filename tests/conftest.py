"""Test configuration: 4 fake CPU devices, float64 available, programs compiled cheaply.

x64 is enabled for the whole run so that identities can be checked to 1e-10; tests of float32
behaviour pass float32 arrays explicitly. The run is dominated by compiling many small programs,
so XLA is told to compile cheaply (subprocesses inherit the flags):

- ``--xla_backend_optimization_level=0`` skips LLVM's optimization passes (a third less wall
  time on the heavy modules). XLA's own HLO passes still run; values differ from the optimized
  build only by rounding (two_point, its gradient and a conductivity solve in float64: at most
  1 ulp; a UNet forward: bit-identical).
- ``--xla_cpu_use_fusion_emitters=false`` emits fusions through XLA:CPU's older LLVM IR
  emitters instead of its MLIR fusion emitters, which compile slower (the default run: 244 s
  against 362 s, paired on 2026-12-07). It is for tests only: the programs run no faster (the
  PolyCrysDiff paper-variant test: 8:45 either way, peak memory 17.7 against 18.2 GB; a smoke
  VAE training step, optimized: 2.76 against 2.40-2.60 s), so the library keeps XLA's default.
  XLA is retiring that path, and an XLA that no longer knows the flag aborts at start-up, so a
  child process tries it first and it is used only where it is known.
"""

import os
import subprocess
import sys

_FLAGS = "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"
_LEGACY_EMITTERS = "--xla_cpu_use_fusion_emitters=false"


def _known(flag: str) -> bool:
    """Whether this XLA starts with ``flag`` in ``XLA_FLAGS`` (it aborts on unknown flags)."""
    env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu"}
    code = "import jax; jax.jit(lambda x: x + 1)(1.0).block_until_ready()"
    probe = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    return probe.returncode == 0


# Decided once by the controller (or preset, to compare flags); xdist workers and test
# subprocesses inherit the result.
if "JAXMICRO_TEST_XLA_FLAGS" not in os.environ:
    flags = f"{os.environ.get('XLA_FLAGS', '')} {_FLAGS}"
    if _known(_LEGACY_EMITTERS):
        flags += f" {_LEGACY_EMITTERS}"
    os.environ["JAXMICRO_TEST_XLA_FLAGS"] = flags.strip()
os.environ["XLA_FLAGS"] = os.environ["JAXMICRO_TEST_XLA_FLAGS"]
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
