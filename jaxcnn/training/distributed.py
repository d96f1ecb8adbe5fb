"""Multi-host start-up: ``jax.distributed.initialize`` with CPU collectives where needed."""

from __future__ import annotations

import jax


def initialize(coordinator_address: str | None, num_processes: int = 1, process_id: int = 0,
               *, local_device_ids: list[int] | None = None,
               heartbeat_timeout_seconds: int | None = None) -> bool:
    """Join a multi-process JAX run; a no-op (returns False) for a single process.

    Every process calls this with the same ``coordinator_address`` (``host:port`` of process
    0) and ``num_processes``, and its own ``process_id``. On CPU the cross-process collectives
    go through gloo (``jax_cpu_collectives_implementation``), so the same code can be tested
    with several local processes on one machine.

    Example:
        >>> initialize(None)
        False
    """
    if num_processes <= 1:
        return False
    if not coordinator_address:
        raise ValueError(
            f"num_processes={num_processes} needs a coordinator address (host:port of process "
            f"0): pass --coordinator_address or set JAX_COORDINATOR_ADDRESS.")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} must be in [0, {num_processes}).")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    if heartbeat_timeout_seconds is not None:
        kwargs["heartbeat_timeout_seconds"] = heartbeat_timeout_seconds
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               local_device_ids=local_device_ids, **kwargs)
    return True
