"""Two processes, one SIGTERM: both stop and save the same step, and the run resumes there.

``python -m experiments.train`` runs as two local processes joined by ``jax.distributed``
(gloo collectives on CPU, a mesh over 2 + 2 devices, the synthetic ``fake_mnist`` data).
Once both are training, only one of them gets SIGTERM, as when a scheduler preempts one host.
Each process must save a checkpoint at one agreed step and exit with 143; rerunning both
resumes from that step. A process that stopped on its own would leave the other blocked in
its next collective (and the two would save different steps).

The resumed run is preempted too, during start-up (checkpoint restored, no step taken yet;
a hook holds both processes there until the notice has been turned into a sync point): both
must stop after the first step of the resumed run.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from jaxcnn.training.checkpoint import Checkpointer
from tests._xla import with_device_count
from tests.training._hooked_train import HOLD_BEFORE_LOOP_ENV
from tests.training._multihost_worker import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAVED = re.compile(r"SIGTERM: saved a checkpoint at step (\d+)")


def _launch(workdir, process_id, port, num_steps, env):
    args = [sys.executable, "-m", "tests.training._hooked_train",
            "--config", "experiments/configs/default.py",
            "--config.dataset=fake_mnist", "--config.image_size=32", "--config.parallel=mesh",
            f"--config.num_steps={num_steps}", "--config.batch_size=16",
            "--config.eval_batch_size=16", "--config.log_every_steps=1",
            "--config.eval_every_steps=1000000", "--config.checkpoint_every_steps=1000000",
            "--workdir", str(workdir), "--coordinator_address", f"127.0.0.1:{port}",
            "--num_processes=2", f"--process_id={process_id}",
            "--heartbeat_timeout_seconds=30"]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _env(tmp_path_factory, **extra):
    from tests.training._train_subprocess import _session_dir

    shared = _session_dir(tmp_path_factory)
    return {**os.environ, "XLA_FLAGS": with_device_count(2),
            "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(shared / "jax_cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0", **extra}


def _finish(procs, timeout):
    """``[(returncode, stderr)]`` of both; kills both if either is still running at the end."""
    out = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            out.append((p.returncode, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return out


def _wait_for(ready, procs, what):
    deadline = time.monotonic() + 240  # a hang, not a measurement
    while not ready():
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            results = _finish(procs, 5)
            pytest.fail(f"{what}: {[err[-2000:] for _, err in results]}")
        time.sleep(0.1)


def _stopped_steps(procs):
    """The one step both processes saved at, after exiting with 143."""
    try:
        results = _finish(procs, 120)
    except subprocess.TimeoutExpired:
        pytest.fail("a process did not stop after the SIGTERM (no agreed sync point)")
    steps = []
    for code, err in results:
        assert code == 143, err[-3000:]
        found = SAVED.findall(err)
        assert len(found) == 1, err[-3000:]
        steps.append(int(found[0]))
    assert steps[0] == steps[1], steps
    return steps[0]


def _run_preempted(tmp_path, tmp_path_factory, victim, **env_extra):
    env = _env(tmp_path_factory, **env_extra)
    workdir = tmp_path / "run"
    port = free_port()
    procs = [_launch(workdir, i, port, 10**6, env) for i in range(2)]
    metrics = workdir / "metrics.jsonl"
    # Event: process 0 logs every step, and a step needs both processes (collectives).
    _wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, procs,
              "training did not start")
    procs[victim].send_signal(signal.SIGTERM)
    stopped = _stopped_steps(procs)
    ckpt = Checkpointer(workdir / "checkpoints")
    assert ckpt.all_steps() == [stopped]
    ckpt.close()
    return workdir, stopped, env


@pytest.mark.parametrize("victim", [1, pytest.param(0, marks=pytest.mark.slow)],
                         ids=["worker_preempted", "coordinator_preempted"])
def test_one_sigterm_stops_both_processes_at_one_step_and_they_resume(
        tmp_path, tmp_path_factory, victim):
    workdir, stopped, env = _run_preempted(tmp_path, tmp_path_factory, victim)
    # Resume, and preempt the resumed run during start-up: both save the step after the
    # restored one (a resumed run that ignored the notice would train for ever).
    port, marker = free_port(), tmp_path / "held"
    held = {**env, HOLD_BEFORE_LOOP_ENV: str(marker)}
    procs = [_launch(workdir, i, port, 10**6, held) for i in range(2)]
    _wait_for(lambda: all(marker.with_suffix(f".{i}").exists() for i in range(2)), procs,
              "the resumed run did not reach the training loop")
    procs[victim].send_signal(signal.SIGTERM)
    assert _stopped_steps(procs) == stopped + 1
    ckpt = Checkpointer(workdir / "checkpoints")
    assert ckpt.all_steps()[-2:] == [stopped, stopped + 1]  # it restored `stopped`
    ckpt.close()


@pytest.mark.slow
def test_without_the_preemption_service_the_flag_is_all_gathered(tmp_path, tmp_path_factory):
    """``jax_enable_preemption_service`` off: the SIGTERM flags are all-gathered instead."""
    _run_preempted(tmp_path, tmp_path_factory, 1, JAX_ENABLE_PREEMPTION_SERVICE="false")
