"""The train step with and without ``jit``, against a hand-written one.

``chex.variants`` runs the test jitted and eagerly (concrete values: the label checks run).
Not under chex's ``with_pmap``, which copies the inputs to every device and runs the step
built without ``axis_name`` (a 10 s compilation that checks nothing the strategies' pmap
tests in test_parallel.py do not: the step with ``axis_name``, per-device keys included).
The reference step is written out by hand: cross-entropy with label
smoothing, the L2 term over kernels, dropout keyed by ``fold_in(state.rng, state.step)`` as
documented in :func:`jaxcnn.training.make_train_step`, SGD with momentum.
"""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import layers as L
from jaxcnn.training import create_train_state, make_optimizer, make_train_step

K, LR, MOMENTUM, WD, EPS = 10, 0.1, 0.9, 1e-3, 0.1


class Mlp(nn.Module):
    """Dense, BatchNorm, ReLU, dropout 0.5, Dense: every kind of state a step updates, and
    quick to compile (jaxcnn.functional's convolution has its own variants tests)."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = L.Dense(16, name="hidden")(x.reshape(x.shape[0], -1))
        x = nn.relu(L.BatchNorm(name="bn")(x, train=train))
        x = L.Dropout(0.5, name="drop")(x, train=train)
        return L.Dense(K, name="head")(x)


def _batch(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, 8).astype(np.int32)
    images = rng.normal(size=(8, 8, 8, 1)).astype(np.float32) + labels[:, None, None, None]
    return {"image": images, "label": labels}


@functools.cache
def _train_case():
    """(initial state, two batches, the reference's params, batch_stats, velocity, losses),
    once for the three variants."""
    state = create_train_state(Mlp(), make_optimizer("momentum", LR, momentum=MOMENTUM),
                               jax.random.PRNGKey(0), jnp.ones((1, 8, 8, 1)))
    batches = [_batch(1), _batch(2)]
    params, batch_stats = state.params, state.batch_stats
    velocity = jax.tree_util.tree_map(jnp.zeros_like, params)
    losses = []
    for step, batch in enumerate(batches):
        key = jax.random.fold_in(state.rng, step)  # the documented dropout key of `step`
        params, batch_stats, velocity, loss = _reference_step(
            state.apply_fn, params, batch_stats, velocity, batch, key)
        losses.append(loss)
    return state, batches, (params, batch_stats, velocity, losses)


@functools.partial(jax.jit, static_argnums=0)  # op by op it takes seconds
def _reference_step(apply_fn, params, batch_stats, velocity, batch, key):
    """SGD with momentum by hand: ``m <- MOMENTUM * m + g``, ``p <- p - LR * m``."""

    def loss_fn(params):
        logits, new = apply_fn({"params": params, "batch_stats": batch_stats}, batch["image"],
                               train=True, mutable=["batch_stats"], rngs={"dropout": key})
        targets = jax.nn.one_hot(batch["label"], K) * (1 - EPS) + EPS / K
        ce = -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), -1))
        kernels = [p for path, p in jax.tree_util.tree_leaves_with_path(params)
                   if path[-1].key == "kernel"]
        return ce + 0.5 * WD * sum(jnp.sum(k ** 2) for k in kernels), new["batch_stats"]

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    velocity = jax.tree_util.tree_map(lambda m, g: MOMENTUM * m + g, velocity, grads)
    params = jax.tree_util.tree_map(lambda p, m: p - LR * m, params, velocity)
    return params, batch_stats, velocity, loss


class StepVariantsTest(chex.TestCase):

    def setUp(self):
        super().setUp()
        chex.clear_trace_counter()  # assert_max_traces counts per test

    @chex.variants(with_jit=True, without_jit=True)
    def test_two_train_steps_with_dropout_equal_the_hand_written_ones(self):
        state, batches, (params, batch_stats, velocity, ref_losses) = _train_case()
        # One trace for both steps: the state a step returns has the types it was given.
        step = self.variant(chex.assert_max_traces(
            make_train_step(label_smoothing=EPS, l2_weight_decay=WD), n=1))
        new, losses = state, []
        for batch in batches:
            new, metrics = step(new, batch)
            losses.append(metrics["loss"])
            self.assertEqual(float(metrics["nonfinite_loss"] + metrics["nonfinite_grads"]), 0.0)
        self.assertEqual(int(new.step), 2)
        chex.assert_trees_all_close((new.params, new.batch_stats, new.opt_state[0][0].trace),
                                    (params, batch_stats, velocity), rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(losses, ref_losses, rtol=1e-5)
