"""SIGKILL at random steps and in the middle of a save; rerunning resumes bit-identically.

One run is killed three times (twice at a random step drawn from the seed, once frozen inside
a checkpoint save just before Orbax's commit rename) and restarted with the same command each
time; its final checkpoint must equal, bit for bit, that of an uninterrupted run (which saves
only at the end: the checkpoint interval must not change the result either).
"""

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time

import jax
import numpy as np

from tests.training._hooked_train import PAUSE_ENV
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


def _run_and_kill(cmd, env, workdir, *, at_step=None, marker=None, timeout=240):
    """Start ``cmd``; SIGKILL it once it logs ``at_step`` or later, or once ``marker`` exists."""
    metrics = workdir / "metrics.jsonl"
    skip = len(metrics.read_text().splitlines()) if metrics.exists() else 0
    # A file, not a pipe: the progress bar would fill a pipe nobody reads and stall the run.
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            if marker is not None and marker.exists():
                break
            if at_step is not None and any(s >= at_step for s in _logged_steps(metrics, skip)):
                break
            time.sleep(0.05)
        running = proc.poll() is None
        proc.kill()  # SIGKILL
        proc.wait(timeout=60)
        log.seek(0)
        assert running, f"the run ended before it was killed:\n{log.read()[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    return max(_logged_steps(metrics, skip), default=None)


def test_killed_three_times_resumes_bit_identical(tmp_path, tmp_path_factory):
    rng = np.random.default_rng(SEED)
    env = train_env(tmp_path_factory, tmp_path / "data")
    work = tmp_path / "run"
    ckpt_dir = work / "checkpoints"
    cmd = train_command(work, checkpoint_every=EVERY, module="tests.training._hooked_train")

    # 1. SIGKILL at a random step after the first checkpoint.
    first = int(rng.integers(EVERY + 10, 2 * EVERY + 10))
    kills = [_run_and_kill(cmd, env, work, at_step=first)]
    saved = _assert_only_complete_saves_listed(ckpt_dir, kills[-1])

    # 2. SIGKILL inside the next save, after its arrays are written, before the commit rename.
    before = saved[-1]
    marker = tmp_path / "in_save"
    kills.append(_run_and_kill(cmd, {**env, PAUSE_ENV: str(marker)}, work, marker=marker))
    saved, tmp = _steps_on_disk(ckpt_dir)
    assert saved[-1] == before, "the interrupted save must not appear under a final name"
    assert len(tmp) == 1 and tmp[0].startswith(f"{before + EVERY}.orbax-checkpoint-tmp"), tmp

    # 3. SIGKILL at a random later step: the restart removed the tmp directory and this time
    #    completed the save it held.
    later = int(rng.integers(before + EVERY + 10, NUM_STEPS - 10))
    kills.append(_run_and_kill(cmd, env, work, at_step=later))
    saved = _assert_only_complete_saves_listed(ckpt_dir, kills[-1])
    assert before + EVERY in saved, saved

    # 4. The last restart resumes from the newest complete checkpoint and finishes.
    resume_from = saved[-1]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    final = json.loads((work / "final_metrics.json").read_text())
    assert final["resumed_from_step"] == resume_from and final["steps"] == NUM_STEPS
    assert _steps_on_disk(ckpt_dir)[1] == []
    print(f"SIGKILLed after logging steps {kills} (the 2nd inside the save of step "
          f"{before + EVERY}); the last run resumed from step {resume_from}")

    (step_a, a), (step_b, b) = uninterrupted_run(tmp_path_factory), latest_checkpoint(work)
    assert step_a == step_b == NUM_STEPS
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
