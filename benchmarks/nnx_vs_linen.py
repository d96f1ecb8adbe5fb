"""What the NNX front end costs: first-step (trace + compile) and step time, NNX vs Linen.

    python -m benchmarks.nnx_vs_linen [--models lenet5,resnet18] [--steps 50] [--batch 64]

For each model, the same SGD-momentum train step (forward, backward, update, BatchNorm
statistics) is built twice from ``jaxcnn.models.create``: Linen (``jax.jit`` of a function of
the variables and optimizer state) and NNX (``api="nnx"``, ``nnx.Optimizer``, the step jitted
with ``nnx.jit`` and called through ``nnx.cached_partial``, Flax's way to skip the per-call
graph traversal); and the training loop's step (``jaxcnn.training.make_train_step`` on
:func:`jaxcnn.training.create_train_state` vs :func:`jaxcnn.training.create_nnx_train_state`,
what ``config.api`` switches). Reported: seconds to the end of the first step (trace +
compile + run), then the median step time over ``--steps`` steps after two warm-up steps
(Linen and NNX timed in alternating blocks of steps), and the NNX/Linen ratios (the
first-step column is sensitive to order: what ran before warms JAX's and XLA's caches). A
second table times the training loop's step alone: tracing and lowering, then XLA
compilation, of a fresh jit per measurement, Linen and NNX alternating, the median of three.
CPU, XLA defaults.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxcnn import models

OPTIONS = {"lenet5": {}, "resnet18": {"cifar_stem": True}}


def _loss(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def linen_step(name, x, labels, tx):
    model = models.create(name, num_classes=10, **OPTIONS.get(name, {}))
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)},
                           x[:1], train=False)
    opt_state = tx.init(variables["params"])

    @jax.jit
    def step(variables, opt_state, x, labels, key):
        def loss_fn(params):
            logits, updates = model.apply({**variables, "params": params}, x, train=True,
                                          rngs={"dropout": key}, mutable=["batch_stats"])
            return _loss(logits, labels), updates

        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
        delta, opt_state = tx.update(grads, opt_state, variables["params"])
        params = optax.apply_updates(variables["params"], delta)
        return {**variables, **updates, "params": params}, opt_state, loss

    carry = [variables, opt_state]
    key = jax.random.key(1)

    def run():
        carry[0], carry[1], loss = step(carry[0], carry[1], x, labels, key)
        return loss

    return run


def nnx_step(name, x, labels, tx):
    model = models.create(name, num_classes=10, api="nnx", rngs=nnx.Rngs(0),
                          input_shape=x.shape[1:], **OPTIONS.get(name, {}))
    model.train()
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, labels):
        loss, grads = nnx.value_and_grad(lambda m: _loss(m(x), labels))(model)
        optimizer.update(model, grads)
        return loss

    cached = nnx.cached_partial(step, model, optimizer)
    return lambda: cached(x, labels)


def _loop_step(state, x, labels):
    """The training loop's step (jaxcnn.training.make_train_step, jit, state donated)."""
    from jaxcnn.training import make_train_step

    step = jax.jit(make_train_step(), donate_argnums=0)
    batch = {"image": x, "label": labels}
    carry = [state]

    def run():
        carry[0], metrics = step(carry[0], batch)
        return metrics["loss"]

    return run


def loop_linen_step(name, x, labels, tx):
    from jaxcnn.training import create_train_state

    model = models.create(name, num_classes=10, **OPTIONS.get(name, {}))
    return _loop_step(create_train_state(model, tx, jax.random.PRNGKey(0), x[:1]), x, labels)


def loop_nnx_step(name, x, labels, tx):
    """``config.api="nnx"``'s step: the NNX model's state split once, merged in the trace."""
    from jaxcnn.training import create_nnx_train_state

    model = models.create(name, num_classes=10, api="nnx", rngs=nnx.Rngs(0),
                          input_shape=x.shape[1:], **OPTIONS.get(name, {}))
    return _loop_step(create_nnx_train_state(model, tx, jax.random.PRNGKey(0)), x, labels)


