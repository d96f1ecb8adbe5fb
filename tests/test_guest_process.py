"""jaxcnn is a guest in the program that imports it: importing or using the library changes no
process-wide state.

A fresh ``python -c`` process records, before importing jaxcnn, what the library could change
behind the program's back:

* glibc ``malloc``: whether a freed 64 MiB block goes back to the system (glibc's default:
  ``mmap``'d, so ``free`` unmaps it and the resident size drops; jaxcnn's opt-in settings keep
  it on the heap). An event, read from ``/proc/self/statm`` around one ``free``, not a timing;
* matplotlib's backend (the raw ``rcParams`` entry, read without resolving it) and whether
  ``pyplot``, whose figure manager is global state, got imported;
* absl's flags: parsed or not, and every flag's ``present`` mark and value;
* every ``jax.config`` option's value;
* the handler of every signal, and the environment variables;

then imports jaxcnn and every module in it, builds and runs a model, trains a few steps with
the training loop (metrics, TensorBoard events, checkpoints, ``curves.png``), streams a dataset
through grain worker processes (which read absl flags), draws a figure with
``jaxcnn.visualize`` and calls ``distributed.initialize`` for one process, and records it all
again: nothing may differ. Flags and ``jax.config`` options that imported dependencies define
are new entries, not changes; they must be unset (not ``present``, at their default).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcnn._native import host_memory

ROOT = Path(__file__).resolve().parents[1]
GLIBC = host_memory._glibc() is not None

# Defines returns_freed_memory(): True if a freed 64 MiB block leaves the process.
MALLOC_PROBE = """
import ctypes, os

def returns_freed_memory(size=64 << 20):
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
    page = os.sysconf("SC_PAGE_SIZE")

    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    block = libc.malloc(size)
    assert block, "malloc failed"
    ctypes.memset(block, 1, size)  # every page resident
    touched = resident()
    libc.free(block)
    return touched - resident() >= size // 2
"""

SNAPSHOT = """
import signal, sys

def snapshot():
    import absl.flags
    import jax
    import matplotlib

    flags = absl.flags.FLAGS
    handlers = {}
    for sig in sorted(signal.valid_signals()):
        try:
            handlers[str(sig)] = repr(signal.getsignal(sig))
        except (OSError, ValueError):
            pass
    return {
        "returns_freed_memory": returns_freed_memory() if GLIBC else None,
        "mpl_backend": repr(dict.__getitem__(matplotlib.rcParams, "backend")),
        "pyplot_imported": "matplotlib.pyplot" in sys.modules,
        "frameworks_imported": sorted(m for m in ("torch", "tensorflow", "keras")
                                      if m in sys.modules),
        "absl_parsed": flags.is_parsed(),
        "absl_flags": {name: [int(f.present), repr(f.value), repr(f.default)]
                       for name, f in flags._flags().items()},
        "jax_config": {k: repr(v) for k, v in jax.config.values.items()},
        "signals": handlers,
        "environ": dict(os.environ),
    }
"""

WORKLOAD = """
import importlib, importlib.util, json, pathlib, pkgutil, tempfile
GLIBC = {glibc}
before = snapshot()

import jaxcnn
modules = [m.name for m in pkgutil.walk_packages(jaxcnn.__path__, "jaxcnn.")
           if importlib.util.find_spec(m.name).origin.endswith(".py")]  # not the oneDNN .so
for name in modules:
    importlib.import_module(name)

import jax, jax.numpy as jnp
import numpy as np
from jaxcnn import data, models, visualize
from jaxcnn.training import distributed, loop

model = models.create("lenet5", num_classes=10)
variables = model.init(jax.random.key(0), jnp.ones((1, 32, 32, 1)))
assert model.apply(variables, jnp.ones((2, 32, 32, 1))).shape == (2, 10)

work = pathlib.Path(tempfile.mkdtemp())
from experiments.configs import default
config = default.get_config()
config.num_steps, config.log_every_steps, config.eval_every_steps = 2, 1, 2
config.batch_size, config.eval_batch_size = 32, 512
config.data_dir = str(work / "data")
loop.train(config, work / "run")
assert (work / "run" / "curves.png").stat().st_size > 0

test = data.load("digits", "test", data_dir=work / "data")
batches = list(test.batches(128, shuffle=False, drop_remainder=False, backend="grain",
                            worker_count=1))
assert sum(len(b["label"]) for b in batches) == len(test)

visualize.filter_bank(np.asarray(batches[0]["image"][0]), work / "filters.png")
assert distributed.initialize(None) is False

