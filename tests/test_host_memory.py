"""jaxcnn's malloc settings (jaxcnn._native.host_memory): applied on import, and what they do.

The effect is checked in fresh processes: a jit program with a 64 MiB temporary buffer, run
repeatedly, faults its pages in on every run under glibc's defaults and not under jaxcnn's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jaxcnn._native import host_memory

GLIBC = host_memory._glibc() is not None

# One program whose convolution output (64 MiB; a custom call on oneDNN, so never fused into
# its consumer) is an XLA temporary.
PROBE = """
import json, resource, sys
import jaxcnn
import jax, jax.numpy as jnp
from jaxcnn._native import host_memory
from jaxcnn import functional as F
a = jax.random.normal(jax.random.key(0), (256, 64, 64, 4))
k = jax.random.normal(jax.random.key(1), (1, 1, 4, 16))
f = jax.jit(lambda a: jnp.max(F.conv(a, k), axis=(0, 1, 2)))
for _ in range(3):
    f(a).block_until_ready()
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(a).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"status": host_memory.status(), "faults": sorted(faults)[2]}))
"""


def _probe(setting: str) -> dict:
    env = {**os.environ, "JAXCNN_HOST_MALLOC": setting, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)  # one device: the program runs where jaxcnn's settings apply
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_status_says_what_import_did():
    status = host_memory.status()
    if os.environ.get("JAXCNN_HOST_MALLOC") == "0":
        assert status == "malloc unchanged (JAXCNN_HOST_MALLOC=0)"
    elif GLIBC:
        assert status.startswith("glibc malloc") and "one arena" in status
    else:
        assert status.startswith("malloc unchanged (not glibc")


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's (Linux); elsewhere nothing "
                                       "is changed, which test_status_says_what_import_did checks")
def test_large_temporaries_stay_mapped_between_runs():
    default, tuned = _probe("0"), _probe("1")
    assert default["status"] == "malloc unchanged (JAXCNN_HOST_MALLOC=0)"
    assert tuned["status"].startswith("glibc malloc")
    pages = 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    # Defaults: the 64 MiB temporary is mapped afresh, each of its pages faulted in, every run.
    assert default["faults"] >= pages // 2, default
    # jaxcnn's settings: it comes back from the heap already mapped.
    assert tuned["faults"] < pages // 20, tuned
