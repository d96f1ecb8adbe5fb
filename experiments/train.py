"""Train a jaxcnn model from a config file.

    python -m experiments.train --config experiments/configs/default.py --workdir /tmp/run \
        [--config.batch_size=128 --config.parallel=mesh ...]

Multi-host: start one process per host with the same command plus
``--coordinator_address=HOST:PORT --num_processes=N --process_id=I`` (or the environment
variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID) and
``--config.parallel=mesh``. The last line printed is one JSON object with the final metrics,
also written to ``<workdir>/final_metrics.json``.
"""

import json
import os

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
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        # Orbax and TFDS log every checkpoint and file at INFO; the progress bar says enough.
        logging.set_verbosity(logging.WARNING)
    from jaxcnn.training.distributed import initialize

    initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    from jaxcnn.training.loop import train

    final = train(_CONFIG.value, _WORKDIR.value)
    print(json.dumps(final))


if __name__ == "__main__":
    app.run(main)
