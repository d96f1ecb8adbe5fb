"""Worker for the multi-host tests: train mesh steps, save the parameters.

    python -m tests.training._multihost_worker OUT.npz PROCESS_ID NUM_PROCESSES PORT DEVICES \
        [STEPS [HEARTBEAT_S [RANDOM]]]

With NUM_PROCESSES=1 it is the single-process reference on DEVICES local devices. With
RANDOM=1 (the default) it trains TinyNet with dropout 0.5 and the AUGMENT pipeline, so every
step draws masks, flips and cutouts for the global batch, of which each process feeds its
share; RANDOM=0 trains it without either (quicker to compile). STEPS (default 10) and the
distributed heartbeat timeout HEARTBEAT_S (default 10) let the fault test keep the processes
training until it kills one; ``OUT.npz.started`` appears after the first step. :func:`launch`
starts one worker from a test.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests._xla import with_device_count

GLOBAL_BATCH, STEPS = 16, 10
AUGMENT = [("random_flip", {"vertical": True}), ("cutout", {"size": 3})]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for the coordinator."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out, process_id, num_processes, port, devices, *extra) -> subprocess.Popen:
    """Start a worker process (arguments as on the command line); stdout/stderr are piped."""
    args = [out, process_id, num_processes, port, devices, *extra]
    return subprocess.Popen([sys.executable, "-m", "tests.training._multihost_worker",
                             *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def main(out: str, process_id: int, num_processes: int, port: int, devices: int,
         steps: int = STEPS, heartbeat_s: int = 10, random: int = 1) -> None:
    os.environ["XLA_FLAGS"] = with_device_count(devices)  # keeps conftest.py's other flags
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxcnn.augment import compose
    from jaxcnn.training import create_train_state, make_optimizer, make_strategy
    from jaxcnn.training.distributed import initialize
    from tests.training._models import TinyNet

    initialize(f"127.0.0.1:{port}", num_processes, process_id,
               heartbeat_timeout_seconds=heartbeat_s)
    state = create_train_state(TinyNet(dropout=0.5 if random else 0.0),
                               make_optimizer("momentum", 0.05), jax.random.PRNGKey(0),
                               jnp.ones((1, 8, 8, 1)))
    strategy = make_strategy("mesh", num_classes=10,
                             augment=compose(AUGMENT) if random else None)
    placed = strategy.put_state(state)
    rng = np.random.default_rng(0)
    local = GLOBAL_BATCH // jax.process_count()
    lo = jax.process_index() * local
    for step in range(steps):
        labels = rng.integers(0, 10, GLOBAL_BATCH).astype(np.int32)
        images = rng.normal(size=(GLOBAL_BATCH, 8, 8, 1)).astype(np.float32)
        images += labels[:, None, None, None]
        batch = {"image": images[lo:lo + local], "label": labels[lo:lo + local]}  # this host's
        placed, metrics = strategy.train_step(placed, strategy.put_batch(batch))
        if step == 0:
            jax.block_until_ready(metrics)
            with open(f"{out}.started", "w"):
                pass
    final = strategy.get_state(placed)
    tree = {"params": final.params, "bs": final.batch_stats}
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    np.savez(out, **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves},
             devices=jax.device_count())


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:]))
