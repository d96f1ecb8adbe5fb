"""SIGKILL at random steps and in the middle of a save; rerunning resumes bit-identically.

One run is killed three times (twice at a random step drawn from the seed, once frozen inside
a checkpoint save just before Orbax's commit rename) and restarted with the same command each
time; its final checkpoint must equal, bit for bit, that of an uninterrupted run (which saves
only at the end: the checkpoint interval must not change the result either).

Every kill waits for an event, never for a time: a hook (tests/training/_hooked_train.py)
holds the process right after it logs the drawn step (rounded up to the log interval, 10), or
inside the save, and writes a marker; the kill follows the marker. So the kills land at the
same steps on a machine of any speed, and a fast machine cannot finish the run first.
"""

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time

import chex
import numpy as np
import pytest

from tests.training._hooked_train import HOLD_ENV, PAUSE_ENV
from tests.training._train_subprocess import (
    NUM_STEPS,
    ROOT,
    latest_checkpoint,
    train_command,
    train_env,
    uninterrupted_run,
)

EVERY = 50  # checkpoint interval of the killed run
SEED = 0  # draws the two random kill steps


def _steps_on_disk(ckpt_dir):
    names = os.listdir(ckpt_dir) if ckpt_dir.is_dir() else []
    return sorted(int(n) for n in names if n.isdigit()), sorted(n for n in names if "tmp" in n)


def _assert_only_complete_saves_listed(ckpt_dir, logged):
    """After a kill: complete checkpoints up to the last logged step; at most one tmp directory
    (a kill that landed in a save), for a later step. Returns the complete steps."""
    saved, tmp = _steps_on_disk(ckpt_dir)
    assert saved and saved[-1] <= logged, (saved, logged)
    assert len(tmp) <= 1 and all(int(t.split(".")[0]) > saved[-1] for t in tmp), (saved, tmp)
    return saved


def _saves_before(step, keep=3):
    """The checkpoints on disk when a run is held right after logging ``step``: every EVERY
    steps before it, the newest ``keep`` (the default config's keep_checkpoints)."""
    return list(range(EVERY, step, EVERY))[-keep:]


def _logged_steps(metrics, skip):
    """Steps logged after the first ``skip`` lines (a line cut by the kill is ignored)."""
    if not metrics.exists():
        return []
    lines = metrics.read_text().splitlines()[skip:]
    steps = []
    for line in lines:
        with contextlib.suppress(ValueError):
            steps.append(json.loads(line)["step"])
    return steps


def _run_and_kill(cmd, env, workdir, marker, *, at_step=None, timeout=600):
    """Start ``cmd``; SIGKILL it once ``marker`` exists: the hook created it right after
    logging the first step ``>= at_step`` (and holds there), or, with ``at_step=None``, inside
    a save (``PAUSE_ENV`` in ``env``). Returns the last step logged."""
    metrics = workdir / "metrics.jsonl"
    skip = len(metrics.read_text().splitlines()) if metrics.exists() else 0
    if at_step is not None:
        env = {**env, HOLD_ENV: f"{at_step}:{marker}"}
    # A file, not a pipe: the progress bar would fill a pipe nobody reads and stall the run.
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        hang_guard = time.monotonic() + timeout  # a hang, not a measurement
        while not marker.exists() and proc.poll() is None and time.monotonic() < hang_guard:
            time.sleep(0.05)
        running = proc.poll() is None
        proc.kill()  # SIGKILL
        proc.wait(timeout=60)
        log.seek(0)
        assert running and marker.exists(), f"the run never got there:\n{log.read()[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    return max(_logged_steps(metrics, skip), default=None)


@pytest.mark.optimized_xla  # five runs of 300 steps
# NNX: the same checkpoints (nnx.state of the model and of nnx.Optimizer, see
# jaxcnn.training.nnx_state) through the same Checkpointer; its in-process stop/resume is in
# the default suite (test_nnx_training.py), this SIGKILL run with `pytest -m slow`.
@pytest.mark.parametrize("api", ["linen", pytest.param("nnx", marks=pytest.mark.slow)])
def test_killed_three_times_resumes_bit_identical(tmp_path, tmp_path_factory, api):
    rng = np.random.default_rng(SEED)
    env = train_env(tmp_path_factory, tmp_path / "data")
    work = tmp_path / "run"
    ckpt_dir = work / "checkpoints"
    cmd = train_command(work, checkpoint_every=EVERY, module="tests.training._hooked_train",
                        api=api)

    # 1. SIGKILL at a random step after the first checkpoint.
    first = int(rng.integers(EVERY + 10, 2 * EVERY + 10))
    kills = [_run_and_kill(cmd, env, work, tmp_path / "held1", at_step=first)]
    assert kills[-1] == -(-first // 10) * 10  # the first logged step >= first
    saved = _assert_only_complete_saves_listed(ckpt_dir, kills[-1])
    assert saved == _saves_before(kills[-1]), saved  # held before that step's own save

    # 2. SIGKILL inside the next save, after its arrays are written, before the commit rename.
    before = saved[-1]
    marker = tmp_path / "in_save"
    kills.append(_run_and_kill(cmd, {**env, PAUSE_ENV: str(marker)}, work, marker))
    saved, tmp = _steps_on_disk(ckpt_dir)
    assert saved[-1] == before, "the interrupted save must not appear under a final name"
    assert len(tmp) == 1 and tmp[0].startswith(f"{before + EVERY}.orbax-checkpoint-tmp"), tmp

    # 3. SIGKILL at a random later step: the restart removed the tmp directory and this time
    #    completed the save it held.
    later = int(rng.integers(before + EVERY + 10, NUM_STEPS - 10))
    kills.append(_run_and_kill(cmd, env, work, tmp_path / "held3", at_step=later))
    assert kills[-1] == -(-later // 10) * 10
    saved = _assert_only_complete_saves_listed(ckpt_dir, kills[-1])
    assert saved == _saves_before(kills[-1]), saved
    assert before + EVERY in saved, saved

    # 4. The last restart resumes from the newest complete checkpoint and finishes.
    resume_from = saved[-1]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    final = json.loads((work / "final_metrics.json").read_text())
    assert final["resumed_from_step"] == resume_from and final["steps"] == NUM_STEPS
    assert _steps_on_disk(ckpt_dir)[1] == []
    print(f"SIGKILLed after logging steps {kills} (the 2nd inside the save of step "
          f"{before + EVERY}); the last run resumed from step {resume_from}")

    (step_a, a), (step_b, b) = uninterrupted_run(tmp_path_factory, api), latest_checkpoint(work)
    assert step_a == step_b == NUM_STEPS
    chex.assert_trees_all_equal(a, b, strict=True)