after = snapshot()
print("GUEST" + json.dumps({{"before": before, "after": after, "modules": len(modules)}}))
"""


def _env(**extra: str) -> dict[str, str]:
    """This environment on the CPU backend, without glibc's MALLOC_* tunables, XLA_FLAGS or a
    JAXCNN_HOST_MALLOC switch, so that the child sees glibc's and XLA's defaults."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("XLA_FLAGS", "JAXCNN_HOST_MALLOC")}
    env.update({"JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    return {**env, **extra}


def run_python(code: str, mark: str, timeout: float = 600, **env: str) -> dict:
    """Run ``code`` in a fresh ``python -c``; the JSON it printed after ``mark``."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(**env),
                          capture_output=True, text=True, timeout=timeout, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(mark)]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len(mark):])


def _changed(before: dict, after: dict) -> dict:
    return {k: (before.get(k), after.get(k)) for k in sorted(before.keys() | after.keys())
            if before.get(k) != after.get(k)}


@pytest.fixture(scope="module")
def guest(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("guest")
    return run_python(MALLOC_PROBE + SNAPSHOT + WORKLOAD.format(glibc=GLIBC), "GUEST",
                      TMPDIR=str(tmp), JAXCNN_DATA_DIR=str(tmp / "data"),
                      TFDS_DATA_DIR=str(tmp / "tfds"))


def test_every_module_was_imported(guest):
    assert guest["modules"] > 40, guest["modules"]


@pytest.mark.skipif(not GLIBC, reason="the malloc settings exist on Linux with glibc only")
def test_no_other_framework_was_imported(guest):
    """Importing all of jaxcnn and training LeNet-5 loads neither PyTorch nor TensorFlow nor
    Keras (importing PyTorch alone costs seconds before the first step)."""
    assert guest["after"]["frameworks_imported"] == [], guest["after"]["frameworks_imported"]


def test_malloc_keeps_glibc_defaults(guest):
    # glibc's default, before and after: a freed 64 MiB block goes back to the system.
    assert guest["before"]["returns_freed_memory"] is True
    assert guest["after"]["returns_freed_memory"] is True


def test_matplotlib_backend_untouched(guest):
    before, after = guest["before"], guest["after"]
    assert after["mpl_backend"] == before["mpl_backend"]
    assert not after["pyplot_imported"], "something in jaxcnn imported matplotlib.pyplot"


def test_absl_flags_untouched(guest):
    before, after = guest["before"], guest["after"]
    assert before["absl_parsed"] is False and after["absl_parsed"] is False
    old = {k: v for k, v in after["absl_flags"].items() if k in before["absl_flags"]}
    assert not _changed(before["absl_flags"], old)
    new = {k: v for k, v in after["absl_flags"].items() if k not in before["absl_flags"]}
    touched = {k: v for k, v in new.items() if v[0] or v[1] != v[2]}  # present or not default
    assert not touched, f"flags defined by imports and then set: {touched}"


def test_jax_config_untouched(guest):
    before, after = guest["before"]["jax_config"], guest["after"]["jax_config"]
    assert not _changed(before, {k: v for k, v in after.items() if k in before})


def test_signal_handlers_untouched(guest):
    assert not _changed(guest["before"]["signals"], guest["after"]["signals"])


# Set by dependencies when jaxcnn imports them (lazily, for what the workload does), only
# where unset: scikit-learn (the bundled digits) sets the two KMP_* (Intel OpenMP). Not
# jaxcnn's to undo. (tensorboardX set CRC32C_SW_MODE; jaxcnn writes its events itself.)
DEPENDENCY_ENV = {"KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK"}


def test_environment_untouched(guest):
    changed = _changed(guest["before"]["environ"], guest["after"]["environ"])
    assert not {k: v for k, v in changed.items() if k not in DEPENDENCY_ENV or v[0] is not None}


OPT_IN = MALLOC_PROBE + """
import json, warnings
import jaxcnn
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    status = jaxcnn.tune_host_malloc()
import jax.numpy as jnp
float(jnp.ones(3).sum())  # JAX's CPU backend runs, after the settings
print("OPTIN" + json.dumps({"status": status, "again": jaxcnn.tune_host_malloc(),
                            "returns_freed_memory": returns_freed_memory(),
                            "warnings": [str(w.message) for w in caught]}))
"""


@pytest.mark.skipif(not GLIBC, reason="the malloc settings exist on Linux with glibc only")
def test_opt_in_keeps_freed_memory():
    out = run_python(OPT_IN, "OPTIN", timeout=300)
    assert out["status"].startswith("glibc malloc") and "one arena" in out["status"], out
    assert "after JAX's backend started" not in out["status"], out
    assert out["again"] == out["status"]
    assert out["warnings"] == []
    # The settings: the freed block stays on the heap (never trimmed), resident.
    assert out["returns_freed_memory"] is False


LATE = """
import json, warnings
import jax.numpy as jnp
float(jnp.ones(3).sum())  # JAX's CPU backend starts first
import jaxcnn
from jaxcnn._native.host_memory import HostMallocWarning, status
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    line = jaxcnn.tune_host_malloc()
print("LATE" + json.dumps({"status": line, "again": status(),
                           "warnings": [(w.category.__name__, str(w.message), w.filename)
                                        for w in caught]}))
"""


@pytest.mark.skipif(not GLIBC, reason="the malloc settings exist on Linux with glibc only")
def test_late_opt_in_warns():
    out = run_python(LATE, "LATE", timeout=300)
    assert "applied after JAX's backend started" in out["status"], out
    assert out["again"] == out["status"]
    assert [w[:2] for w in out["warnings"]] == [["HostMallocWarning", out["status"]]]
    assert out["warnings"][0][2] == "<string>"  # points at the caller, not at jaxcnn


DISTRIBUTED = """
import json, jax
from jaxcnn.training import distributed
jax.distributed.initialize = lambda *a, **k: None  # no coordinator: only the set-up is tested
out = {}
for chosen in (None, "mpi"):
    jax.config.update("jax_cpu_collectives_implementation", chosen)
    distributed.initialize("127.0.0.1:1", 2, 0)
    out[str(chosen)] = jax.config.jax_cpu_collectives_implementation
print("DIST" + json.dumps(out))
"""


@pytest.mark.parametrize("platforms, gloo", [("cpu", "gloo"), ("tpu", None), ("cuda", None)])
def test_distributed_sets_gloo_only_for_a_cpu_run(platforms, gloo):
    """The one process-wide setting the library makes, and only when asked for a multi-process
    run on the CPU: gloo CPU collectives when unset; a program's own choice is kept."""
    out = run_python(DISTRIBUTED, "DIST", JAX_PLATFORMS=platforms)
    assert out == {"None": gloo, "mpi": "mpi"}
