"""Worker for the multi-host test: train 10 mesh steps, save the parameters.

    python -m tests.training._multihost_worker OUT.npz PROCESS_ID NUM_PROCESSES PORT DEVICES

With NUM_PROCESSES=1 it is the single-process reference on DEVICES local devices.
"""

import os
import sys

GLOBAL_BATCH, STEPS = 16, 10


def main(out: str, process_id: int, num_processes: int, port: int, devices: int) -> None:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxcnn.training import create_train_state, make_optimizer, make_strategy
    from jaxcnn.training.distributed import initialize
    from tests.training._models import TinyNet

    initialize(f"127.0.0.1:{port}", num_processes, process_id, heartbeat_timeout_seconds=10)
    state = create_train_state(TinyNet(), make_optimizer("momentum", 0.05),
                               jax.random.PRNGKey(0), jnp.ones((1, 8, 8, 1)))
    strategy = make_strategy("mesh", num_classes=10)
    placed = strategy.put_state(state)
    rng = np.random.default_rng(0)
    local = GLOBAL_BATCH // jax.process_count()
    lo = jax.process_index() * local
    for _ in range(STEPS):
        labels = rng.integers(0, 10, GLOBAL_BATCH).astype(np.int32)
        images = rng.normal(size=(GLOBAL_BATCH, 8, 8, 1)).astype(np.float32)
        images += labels[:, None, None, None]
        batch = {"image": images[lo:lo + local], "label": labels[lo:lo + local]}  # this host's
        placed, _ = strategy.train_step(placed, strategy.put_batch(batch))
    final = strategy.get_state(placed)
    tree = {"params": final.params, "bs": final.batch_stats}
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    np.savez(out, **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves},
             devices=jax.device_count())


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:6]))
