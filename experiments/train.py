"""Train a jaxcnn model from a config file.

    python -m experiments.train --config experiments/configs/default.py --workdir /tmp/run \
        [--config.batch_size=128 --config.parallel=mesh ...]

Multi-host: start one process per host with the same command plus
``--coordinator_address=HOST:PORT --num_processes=N --process_id=I`` (or the environment
variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID) and
``--config.parallel=mesh``. The last line printed is one JSON object with the final metrics,
also written to ``<workdir>/final_metrics.json``.

Being a program rather than the library, it sets glibc's ``malloc`` for XLA:CPU at start-up
(:func:`jaxcnn.tune_host_malloc`; ``JAXCNN_HOST_MALLOC=0`` to leave ``malloc`` alone).
"""

import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and plots go here.")
_COORDINATOR = flags.DEFINE_string("coordinator_address",
                                   os.environ.get("JAX_COORDINATOR_ADDRESS"),
                                   "host:port of process 0 for multi-host training.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes",
                                      int(os.environ.get("JAX_NUM_PROCESSES", "1")),
                                      "Number of processes (hosts).")
_PROCESS_ID = flags.DEFINE_integer("process_id", int(os.environ.get("JAX_PROCESS_ID", "0")),
                                   "This process's index.")
_HEARTBEAT = flags.DEFINE_integer(
    "heartbeat_timeout_seconds", 60,
    "Multi-host: a process silent this long is declared dead and every other process exits "
    "with an error instead of hanging.")
_INIT_TIMEOUT = flags.DEFINE_integer(
    "initialization_timeout", 300, "Multi-host: seconds to wait for all processes at start-up.")
_SHUTDOWN_TIMEOUT = flags.DEFINE_integer(
    "shutdown_timeout_seconds", 60, "Multi-host: seconds to wait for all processes at exit.")
flags.mark_flags_as_required(["config", "workdir"])


def _config():
    """The parsed config; a missing ``--config`` file is a usage error with a "did you mean"."""
    from experiments.configs import config_file

    try:
        config_file(config_flags.get_config_filename(flags.FLAGS["config"]))
    except ValueError as err:
        raise app.UsageError(f"--config: {err}") from None
    return _CONFIG.value


def _parse_flags(argv):
    """absl's parser; a ``--config.FIELD`` override of a field that does not exist is a usage
    error with ml_collections' "did you mean", not a traceback."""
    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError) as err:
        inner = err.args[0] if err.args else err
        text = inner.args[0] if isinstance(inner, KeyError) and inner.args else str(inner)
        text = " ".join(str(text).split())
        print(f"FATAL Flags parsing error: --config.* override of a field that does not "
              f"exist: {text} See the fields of the --config file.", file=sys.stderr)
        sys.exit(1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # An application may set process-wide options the library leaves alone: glibc malloc for
    # XLA:CPU's per-step buffers (jaxcnn.tune_host_malloc), before JAX's backend starts.
    # JAXCNN_HOST_MALLOC=0 leaves malloc as it is.
    from jaxcnn._native.host_memory import configure_from_env

    configure_from_env()
    config = _config()
    from jaxcnn.training.config import validate_config

    try:  # a misspelled field in the config file: a usage error before any start-up cost
        validate_config(config)
    except ValueError as err:
        raise app.UsageError(f"--config: {err}") from None
    if not flags.FLAGS["verbosity"].present:
        # Orbax and TFDS log every checkpoint and file at INFO; the progress bar says enough.
        logging.set_verbosity(logging.WARNING)
    from jaxcnn.training.distributed import initialize

    initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
               initialization_timeout=_INIT_TIMEOUT.value,
               heartbeat_timeout_seconds=_HEARTBEAT.value,
               shutdown_timeout_seconds=_SHUTDOWN_TIMEOUT.value)
    from jaxcnn.training.loop import train

    final = train(config, _WORKDIR.value)
    print(json.dumps(final))


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
