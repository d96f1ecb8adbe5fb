"""NNX users: a zoo model wrapped with ``flax.nnx.bridge.ToNNX`` trains under ``nnx.jit``."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jaxcnn
from jaxcnn.models import create


def test_small_resnet_trains_one_step_under_nnx_jit():
    # two stages of one block: lazy_init compiles one initializer per kernel shape, keep few
    linen_model = create("resnet18", num_classes=5, num_filters=4, cifar_stem=True,
                         stage_sizes=(1, 1))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((8, 8, 8, 3)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 5, 8))

    model = nnx.bridge.ToNNX(linen_model, rngs=nnx.Rngs(0))
    nnx.bridge.lazy_init(model, x)
    linen_params = jax.eval_shape(linen_model.init, jax.random.key(0), x)["params"]
    assert jaxcnn.count_params(nnx.state(model, nnx.Param)) == \
        jaxcnn.count_params(linen_params)
    optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, labels):
        def loss_fn(model):
            logits = model(x, train=True, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    stats_before = jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))
    loss0 = train_step(model, optimizer, x, labels)
    loss1 = train_step(model, optimizer, x, labels)    # train-mode loss after one update
    assert np.isfinite(float(loss0)) and float(loss1) < float(loss0)
    assert int(optimizer.step[...]) == 2
    stats_after = nnx.state(model, nnx.BatchStat)
    assert not np.allclose(stats_after["stem_bn"]["mean"][...],
                           stats_before["stem_bn"]["mean"][...])
    # evaluation uses the running statistics and mutates nothing
    logits = nnx.jit(lambda m, x: m(x, train=False))(model, x)
    assert logits.shape == (8, 5)
