"""SIGTERM (preemption) saves a checkpoint and exits; rerunning resumes bit-identically."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxcnn.training.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--config", "experiments/configs/default.py", "--config.num_steps=300",
        "--config.batch_size=32", "--config.checkpoint_every_steps=1000",
        "--config.log_every_steps=10", "--config.eval_every_steps=1000"]


def _cmd(workdir):
    return [sys.executable, "-m", "experiments.train", *ARGS, "--workdir", str(workdir)]


def _env(tmp_path):
    return {**os.environ, "JAXCNN_DATA_DIR": str(tmp_path / "data")}


def _latest(workdir):
    ckpt = Checkpointer(workdir / "checkpoints")
    step = ckpt.latest_step()
    tree = ckpt._manager.restore(step, args=ocp.args.StandardRestore())
    ckpt.close()
    return step, tree


def test_sigterm_saves_and_the_resumed_run_is_bit_identical(tmp_path):
    env = _env(tmp_path)
    full = tmp_path / "full"
    subprocess.run(_cmd(full), cwd=ROOT, env=env, check=True, capture_output=True)
    part = tmp_path / "part"
    proc = subprocess.Popen(_cmd(part), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    metrics = part / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.2)  # training has started once the first metrics line is written
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "SIGTERM: saved a checkpoint at step" in err
    stopped_at, _ = _latest(part)
    assert 0 < stopped_at < 300
    subprocess.run(_cmd(part), cwd=ROOT, env=env, check=True, capture_output=True)
    (step_a, a), (step_b, b) = _latest(full), _latest(part)
    assert step_a == step_b == 300
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
