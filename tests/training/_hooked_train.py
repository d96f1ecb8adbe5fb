"""``python -m experiments.train`` with test hooks that stop it at an exact point.

    JAXCNN_TEST_PAUSE_IN_SAVE=MARKER python -m tests.training._hooked_train [train flags]
    JAXCNN_TEST_HOLD_AT_STEP=STEP:MARKER python -m tests.training._hooked_train [train flags]

``JAXCNN_TEST_PAUSE_IN_SAVE``: the first checkpoint save to reach Orbax's commit (every array
written to ``<step>.orbax-checkpoint-tmp-*``, the rename not yet done) writes the tmp path to
MARKER and sleeps, so a test can SIGKILL the process at that exact point.

``JAXCNN_TEST_HOLD_AT_STEP``: the first training log record of a step ``>= STEP`` is written
to ``metrics.jsonl``, then MARKER is created and the loop holds there until a SIGTERM has
reached the training loop's handler (then it goes on, and stops at that step as a preempted
run does), or forever (for SIGKILL). A test waits for MARKER, not for a time, so the process
is signalled at that step on a machine of any speed.

``JAXCNN_TEST_HOLD_BEFORE_LOOP=MARKER`` (several processes with JAX's preemption service):
each process holds just before the training loop starts (checkpoint restored, nothing yet
reported to the preemption service), after creating ``MARKER.<process index>``, until every
process has entered the service's sync protocol, i.e. until a SIGTERM sent to any of them
during start-up has been turned into a sync point. A test waits for the markers, signals one
process, and the notice has then certainly arrived before the first step.

Without any of these variables, this is ``experiments.train`` unchanged.
"""

import os
import runpy
import signal
import threading
import time
from pathlib import Path

PAUSE_ENV = "JAXCNN_TEST_PAUSE_IN_SAVE"
HOLD_ENV = "JAXCNN_TEST_HOLD_AT_STEP"
HOLD_BEFORE_LOOP_ENV = "JAXCNN_TEST_HOLD_BEFORE_LOOP"
# The coordination-service directory where each process's preemption call counter is written
# once the sync protocol starts (xla/tsl/distributed_runtime/preemption).
_COUNTERS_DIR = "PREEMPTION_CURRENT_COUNTER/"


def _pause_at_commit(marker: str) -> None:
    from orbax.checkpoint.path import atomicity

    async def finalize(self, *args, **kwargs):
        Path(marker).write_text(str(self.get()))
        while True:
            time.sleep(60)

    atomicity.AtomicRenameTemporaryPath.finalize = finalize


def _hold_at_step(step: int, marker: str) -> None:
    from jaxcnn.training import logging as train_logging

    terminated = threading.Event()
    install = signal.signal

    def install_noting_sigterm(signum, handler):
        # The loop installs its SIGTERM handler with signal.signal; run it and note that it ran.
        if signum == signal.SIGTERM and callable(handler):
            loop_handler = handler

            def handler(*args):
                terminated.set()
                return loop_handler(*args)

        return install(signum, handler)

    signal.signal = install_noting_sigterm
    write = train_logging.MetricsLogger.write
    held = False

    def write_then_hold(self, at, metrics):
        nonlocal held
        write(self, at, metrics)
        if not held and "train_loss" in metrics and at >= step:
            held = True
            Path(marker).write_text(str(at))
            while not terminated.wait(0.05):  # the handler runs between the waits
                pass

    train_logging.MetricsLogger.write = write_then_hold


def _hold_before_loop(marker: str) -> None:
    import jax
    from jax._src import distributed

    from jaxcnn.training import loop

    init = loop._Preemption.__init__

    def hold_then_init(self, *args, **kwargs):
        Path(f"{marker}.{jax.process_index()}").write_text("held")
        client = distributed.global_state.client
        while len(client.key_value_dir_get(_COUNTERS_DIR)) < jax.process_count():
            time.sleep(0.05)
        init(self, *args, **kwargs)

    loop._Preemption.__init__ = hold_then_init


if __name__ == "__main__":
    if os.environ.get(HOLD_BEFORE_LOOP_ENV):
        _hold_before_loop(os.environ[HOLD_BEFORE_LOOP_ENV])
    if os.environ.get(PAUSE_ENV):
        _pause_at_commit(os.environ[PAUSE_ENV])
    if os.environ.get(HOLD_ENV):
        at_step, _, hold_marker = os.environ[HOLD_ENV].partition(":")
        _hold_at_step(int(at_step), hold_marker)
    runpy.run_module("experiments.train", run_name="__main__", alter_sys=True)
