"""SIGTERM (preemption) saves a checkpoint and exits; rerunning resumes bit-identically.

The run is signalled at a step, not after a time: a hook (tests/training/_hooked_train.py)
holds the loop right after it logs step STOP_AT until the SIGTERM has arrived, so on a machine
of any speed the run neither ends before the signal nor gets it at an unknown step: it must
save step STOP_AT exactly.
"""

import signal
import subprocess
import tempfile
import time

import chex
import pytest

from tests.training._hooked_train import HOLD_ENV
from tests.training._train_subprocess import (
    NUM_STEPS,
    ROOT,
    latest_checkpoint,
    train_command,
    train_env,
    uninterrupted_run,
)

STOP_AT = 100  # a logged step (every 10), well inside the 300


@pytest.mark.optimized_xla  # three runs of 300 steps
def test_sigterm_saves_and_the_resumed_run_is_bit_identical(tmp_path, tmp_path_factory):
    held = tmp_path / "held"
    env = train_env(tmp_path_factory, tmp_path / "data")
    part = tmp_path / "part"
    # A file, not a pipe: output nobody reads would fill a pipe and stall the run.
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(train_command(part, module="tests.training._hooked_train"),
                                cwd=ROOT, env={**env, HOLD_ENV: f"{STOP_AT}:{held}"},
                                stdout=log, stderr=log)
        hang_guard = time.monotonic() + 600  # a hang, not a measurement
        while not held.exists() and proc.poll() is None and time.monotonic() < hang_guard:
            time.sleep(0.05)
        running = proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=600)
        log.seek(0)
        err = log.read()
    assert running and held.exists(), f"the run never reached step {STOP_AT}:\n{err[-3000:]}"
    assert proc.returncode == 143, err[-2000:]
    assert f"SIGTERM: saved a checkpoint at step {STOP_AT} " in err, err[-2000:]
    stopped_at, _ = latest_checkpoint(part)
    assert stopped_at == STOP_AT
    subprocess.run(train_command(part), cwd=ROOT, env=env, check=True, capture_output=True)
    (step_a, a), (step_b, b) = uninterrupted_run(tmp_path_factory), latest_checkpoint(part)
    assert step_a == step_b == NUM_STEPS
    chex.assert_trees_all_equal(a, b, strict=True)
