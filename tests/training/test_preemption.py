"""SIGTERM (preemption) saves a checkpoint and exits; rerunning resumes bit-identically."""

import signal
import subprocess
import time

import jax
import numpy as np

from tests.training._train_subprocess import (
    NUM_STEPS,
    ROOT,
    latest_checkpoint,
    train_command,
    train_env,
    uninterrupted_run,
)


def test_sigterm_saves_and_the_resumed_run_is_bit_identical(tmp_path, tmp_path_factory):
    env = train_env(tmp_path_factory, tmp_path / "data")
    part = tmp_path / "part"
    proc = subprocess.Popen(train_command(part), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    metrics = part / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.2)  # training has started once the first metrics line is written
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "SIGTERM: saved a checkpoint at step" in err
    stopped_at, _ = latest_checkpoint(part)
    assert 0 < stopped_at < NUM_STEPS
    subprocess.run(train_command(part), cwd=ROOT, env=env, check=True, capture_output=True)
    (step_a, a), (step_b, b) = uninterrupted_run(tmp_path_factory), latest_checkpoint(part)
    assert step_a == step_b == NUM_STEPS
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
