"""Test set-up: 8 virtual CPU devices so pmap / sharding tests run on any machine; in CI, no skips.

* ``XLA_FLAGS``: the device count is added to flags the environment already sets (replacing
  a device count given there), so a preset ``XLA_FLAGS`` does not silently skip every pmap,
  mesh and synchronised-BatchNorm test.
* XLA compiles without its backend optimisations (``JAX_DISABLE_MOST_OPTIMIZATIONS=1``:
  backend optimisation level 0, no expensive LLVM passes) and with its classic CPU emitters
  instead of the MLIR fusion emitters (``tests/_xla.py``): the suite checks values and
  behaviour, not speed, and compiling is most of its time (level 0 halved the suite on 2
  cores; the classic emitters took another 22% off). The operations are XLA's either way and
  their float32 results agree to rounding. Tests marked ``optimized_xla`` (hundreds of
  training steps, where running dominates) compile with the default optimisations, and their
  subprocesses with the default emitters too; ``JAXCNN_TEST_OPTIMIZED_XLA=1`` keeps the
  defaults everywhere. Speed is measured in ``benchmarks/``, which never runs under this file.
* ``CI`` set (``.ci/run`` runs with ``CI=true``): a skipped test is a failure, naming what was
  missing, because in CI every requirement of the project (torch, Keras, the real MNIST files
  in ``../shared``, the oneDNN build) must be there. A user without them still gets skips. A
  test that only applies to another platform says so with ``@pytest.mark.other_platform``.
"""

import os

import pytest

from tests._xla import with_device_count, with_quick_compile, without_quick_compile

# Must happen before jax initialises its backends; harmless for single-device tests, which
# use the default device (device 0).
os.environ["XLA_FLAGS"] = with_device_count(8)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# jax reads JAX_DISABLE_MOST_OPTIMIZATIONS when it is imported (so do test subprocesses, which
# inherit it); `optimized_xla` tests switch it off for themselves (fixture below).
QUICK_COMPILE = os.environ.get("JAXCNN_TEST_OPTIMIZED_XLA", "") not in ("1", "true", "yes")
if QUICK_COMPILE:
    os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
    os.environ["XLA_FLAGS"] = with_quick_compile()

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "other_platform: a test that applies only to another OS, CPU or build; "
                   "its skip here is expected, also in CI")
    config.addinivalue_line(
        "markers", "optimized_xla: a test that executes far more than it compiles (hundreds of "
                   "training steps); it and its subprocesses compile with XLA's optimisations")


@pytest.fixture(autouse=True)
def _xla_optimisations(request, monkeypatch):
    """XLA's default optimisations for an ``optimized_xla`` test, its subprocesses included."""
    if not QUICK_COMPILE or request.node.get_closest_marker("optimized_xla") is None:
        yield
        return
    import jax

    monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "0")
    monkeypatch.setenv("XLA_FLAGS", without_quick_compile())
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", True)


# Modules whose tests share a costly module fixture or the same compiled programs: under
# `pytest -n` (xdist's default --dist load) each runs on one worker, so that work is done once
# instead of once per worker; every other test is balanced across workers one by one.
ONE_WORKER_MODULES = {
    "tests/weights/test_keras.py",  # Keras reference models, tens of seconds each
    "tests/functional/test_pooling.py",  # 332 cases compiling the same small programs
    "tests/test_guest_process.py",  # the guest process, about 30 s
}


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook; absent without xdist
def pytest_xdist_make_scheduler(config, log):
    """xdist's ``--dist load`` with the modules of ``ONE_WORKER_MODULES`` kept together.

    (``--dist loadgroup`` would do it with markers, but pytest-xdist 3.8 groups by rewriting
    ``item._nodeid``, which pytest 9 no longer reads: the markers are silently ignored.)
    """
    if config.getvalue("dist") != "load":
        return None  # an explicit --dist choice is the user's
    from xdist.scheduler import LoadScopeScheduling

    class ModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return ModulesTogether(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("other_platform") is None:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"skipped in CI ({reason}): CI must have every requirement of the "
                           f"test suite; install it in .ci/run or the test extra")
