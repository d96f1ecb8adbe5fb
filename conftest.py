"""Test set-up: 8 virtual CPU devices so pmap / sharding tests run on any machine."""

import os

# Must happen before jax initialises its backends; harmless for single-device tests, which
# use the default device (device 0).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
