"""A dead process never leaves the others hanging: they exit with an error naming the loss.

Two local processes train with ``jax.distributed`` (gloo collectives), one device each; one
is SIGKILLed mid-training. If it is a worker, the coordination service in process 0 misses
its heartbeats for ``heartbeat_timeout_seconds`` and terminates process 0; if it is process 0
(the coordinator), the worker loses the service at once. Either way the survivor must exit
non-zero within a bound, saying that another task died.

The kill waits for an event (both processes wrote their ``.started`` marker after a first
step), not for a time. The bound is on the survivor's exit, not a benchmark: on a loaded
2-core machine the survivor exits 3.5-5 s after a worker's death (the heartbeat timeout,
HEARTBEAT_S) and 0.2 s after the coordinator's; the bound leaves 40 s more for the abort on a
slower machine while staying under jaxcnn's default heartbeat timeout (60 s), so a heartbeat
setting that did not reach JAX would still be caught.

One device per process, so that the survivor's only gloo peer is the dead process. With two
devices per process the survivor's two devices are also gloo peers of each other, and now
and then gloo's transport thread aborts the survivor the moment its peer dies (SIGABRT,
"op.preamble.length <= op.nbytes. 8 vs 4 ... collective mismatch"), before the heartbeat
check can name the loss: 2 of 60 kills at random times with two devices per process, 0 of 80
with one. That abort is gloo's and still ends the survivor at once; training on 2 + 2 devices
is tested in test_multihost.py and test_preemption_multihost.py.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from tests.training._multihost_worker import free_port, launch

HEARTBEAT_S = 5
BOUND_S = HEARTBEAT_S + 40  # detection + the abort itself; < initialize()'s default 60 s
LOST_PEER = r"another task died|stopped sending heartbeats|leader task was preempted/died"


@pytest.mark.parametrize("victim", [1, 0], ids=["worker_killed", "coordinator_killed"])
def test_killing_one_process_ends_the_other_within_a_bound(tmp_path, victim):
    port = free_port()
    outs = [tmp_path / f"p{i}.npz" for i in range(2)]
    procs = [launch(outs[i], i, 2, port, 1, 10**9, HEARTBEAT_S, 0) for i in range(2)]
    try:
        hang_guard = time.monotonic() + 600  # a hang, not a measurement
        while not all(os.path.exists(f"{o}.started") for o in outs):
            assert time.monotonic() < hang_guard and all(p.poll() is None for p in procs), \
                "the two processes did not start training"
            time.sleep(0.1)
        procs[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        survivor = procs[1 - victim]
        try:
            _, err = survivor.communicate(timeout=BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the survivor still runs {BOUND_S} s after its peer was killed: a hang")
        detected_s = time.monotonic() - killed_at
    finally:
        for p in procs:
            p.kill()
            p.communicate()
    assert survivor.returncode != 0
    assert re.search(LOST_PEER, err), err[-3000:]
    print(f"survivor exited with {survivor.returncode} {detected_s:.1f} s after the kill")
