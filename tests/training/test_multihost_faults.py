"""A dead process never leaves the others hanging: they exit with an error naming the loss.

Two local processes train with ``jax.distributed`` (gloo collectives); one is SIGKILLed
mid-training. If it is a worker, the coordination service in process 0 misses its heartbeats
for ``heartbeat_timeout_seconds`` and terminates process 0; if it is process 0 (the
coordinator), the worker loses the service at once. Either way the survivor must exit non-zero
within a bound, saying that another task died.
"""

import os
import re
import signal
import time

import pytest

from tests.training._multihost_worker import free_port, launch

HEARTBEAT_S = 5
BOUND_S = HEARTBEAT_S + 25  # detection + the abort itself, on a loaded 2-core machine
LOST_PEER = r"another task died|stopped sending heartbeats|leader task was preempted/died"


@pytest.mark.parametrize("victim", [1, 0], ids=["worker_killed", "coordinator_killed"])
def test_killing_one_process_ends_the_other_within_a_bound(tmp_path, victim):
    port = free_port()
    outs = [tmp_path / f"p{i}.npz" for i in range(2)]
    procs = [launch(outs[i], i, 2, port, 2, 10**9, HEARTBEAT_S) for i in range(2)]
    try:
        deadline = time.time() + 240
        while not all(os.path.exists(f"{o}.started") for o in outs):
            assert time.time() < deadline and all(p.poll() is None for p in procs), \
                "the two processes did not start training"
            time.sleep(0.1)
        procs[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        survivor = procs[1 - victim]
        _, err = survivor.communicate(timeout=BOUND_S)  # TimeoutExpired = a hang
        detected_s = time.monotonic() - killed_at
    finally:
        for p in procs:
            p.kill()
            p.communicate()
    assert survivor.returncode != 0
    assert detected_s < BOUND_S
    assert re.search(LOST_PEER, err), err[-3000:]
    print(f"survivor exited with {survivor.returncode} {detected_s:.1f} s after the kill")
