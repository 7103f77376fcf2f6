"""Test configuration: 4 fake CPU devices and float64 available.

x64 is enabled for the whole run so that identities can be checked to 1e-10; tests of float32
behaviour pass float32 arrays explicitly.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
