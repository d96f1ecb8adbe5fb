"""Single device, pmap and mesh training give the same parameters (8 forced CPU devices)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxcnn.training import create_train_state, make_optimizer, make_strategy
from tests.training._models import TinyNet

pytestmark = pytest.mark.skipif(jax.device_count() != 8,
                                reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=8 "
                                       "(set by the repository's conftest.py)")

STEPS = 20
BATCH = 32


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        # Unequal content per device: the label-dependent shift makes per-device BN statistics
        # differ, so a wrong cross-device reduction would show.
        labels = rng.integers(0, 10, BATCH).astype(np.int32)
        images = rng.normal(size=(BATCH, 8, 8, 1)).astype(np.float32) + labels[:, None, None, None]
        yield {"image": images, "label": labels}


def _train(mode, bn_axis_name=None):
    model = TinyNet(bn_axis_name=bn_axis_name)
    tx = make_optimizer("momentum", 0.05)
    state = create_train_state(model, tx, jax.random.PRNGKey(0), jnp.ones((1, 8, 8, 1)))
    strategy = make_strategy(mode, num_classes=10, l2_weight_decay=1e-4)
    placed = strategy.put_state(state)
    losses = []
    for batch in _batches():
        placed, metrics = strategy.train_step(placed, strategy.put_batch(batch))
        losses.append(float(strategy.get_metrics(metrics)["loss"]))
    return strategy.get_state(placed), losses


def test_pmap_mesh_and_single_device_agree():
    single, loss_single = _train("none")
    pmapped, loss_pmap = _train("pmap", bn_axis_name="batch")
    meshed, loss_mesh = _train("mesh")
    assert loss_single[-1] < loss_single[0]  # it trains
    for other in (pmapped, meshed):
        for tree in ("params", "batch_stats"):
            jax.tree_util.tree_map(
                lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                getattr(single, tree), getattr(other, tree))
    np.testing.assert_allclose(loss_pmap, loss_single, rtol=1e-5)
    np.testing.assert_allclose(loss_mesh, loss_single, rtol=1e-5)
    assert int(pmapped.step) == int(meshed.step) == STEPS


def test_shard_map_gradient_is_already_summed():
    """Porting pmap-style `pmean(grad(local mean loss))` to shard_map multiplies grads by 8.

    Under `jax.shard_map` with check_vma=True the gradient w.r.t. replicated parameters is
    summed across devices by autodiff itself; the pmap idiom then over-counts. The mesh
    strategy uses plain jit on the global batch, which has neither problem.
    """
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    w = jnp.arange(3.0)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 3)), jnp.float32)
    expected = jax.grad(lambda w: jnp.mean(x @ w))(w)

    def pmap_idiom(w, x):
        return jax.lax.pmean(jax.grad(lambda w: jnp.mean(x @ w))(w), "data")

    via_pmap = jax.pmap(pmap_idiom, axis_name="data", in_axes=(None, 0))(w, x.reshape(8, 2, 3))
    np.testing.assert_allclose(via_pmap[0], expected, rtol=1e-5)
    via_shard_map = jax.shard_map(pmap_idiom, mesh=mesh, in_specs=(P(), P("data")),
                                  out_specs=P())(w, x)
    np.testing.assert_allclose(via_shard_map, 8 * expected, rtol=1e-5)  # the trap
    strategy_grad = jax.jit(jax.grad(lambda w, x: jnp.mean(x @ w)),
                            in_shardings=(NamedSharding(mesh, P()),
                                          NamedSharding(mesh, P("data"))))(w, x)
    np.testing.assert_allclose(strategy_grad, expected, rtol=1e-5)


def test_batch_not_divisible_by_devices():
    strategy = make_strategy("pmap", num_classes=10)
    with pytest.raises(ValueError, match="divisible by 8"):
        strategy.put_batch({"image": np.zeros((12, 8, 8, 1), np.float32),
                            "label": np.zeros(12, np.int32)})


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown parallel mode 'pmapp'"):
        make_strategy("pmapp", num_classes=10)


def test_mesh_state_is_replicated():
    state = create_train_state(TinyNet(), make_optimizer("sgd", 0.1), jax.random.PRNGKey(0),
                               jnp.ones((1, 8, 8, 1)))
    placed = make_strategy("mesh", num_classes=10).put_state(state)
    leaf = jax.tree_util.tree_leaves(placed.params)[0]
    assert isinstance(leaf.sharding, NamedSharding) and leaf.sharding.spec == P()
