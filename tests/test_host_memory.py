"""jaxcnn's malloc settings (jaxcnn._native.host_memory): an explicit opt-in, and what they do.

Importing jaxcnn leaves ``malloc`` alone (``tests/test_guest_process.py`` checks glibc's own
behaviour after everything the library does); a program asks with
``jaxcnn.tune_host_malloc()``, and jaxcnn's applications with ``configure_from_env()``, which
``JAXCNN_HOST_MALLOC=0`` turns off. The effect is checked in fresh processes: a jit program
with a 64 MiB temporary buffer, run repeatedly, faults its pages in on every run under glibc's
defaults and not under jaxcnn's settings.
"""

from __future__ import annotations

import os

import pytest

from jaxcnn._native import host_memory
from tests.test_guest_process import run_python

GLIBC = host_memory._glibc() is not None
NEEDS_GLIBC = pytest.mark.skipif(not GLIBC, reason="the settings are glibc's (Linux); "
                                 "elsewhere nothing is changed")

# One program whose convolution output (64 MiB; a custom call on oneDNN, so never fused into
# its consumer) is an XLA temporary. {opt_in} runs first, before JAX's backend starts.
PROBE = """
import json, resource, sys
import jaxcnn
from jaxcnn._native import host_memory
{opt_in}
import jax, jax.numpy as jnp
from jaxcnn import functional as F
a = jax.random.normal(jax.random.key(0), (256, 64, 64, 4))
k = jax.random.normal(jax.random.key(1), (1, 1, 4, 16))
f = jax.jit(lambda a: jnp.max(F.conv(a, k), axis=(0, 1, 2)))
for _ in range(3):
    f(a).block_until_ready()
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(a).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print("PROBE" + json.dumps({{"status": host_memory.status(), "faults": faults}}))
"""


def _probe(opt_in: str, **env: str) -> dict:
    return run_python(PROBE.format(opt_in=opt_in), "PROBE", timeout=300, **env)


def test_status_before_any_request():
    out = run_python("import json, jaxcnn\nfrom jaxcnn._native import host_memory\n"
                     "print('S' + json.dumps(host_memory.status()))", "S")
    assert out == host_memory.NOT_CALLED


@NEEDS_GLIBC
def test_large_temporaries_stay_mapped_between_runs():
    default, tuned = _probe(""), _probe("print(jaxcnn.tune_host_malloc())")
    assert default["status"] == host_memory.NOT_CALLED
    assert tuned["status"].startswith("glibc malloc") and "after" not in tuned["status"]
    pages = 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    # Defaults: the 64 MiB temporary is mapped afresh, each of its pages faulted in, every run
    # (a block over glibc's largest mmap threshold, 32 MiB, is always its own mmap).
    assert min(default["faults"]) >= pages // 2, default
    # jaxcnn's settings: it comes back from the heap already mapped. Not on every run: while
    # the heap still grows (other allocations between runs can take the freed space at its
    # top) a run can fault a fresh 64 MiB in, so the test asks for runs without faults, which
    # glibc's defaults never give.
    assert min(tuned["faults"]) < pages // 20, tuned


APP = """
import json, warnings
from jaxcnn._native import host_memory
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    line = host_memory.configure_from_env()
print("APP" + json.dumps({"status": line, "again": host_memory.status(),
                          "warnings": [str(w.message) for w in caught]}))
"""


@pytest.mark.parametrize("switch", ["0", "1", None])
def test_applications_switch_with_the_environment(switch):
    out = run_python(APP, "APP", **({} if switch is None else {"JAXCNN_HOST_MALLOC": switch}))
    if switch == "0":
        assert out["status"] == "malloc unchanged (JAXCNN_HOST_MALLOC=0)"
    elif GLIBC:
        assert out["status"].startswith("glibc malloc") and "one arena" in out["status"]
    else:
        assert out["status"].startswith("malloc unchanged (not glibc")
    assert out["again"] == out["status"] and out["warnings"] == []


OFF_CPU = """
import json, warnings
import jaxcnn
from jax._src import xla_bridge
from jaxcnn._native import host_memory
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    app = host_memory.configure_from_env()   # an application: no warning off the CPU
    asked = jaxcnn.tune_host_malloc()        # the program asked: a warning
print("OFF" + json.dumps({"app": app, "asked": asked, "platform": host_memory.default_platform(),
                          "backend_started": xla_bridge.backends_are_initialized(),
                          "warnings": [(w.category.__name__, str(w.message)) for w in caught]}))
"""


@NEEDS_GLIBC
@pytest.mark.parametrize("platforms, name", [("tpu", "tpu"), ("cuda,cpu", "gpu")])
def test_a_gpu_or_tpu_default_backend_changes_nothing_and_says_so(platforms, name):
    out = run_python(OFF_CPU, "OFF", JAX_PLATFORMS=platforms)
    assert out["platform"] == name
    assert out["asked"] == out["app"]
    assert out["asked"].startswith(f"malloc unchanged (JAX's default backend is {name}"), out
    assert out["warnings"] == [["HostMallocWarning", out["asked"]]]
    assert out["backend_started"] is False  # deciding did not start JAX's backends


def test_default_platform_without_starting_a_backend():
    code = ("import json, os\nfrom jaxcnn._native import host_memory\n"
            "print('P' + json.dumps([host_memory.default_platform(), "
            "host_memory._accelerator_plugins()]))")
    assert run_python(code, "P", JAX_PLATFORMS="cpu,tpu")[0] == "cpu"
    platform, plugins = run_python(code, "P", JAX_PLATFORMS="")
    assert platform == ("cpu" if not plugins else f"accelerator (plugins: {', '.join(plugins)})")
