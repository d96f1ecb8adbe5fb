"""Test set-up: 8 virtual CPU devices so pmap / sharding tests run on any machine; in CI, no skips.

* ``XLA_FLAGS``: the device count is added to flags the environment already sets (replacing
  a device count given there), so a preset ``XLA_FLAGS`` does not silently skip every pmap,
  mesh and synchronised-BatchNorm test.
* XLA compiles without its backend optimisations (``--xla_backend_optimization_level=0``,
  no expensive LLVM passes): the suite checks values and behaviour, not speed, and compiling
  is most of its time (this halves it on 2 cores). The operations and their float32 results
  are XLA's either way. ``JAXCNN_TEST_OPTIMIZED_XLA=1`` keeps XLA's defaults; speed is
  measured in ``benchmarks/``, which never runs under this file.
* ``CI`` set (``.ci/run`` runs with ``CI=true``): a skipped test is a failure, naming what was
  missing, because in CI every requirement of the project (torch, Keras, the real MNIST files
  in ``../shared``, the oneDNN build) must be there. A user without them still gets skips. A
  test that only applies to another platform says so with ``@pytest.mark.other_platform``.
"""

import os

import pytest

from tests._xla import with_device_count

# Must happen before jax initialises its backends; harmless for single-device tests, which
# use the default device (device 0).
_flags = os.environ.get("XLA_FLAGS", "")
_QUICK_COMPILE = ["--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"]
if os.environ.get("JAXCNN_TEST_OPTIMIZED_XLA", "") not in ("1", "true", "yes"):
    _flags = " ".join([_flags] + [f for f in _QUICK_COMPILE if f.split("=")[0] not in _flags])
os.environ["XLA_FLAGS"] = with_device_count(8, _flags)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "other_platform: a test that applies only to another OS, CPU or build; "
                   "its skip here is expected, also in CI")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("other_platform") is None:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"skipped in CI ({reason}): CI must have every requirement of the "
                           f"test suite; install it in .ci/run or the test extra")