def loop_states(name, x, tx):
    """The Linen and NNX train states of ``name`` (as ``config.api`` builds them)."""
    from jaxcnn.training import create_nnx_train_state, create_train_state

    linen = create_train_state(models.create(name, num_classes=10, **OPTIONS.get(name, {})),
                               tx, jax.random.PRNGKey(0), x[:1])
    model = models.create(name, num_classes=10, api="nnx", rngs=nnx.Rngs(0),
                          input_shape=x.shape[1:], **OPTIONS.get(name, {}))
    return linen, create_nnx_train_state(model, tx, jax.random.PRNGKey(0))


def trace_and_compile_seconds(state, x, labels):
    """(trace + lower, XLA compile) seconds of a fresh training-loop step for ``state``."""
    from jaxcnn.training import make_train_step

    step = jax.jit(make_train_step(), donate_argnums=0)  # a new function: no cache hit
    start = time.perf_counter()
    lowered = step.lower(state, {"image": x, "label": labels})
    traced = time.perf_counter()
    lowered.compile()
    return traced - start, time.perf_counter() - traced


def first_step(make, name, x, labels):
    """Build the step and run it once: ``(seconds, run)``."""
    tx = optax.sgd(0.01, momentum=0.9)
    start = time.perf_counter()
    run = make(name, x, labels, tx)
    jax.block_until_ready(run())
    first = time.perf_counter() - start
    for _ in range(2):
        jax.block_until_ready(run())
    return first, run


def step_times(runs, steps, block=10):
    """Median seconds per step of each of ``runs``, timed in alternating blocks of ``block``
    steps (order flipped every round), so both see the same machine state."""
    per_step = [[] for _ in runs]
    for r in range(max(steps // block, 1)):
        for i in (range(len(runs)) if r % 2 == 0 else reversed(range(len(runs)))):
            t = time.perf_counter()
            for _ in range(block):
                out = runs[i]()
            jax.block_until_ready(out)
            per_step[i].append((time.perf_counter() - t) / block)
    return [statistics.median(t) for t in per_step]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet18")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--nnx-first", action="store_true",
                        help="measure NNX before Linen (the second one finds JAX's and XLA's "
                             "in-process caches warm: run both orders to compare first steps)")
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}, batch {args.batch}")
    print("| model | step | Linen first step s | NNX first step s | ratio | Linen step ms | "
          "NNX step ms | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        shape = models.input_shape(name, **OPTIONS.get(name, {}))
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((args.batch, *shape)), jnp.float32)
        labels = jnp.asarray(rng.integers(0, 10, args.batch))
        for kind, linen, nnx_ in (("hand-written (nnx.jit + cached_partial)", linen_step,
                                   nnx_step),
                                  ("training loop (config.api)", loop_linen_step,
                                   loop_nnx_step)):
            if args.nnx_first:
                nf, nrun = first_step(nnx_, name, x, labels)
                lf, lrun = first_step(linen, name, x, labels)
            else:
                lf, lrun = first_step(linen, name, x, labels)
                nf, nrun = first_step(nnx_, name, x, labels)
            ls, ns = step_times([lrun, nrun], args.steps,
                                block=max(1, min(10, args.steps // 4)))
            print(f"| {name} | {kind} | {lf:.2f} | {nf:.2f} | {nf / lf:.2f} | "
                  f"{1e3 * ls:.2f} | {1e3 * ns:.2f} | {ns / ls:.2f} |", flush=True)
    compile_table(args.models.split(","), args.batch)


def compile_table(names, batch, repeats=3):
    """Trace and compile time of the training loop's step, Linen vs NNX, alternating."""
    print("\n| model | Linen trace s | NNX trace s | ratio | Linen compile s | NNX compile s "
          "| ratio |")
    print("|---|---|---|---|---|---|---|")
    tx = optax.sgd(0.01, momentum=0.9)
    for name in names:
        shape = models.input_shape(name, **OPTIONS.get(name, {}))
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((batch, *shape)), jnp.float32)
        labels = jnp.asarray(rng.integers(0, 10, batch))
        states = loop_states(name, x, tx)
        times = {0: [], 1: []}
        for r in range(repeats):
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                times[i].append(trace_and_compile_seconds(states[i], x, labels))
        (lt, lc), (nt, nc) = ([statistics.median(t[k] for t in times[i]) for k in (0, 1)]
                              for i in (0, 1))
        print(f"| {name} | {lt:.2f} | {nt:.2f} | {nt / lt:.2f} | {lc:.2f} | {nc:.2f} | "
              f"{nc / lc:.2f} |", flush=True)


if __name__ == "__main__":
    main()
