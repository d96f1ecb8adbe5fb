"""``python -m experiments.train`` as a subprocess, the way a user or a scheduler runs it.

Shared by the preemption and kill/resume tests: the command (LeNet-5 on the embedded digits,
300 steps of batch 32), its environment, reading a workdir's newest checkpoint, and the
uninterrupted reference run, made once per test session even across pytest-xdist workers.
"""

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orbax.checkpoint as ocp

from jaxcnn.training.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parents[2]
NUM_STEPS = 300
ARGS = ["--config", "experiments/configs/default.py", f"--config.num_steps={NUM_STEPS}",
        "--config.batch_size=32", "--config.log_every_steps=10",
        "--config.eval_every_steps=1000"]


def train_command(workdir, *, checkpoint_every=1000, module="experiments.train", api="linen"):
    """The command line; ``module`` may be a wrapper that installs test hooks first; ``api``
    the front end the model trains with (``config.api``)."""
    return [sys.executable, "-m", module, *ARGS, f"--config.api={api}",
            f"--config.checkpoint_every_steps={checkpoint_every}", "--workdir", str(workdir)]


def _session_dir(tmp_path_factory) -> Path:
    """A directory shared by every xdist worker of this session (the workers' basetemp parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def train_env(tmp_path_factory, data_dir, **extra):
    """Environment of the runs: their own ``data_dir`` and a session-wide compilation cache.

    The digits are written to ``data_dir`` on first use, so each concurrent test needs its
    own. The persistent compilation cache lets every run after the first skip XLA compilation
    (restarts are what these tests are made of); executables are the same, so are the bits.
    """
    shared = _session_dir(tmp_path_factory)
    return {**os.environ, "JAXCNN_DATA_DIR": str(data_dir),
            "JAX_COMPILATION_CACHE_DIR": str(shared / "jax_cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0", **extra}


def latest_checkpoint(workdir):
    """``(step, pytree)`` of the newest checkpoint in ``workdir/checkpoints``."""
    ckpt = Checkpointer(Path(workdir) / "checkpoints")
    step = ckpt.latest_step()
    tree = ckpt._manager.restore(step, args=ocp.args.StandardRestore())
    ckpt.close()
    return step, tree


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def uninterrupted_run(tmp_path_factory, api="linen"):
    """``(step, pytree)`` of the final checkpoint of :func:`train_command` run without a stop.

    Run once per session: the first test to ask runs it under a file lock, later ones (in this
    or another xdist worker) read its checkpoint.
    """
    shared = _session_dir(tmp_path_factory)
    # One reference per XLA optimisation setting (see conftest.py): bits are compared only
    # between runs compiled alike.
    mode = "o0" if os.environ.get("JAX_DISABLE_MOST_OPTIMIZATIONS", "0") not in ("0", "") else "o2"
    workdir = shared / f"uninterrupted_{mode}_{api}"
    with _locked(shared / f"uninterrupted_{mode}_{api}.lock"):
        if not (workdir / "final_metrics.json").exists():
            shutil.rmtree(workdir, ignore_errors=True)  # never resume a failed attempt
            env = train_env(tmp_path_factory, shared / "uninterrupted_data")
            subprocess.run(train_command(workdir, api=api), cwd=ROOT, env=env, check=True,
                           capture_output=True)
    return latest_checkpoint(workdir)
