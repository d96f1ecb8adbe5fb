"""Single device, pmap and mesh training give the same parameters (8 forced CPU devices).

With dropout and augmentation on, "the same" depends on the layout. The mesh step is the
single-device step on the global batch and JAX's random bits do not depend on how an array is
sharded (``jax_threefry_partitionable``, on by default since JAX 0.5), so mesh and one device
draw the same masks, flips and cutouts: equal up to rounding. Under pmap each device draws
its own (``fold_in(fold_in(state.rng, step), device)``, then split into dropout and
augmentation keys: jaxcnn/training/steps.py), so a pmap run differs from the single-device
run and depends on the device count; what holds is that the pmap step is the mean of the
single-device steps of the devices' shards, each with its own key.
"""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxcnn.augment import compose
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


def test_pmap_with_synchronised_batchnorm_and_single_device_agree():
    """Without dropout or augmentation, pmap (BatchNorm pooled over the devices) is the
    single-device step. The mesh strategy is checked with randomness on, below."""
    single, loss_single = _train("none")
    pmapped, loss_pmap = _train("pmap", bn_axis_name="batch")
    assert loss_single[-1] < loss_single[0]  # it trains
    chex.assert_trees_all_close((pmapped.params, pmapped.batch_stats, pmapped.opt_state),
                                (single.params, single.batch_stats, single.opt_state),
                                rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss_pmap, loss_single, rtol=1e-5)
    assert int(pmapped.step) == STEPS


AUGMENT = [("random_flip", {"vertical": True}), ("cutout", {"size": 3})]
RANDOM_STEPS = 3


def _fresh(model):
    """A host copy of a new state (the compiled steps donate their input state's buffers)."""
    return jax.device_get(create_train_state(model, make_optimizer("momentum", 0.05),
                                             jax.random.PRNGKey(0), jnp.ones((1, 8, 8, 1))))


def _random_strategy(mode):
    return make_strategy(mode, num_classes=10, l2_weight_decay=1e-4, augment=compose(AUGMENT))


def _train_random(mode):
    """RANDOM_STEPS steps of TinyNet with dropout 0.5 and AUGMENT; BatchNorm per device."""
    strategy = _random_strategy(mode)
    placed = strategy.put_state(_fresh(TinyNet(dropout=0.5)))
    losses = []
    for batch in itertools.islice(_batches(), RANDOM_STEPS):
        placed, metrics = strategy.train_step(placed, strategy.put_batch(batch))
        losses.append(float(strategy.get_metrics(metrics)["loss"]))
    return jax.device_get(strategy.get_state(placed)), losses


def _mean(*trees):
    return jax.tree_util.tree_map(
        lambda *xs: np.mean(np.stack(xs), 0).astype(np.asarray(xs[0]).dtype), *trees)


def _pmap_by_hand(devices=8):
    """The documented pmap step, built from single-device steps: device ``i`` trains on
    examples ``[i * B/D, (i + 1) * B/D)`` with the key ``fold_in(fold_in(rng, step), i)``
    (the single-device step draws ``fold_in(state.rng, state.step)``: give it
    ``rng=fold_in(rng, step)`` and ``step=i``); gradients, metrics and BatchNorm statistics
    are averaged. With SGD + momentum (linear in the gradient) the update of the mean
    gradient is the mean of the updates."""
    strategy = _random_strategy("none")
    state = _fresh(TinyNet(dropout=0.5))
    rng, losses = state.rng, []
    for step, batch in enumerate(itertools.islice(_batches(), RANDOM_STEPS)):
        share = BATCH // devices
        outs, step_losses = [], []
        for i in range(devices):
            shard = {k: v[i * share:(i + 1) * share] for k, v in batch.items()}
            device_state = state.replace(rng=jax.random.fold_in(rng, step), step=jnp.int32(i))
            out, metrics = strategy.train_step(strategy.put_state(device_state),
                                               strategy.put_batch(shard))
            outs.append(jax.device_get(out))
            step_losses.append(float(metrics["loss"]))
        state = state.replace(step=state.step + 1,
                              params=_mean(*[o.params for o in outs]),
                              opt_state=_mean(*[o.opt_state for o in outs]),
                              batch_stats=_mean(*[o.batch_stats for o in outs]))
        losses.append(float(np.mean(step_losses)))
    return state, losses


def test_mesh_and_pmap_agree_with_dropout_and_augmentation():
    """One global draw under mesh, per-device keys under pmap (see the module docstring).

    TinyNet's BatchNorm is per device here (pmap) and global (mesh, one device), so the mesh
    comparison also checks the batch statistics XLA reduces over the devices."""
    single, loss_single = _train_random("none")
    meshed, loss_mesh = _train_random("mesh")
    pmapped, loss_pmap = _train_random("pmap")
    by_hand, loss_by_hand = _pmap_by_hand()
    assert int(single.step) == int(meshed.step) == int(pmapped.step) == RANDOM_STEPS
    trees = lambda s: (s.params, s.batch_stats, s.opt_state)
    # mesh: the same dropout masks, flips and cutouts as one device.
    chex.assert_trees_all_close(trees(meshed), trees(single), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss_mesh, loss_single, rtol=1e-5)
    # pmap: eight per-device draws, as documented.
    chex.assert_trees_all_close(trees(pmapped), trees(by_hand), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss_pmap, loss_by_hand, rtol=1e-5)
    # ... which are not the single device's: pmap's result depends on the device count.
    assert not np.allclose(loss_pmap, loss_single, rtol=1e-3)


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
