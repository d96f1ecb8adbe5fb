"""Python-side per-step overhead: an empty model's training step against LeNet-5's.

    python -m benchmarks.overhead [--batch 128] [--steps 400] [--json]

The "empty" model has one bias vector and ignores its input, so its step does no device work:
what is left is the host's per-step cost. Two measurements, with the library as shipped:

* ``jit step``: ``make_strategy("none").train_step`` called back to back on a batch already on
  the device, blocking once at the end (as the loop does): Python + jit dispatch per step.
* ``training loop``: ``jaxcnn.training.loop.train`` on the bundled ``digits`` dataset (LeNet's
  32x32x1 input) with evaluation and checkpoints moved after the timed steps; the step time is
  ``batch / images_per_s`` from the loop's own log records (median of the log windows after
  the first, which holds the compilation). It adds batching, the copy to the device,
  prefetching, the non-finite tracker and the progress bar.

Overhead = empty step / LeNet-5 step. It is an upper bound: under asynchronous dispatch host
work overlaps device work, so a real step pays less than the empty one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

EMPTY = "benchmark_empty"
TARGET = 0.05
"""The issue's bound: overhead at most 5% of a LeNet-size step."""

# JAX and jaxcnn are imported inside the functions: benchmarks.run imports this module for
# `table` and must not initialise JAX (or pick up jaxcnn's set-up) in its own process.


def _register_empty() -> None:
    """Register :data:`EMPTY`: logits = a learned bias, whatever the input (no device work)."""
    import flax.linen as nn
    import jax.numpy as jnp

    from jaxcnn import models

    class Empty(nn.Module):
        num_classes: int = 10

        @nn.compact
        def __call__(self, x, train: bool = False):
            bias = self.param("bias", nn.initializers.zeros, (self.num_classes,))
            return jnp.broadcast_to(bias, (x.shape[0], self.num_classes))

    if EMPTY not in models.list_models():
        models.register(EMPTY)(lambda num_classes=10, **_: Empty(num_classes))


def jit_step_ms(model_name: str, batch: int, steps: int, seed: int = 0) -> float:
    """Milliseconds per back-to-back ``train_step`` call of ``model_name`` (32x32x1 input).

    Example:
        >>> jit_step_ms("lenet5", batch=8, steps=3) > 0
        True
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxcnn import models
    from jaxcnn.training import create_train_state, make_optimizer, make_strategy

    _register_empty()
    rng = np.random.default_rng(seed)
    data = {"image": rng.standard_normal((batch, 32, 32, 1), dtype=np.float32),
            "label": rng.integers(0, 10, batch).astype(np.int32)}
    model = models.create(model_name, num_classes=10)
    state = create_train_state(model, make_optimizer("momentum", 0.01), jax.random.PRNGKey(0),
                               jnp.zeros((1, 32, 32, 1)))
    strategy = make_strategy("none", num_classes=10)
    placed, placed_batch = strategy.put_state(state), strategy.put_batch(data)
    for _ in range(3):  # compile and warm up
        placed, metrics = strategy.train_step(placed, placed_batch)
    jax.block_until_ready((placed, metrics))
    start = time.perf_counter()
    for _ in range(steps):
        placed, metrics = strategy.train_step(placed, placed_batch)
    jax.block_until_ready((placed, metrics))
    return 1e3 * (time.perf_counter() - start) / steps


def loop_step_ms(model_name: str, batch: int, steps: int, log_every: int = 50) -> float:
    """Milliseconds per step inside ``loop.train`` on ``digits`` (median of log windows).

    Example:
        >>> loop_step_ms(EMPTY, batch=16, steps=4, log_every=2) > 0  # doctest: +SKIP
        True
    """
    from experiments.configs import default
    from jaxcnn.training.logging import read_metrics
    from jaxcnn.training.loop import train

    _register_empty()
    config = default.get_config()
    config.model, config.batch_size = model_name, batch
    config.num_steps, config.log_every_steps = steps, log_every
    # Evaluation and checkpoints only after the last timed window.
    config.eval_every_steps = config.checkpoint_every_steps = steps + 1
    with tempfile.TemporaryDirectory() as workdir:
        train(config, workdir)
        records = [r for r in read_metrics(f"{workdir}/metrics.jsonl") if "images_per_s" in r]
    rates = [r["images_per_s"] for r in records[1:-1]] or [records[-1]["images_per_s"]]
    return 1e3 * batch / statistics.median(rates)


def measure(batch: int = 128, steps: int = 400) -> dict[str, Any]:
    """Both measurements for the empty model and LeNet-5; fractions = empty / LeNet-5."""
    out: dict[str, Any] = {"batch": batch, "steps": steps, "target": TARGET}
    for name, fn in (("jit_step", jit_step_ms), ("loop", loop_step_ms)):
        empty, lenet = fn(EMPTY, batch, steps), fn("lenet5", batch, steps)
        out[name] = {"empty_ms": empty, "lenet5_ms": lenet, "fraction": empty / lenet}
    return out


def table(result: dict[str, Any]) -> str:
    """Markdown table of :func:`measure`'s result.

    Example:
        >>> r = {"batch": 128, "target": 0.05,
        ...      "jit_step": {"empty_ms": 0.2, "lenet5_ms": 40.0, "fraction": 0.005},
        ...      "loop": {"empty_ms": 1.0, "lenet5_ms": 42.0, "fraction": 1.0 / 42}}
        >>> print(table(r).splitlines()[-1])
        | training loop (`loop.train`, digits) | 1.00 | 42.00 | 2.4% | yes |
    """
    lines = [f"| per-step cost, batch {result['batch']} | empty model ms | LeNet-5 ms | "
             f"empty / LeNet-5 | <= {result['target']:.0%} |", "|---|---|---|---|---|"]
    for key, label in (("jit_step", "jit step, back to back (`make_strategy('none')`)"),
                       ("loop", "training loop (`loop.train`, digits)")):
        r = result[key]
        ok = "yes" if r["fraction"] <= result["target"] else "**no**"
        lines.append(f"| {label} | {r['empty_ms']:.2f} | {r['lenet5_ms']:.2f} | "
                     f"{r['fraction']:.1%} | {ok} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = measure(args.batch, args.steps)
    print(json.dumps(result) if args.json else table(result))


if __name__ == "__main__":
    # A program may set what the library leaves alone: glibc malloc for XLA:CPU
    # (jaxcnn.tune_host_malloc), before JAX's backend starts. JAXCNN_HOST_MALLOC=0: not.
    from jaxcnn._native.host_memory import configure_from_env

    configure_from_env()
    main()
