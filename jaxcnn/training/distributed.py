"""Multi-host start-up: ``jax.distributed.initialize`` with CPU collectives and fault timeouts.

A multi-process run must never hang when one process dies. JAX's coordination service (in
process 0) expects a heartbeat from every process; when one stops for
``heartbeat_timeout_seconds`` it reports the failure to all the others, which then terminate
with ``Terminating process because the JAX distributed service detected fatal errors ... The
following tasks are unhealthy (stopped sending heartbeats)``. If process 0 itself dies, the
others notice on their next call to the service (under a second in
``tests/training/test_multihost_faults.py``) and terminate with ``the leader task was
preempted/died``. JAX defaults the heartbeat timeout to 100 s; :func:`initialize` uses 60 s.
"""

from __future__ import annotations

import jax

from jaxcnn._native.host_memory import default_platform


def _check_timeout(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a whole number of seconds >= 1, got {value!r}.")
    return value


def initialize(coordinator_address: str | None, num_processes: int = 1, process_id: int = 0,
               *, local_device_ids: list[int] | None = None,
               initialization_timeout: int = 300, heartbeat_timeout_seconds: int = 60,
               shutdown_timeout_seconds: int = 60) -> bool:
    """Join a multi-process JAX run; a no-op (returns False) for a single process.

    Every process calls this with the same ``coordinator_address`` (``host:port`` of process
    0) and ``num_processes``, and its own ``process_id``. On CPU the cross-process collectives
    go through gloo, so the same code can be tested with several local processes on one
    machine.

    jaxcnn changes no process-wide setting on its own; this function is the one exception, and
    only because calling it asks for a multi-process run: when JAX's default platform is the
    CPU (``JAX_PLATFORMS=cpu``, or no GPU/TPU plugin installed) and
    ``jax_cpu_collectives_implementation`` is unset (JAX versions without a default), it sets
    that ``jax.config`` option to ``"gloo"``, without which CPU processes cannot exchange
    data. A value the program chose (e.g. ``"mpi"``) is kept, and nothing is set for a GPU or
    TPU run or for a single process.

    Args:
        coordinator_address: ``host:port`` of process 0 (None for a single process).
        num_processes: how many processes take part.
        process_id: this process's index in ``[0, num_processes)``.
        local_device_ids: the devices this process drives (default: all it sees).
        initialization_timeout: seconds to wait for every process to connect at start-up
            (schedulers may start hosts minutes apart).
        heartbeat_timeout_seconds: a process silent for this long is declared dead and every
            other process terminates with an error naming it, instead of waiting forever in
            its next collective.
        shutdown_timeout_seconds: seconds a finished process waits at exit for the others.

    Returns:
        True if a multi-process run was joined, False for a single process.

    Example:
        >>> initialize(None)
        False
        >>> initialize("127.0.0.1:1234", 2, 0, heartbeat_timeout_seconds=0)
        Traceback (most recent call last):
        ...
        ValueError: `heartbeat_timeout_seconds` must be a whole number of seconds >= 1, got 0.
    """
    timeouts = {"initialization_timeout": initialization_timeout,
                "heartbeat_timeout_seconds": heartbeat_timeout_seconds,
                "shutdown_timeout_seconds": shutdown_timeout_seconds}
    timeouts = {name: _check_timeout(name, value) for name, value in timeouts.items()}
    if num_processes <= 1:
        return False
    if not coordinator_address:
        raise ValueError(
            f"num_processes={num_processes} needs a coordinator address (host:port of process "
            f"0): pass --coordinator_address or set JAX_COORDINATOR_ADDRESS.")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} must be in [0, {num_processes}).")
    if (jax.config.jax_cpu_collectives_implementation is None
            and default_platform() == "cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               local_device_ids=local_device_ids, **timeouts)
    return True
