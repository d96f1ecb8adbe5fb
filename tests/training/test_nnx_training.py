"""Training an NNX model: `config.api="nnx"` in the loop, and create_nnx_train_state directly.

The references are independent of jaxcnn's NNX train state: the Linen run of the same config
(same initial weights, so the same trajectory), and Flax's own NNX training idiom
(``nnx.value_and_grad`` + ``nnx.Optimizer.update`` under ``nnx.jit``).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxcnn import nnx as jnnx
from jaxcnn.training import make_train_step
from jaxcnn.training.checkpoint import Checkpointer
from jaxcnn.training.loop import train
from jaxcnn.training.nnx_state import NnxTrainState, create_nnx_train_state, merge_model
from tests.training.test_loop import _config as loop_config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("datasets"))


def _config(data_dir, **overrides):
    """test_loop's short run (12 steps of 32), evaluated once at the end."""
    return loop_config(data_dir, **{"eval_every_steps": 0, **overrides})


def _restore(workdir):
    import orbax.checkpoint as ocp

    ckpt = Checkpointer(workdir / "checkpoints")
    tree = ckpt._manager.restore(ckpt.latest_step(), args=ocp.args.StandardRestore())
    ckpt.close()
    return tree


@pytest.mark.parametrize("parallel", ["none", "pmap"])
def test_nnx_run_follows_the_linen_run(tmp_path, data_dir, parallel):
    """Same config, same initial weights: the NNX run's parameters, BatchNorm statistics and
    metrics follow the Linen run's (pmap: BatchNorm pools over the device axis in both).
    Without dropout: its masks come from the NNX model's own RNG streams (reseeded each step,
    see the resume test), not from Linen's key."""
    overrides = {"parallel": parallel, "num_steps": 6, "log_every_steps": 3}
    if parallel == "pmap":
        overrides.update(model="vgg11_bn", model_options={"width": 4, "fc_features": 16,
                                                            "dropout_rate": 0.0})
    linen = train(_config(data_dir, **overrides), tmp_path / "linen")
    nnx_run = train(_config(data_dir, api="nnx", **overrides), tmp_path / "nnx")
    a, b = _restore(tmp_path / "linen"), _restore(tmp_path / "nnx")
    assert set(a["params"]) == set(b["params"])  # the Linen paths
    chex.assert_trees_all_close(b["params"], a["params"], rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(b["batch_stats"], a["batch_stats"], rtol=1e-5, atol=1e-6)
    if parallel == "pmap":
        assert b["batch_stats"]  # the case is about BatchNorm
    # nnx.Optimizer's state: its own step counter next to the Optax state.
    assert int(b["opt_state"]["step"]) == 6
    np.testing.assert_allclose(nnx_run["eval_loss"], linen["eval_loss"], rtol=1e-5)
    assert nnx_run["eval_accuracy"] == linen["eval_accuracy"]


def test_interrupted_nnx_run_with_dropout_resumes_bit_identical(tmp_path, data_dir):
    """Dropout masks come from the model's reseeded RNG streams: stopping after 4 of 6 steps
    and resuming from the checkpoint gives the uninterrupted run's bits."""
    overrides = {"api": "nnx", "model": "lenet5_modern", "num_steps": 6,
                 "model_options": {"dropout_rate": 0.5}}
    train(_config(data_dir, **overrides), tmp_path / "full")
    train(_config(data_dir, **overrides), tmp_path / "part", stop_after=4)
    resumed = train(_config(data_dir, **overrides), tmp_path / "part")
    assert resumed["resumed_from_step"] == 4
    chex.assert_trees_all_equal(_restore(tmp_path / "full"), _restore(tmp_path / "part"),
                                strict=True)
    # Dropout is really on: the same run without it ends elsewhere.
    train(_config(data_dir, api="nnx", model="lenet5_modern", num_steps=6), tmp_path / "nodrop")
    assert not np.array_equal(_restore(tmp_path / "full")["params"]["output"]["kernel"],
                              _restore(tmp_path / "nodrop")["params"]["output"]["kernel"])


class _SmallCNN(nnx.Module):
    """A user's own NNX CNN from jaxcnn.nnx layers, with BatchNorm."""

    def __init__(self, rngs):
        # No conv bias before BatchNorm (as in ResNets): its gradient is zero in exact
        # arithmetic, and Adam would scale the rounding noise of that zero up to the learning
        # rate, so two correct programs would disagree by their rounding alone.
        self.conv = jnnx.Conv(3, 8, (3, 3), use_bias=False, rngs=rngs)
        self.bn = jnnx.BatchNorm(8, rngs=rngs)
        self.pool = jnnx.MaxPool((2, 2), strides=(2, 2))
        self.head = jnnx.Dense(8 * 4 * 4, 5, rngs=rngs)

    def __call__(self, x):
        y = self.pool(jax.nn.relu(self.bn(self.conv(x))))
        return self.head(y.reshape(y.shape[0], -1))


def test_steps_equal_flax_nnx_training_idiom():
    """Three make_train_step steps on create_nnx_train_state equal three steps written the way
    Flax's NNX docs write them (nnx.jit, nnx.value_and_grad, nnx.Optimizer.update): params,
    BatchNorm statistics and the optimizer's step."""
    tx = optax.adam(1e-2)
    x = jax.random.normal(jax.random.key(1), (3, 6, 8, 8, 3))
    y = jax.random.randint(jax.random.key(2), (3, 6), 0, 5)

    state = create_nnx_train_state(_SmallCNN(nnx.Rngs(0)), tx, jax.random.PRNGKey(0))
    step = jax.jit(make_train_step())
    for i in range(3):
        state, _ = step(state, {"image": x[i], "label": y[i]})

    model = _SmallCNN(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def reference_step(model, optimizer, images, labels):
        def loss_fn(model):
            logits = model(images)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    model.train()
    for i in range(3):
        reference_step(model, optimizer, x[i], y[i])
    chex.assert_trees_all_close(state.params, nnx.to_pure_dict(nnx.state(model, nnx.Param)),
                                rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(state.batch_stats,
                                nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)),
                                rtol=1e-5, atol=1e-6)
    assert int(state.opt_state["step"]) == 3 == int(state.step)
    # merge_model gives the trained module back, in eval mode.
    trained = merge_model(state)
    model.eval()
    np.testing.assert_allclose(trained(x[0]), model(x[0]), rtol=1e-5, atol=1e-5)


def test_create_nnx_train_state_rejects_what_it_cannot_carry():
    with pytest.raises(TypeError, match="nnx.Module.*create_train_state"):
        create_nnx_train_state(jnnx.Dense, optax.sgd(0.1), jax.random.PRNGKey(0))

    class Counting(nnx.Module):
        def __init__(self):
            self.dense = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
            self.calls = nnx.Variable(jnp.zeros((), jnp.int32))

    with pytest.raises(ValueError, match=r"calls \(Variable\).*Use nnx.Param or nnx.BatchStat"):
        create_nnx_train_state(Counting(), optax.sgd(0.1), jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="optax GradientTransformation"):
        create_nnx_train_state(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), "sgd",
                               jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="PRNG key"):
        create_nnx_train_state(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), optax.sgd(0.1), 0)
    with pytest.raises(TypeError, match="NnxTrainState"):
        merge_model({"params": {}})


def test_unknown_api_in_the_config_lists_the_accepted_ones(tmp_path, data_dir):
    with pytest.raises(ValueError, match=r"config.api must be one of \('linen', 'nnx'\)"):
        train(_config(data_dir, api="flax"), tmp_path)


def test_state_is_a_train_state():
    """Everything written for TrainState (strategies, checkpoints, transfer) takes it."""
    from jaxcnn.training import TrainState

    state = create_nnx_train_state(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), optax.sgd(0.1),
                                   jax.random.PRNGKey(0))
    assert isinstance(state, NnxTrainState) and isinstance(state, TrainState)
    assert state.params["kernel"].shape == (2, 2) and state.batch_stats == {}


class _ShardedCNN(nnx.Module):
    """A CNN whose conv and head kernels are sharded over the mesh axis "data" by their
    output features (nnx.with_partitioning), FSDP style; BatchNorm stays replicated."""

    def __init__(self, rngs, annotate=True):
        def init(axes):
            base = nnx.initializers.lecun_normal()
            return nnx.with_partitioning(base, axes) if annotate else base

        # No bias before BatchNorm: its gradient is rounding noise, which Adam would scale
        # to full-size steps that differ between any two summation orders.
        self.conv = jnnx.Conv(3, 8, (3, 3), use_bias=False,
                              kernel_init=init((None, None, None, "data")), rngs=rngs)
        self.bn = jnnx.BatchNorm(8, rngs=rngs)
        self.head = jnnx.Dense(8 * 8 * 8, 16, kernel_init=init((None, "data")), rngs=rngs)

    def __call__(self, x):
        y = jax.nn.relu(self.bn(self.conv(x)))
        return self.head(y.reshape(y.shape[0], -1))


def test_mesh_places_the_state_by_the_models_sharding_annotations():
    """On an 8-device mesh the annotated kernels (and their Adam moments) stay sharded over
    "data" through the steps, everything else replicated; the result equals the same model
    unannotated on one device."""
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    from jaxcnn.training import make_strategy

    devices = jax.devices()
    assert len(devices) == 8
    tx = optax.adam(1e-2)
    x = np.asarray(jax.random.normal(jax.random.key(1), (2, 16, 8, 8, 3)))
    y = np.asarray(jax.random.randint(jax.random.key(2), (2, 16), 0, 16))

    with jax.set_mesh(Mesh(np.asarray(devices), ("data",))):
        sharded = create_nnx_train_state(_ShardedCNN(nnx.Rngs(0)), tx, jax.random.PRNGKey(0))
    specs = sharded.partition_specs()
    assert specs.params["conv"]["kernel"] == P(None, None, None, "data")
    assert specs.opt_state["opt_state"][0]["mu"]["head"]["kernel"] == P(None, "data")
    assert specs.params["bn"]["scale"] == P() and specs.batch_stats["bn"]["mean"] == P()
    mesh = make_strategy("mesh", num_classes=16, state_specs=specs)
    placed = mesh.put_state(sharded)
    for i in range(2):
        placed, _ = mesh.train_step(placed, mesh.put_batch({"image": x[i], "label": y[i]}))
    kernel = placed.params["conv"]["kernel"]
    assert kernel.sharding.spec == P(None, None, None, "data")
    assert kernel.addressable_shards[0].data.shape == (3, 3, 3, 1)  # 8 features / 8 devices
    assert placed.opt_state["opt_state"][0]["nu"]["head"]["kernel"].sharding.spec == \
        P(None, "data")
    assert placed.batch_stats["bn"]["var"].sharding.is_fully_replicated

    single = make_strategy("none", num_classes=16)
    plain = single.put_state(create_nnx_train_state(_ShardedCNN(nnx.Rngs(0), annotate=False),
                                                    tx, jax.random.PRNGKey(0)))
    for i in range(2):
        plain, _ = single.train_step(plain, single.put_batch({"image": x[i], "label": y[i]}))
    back = mesh.get_state(placed)
    chex.assert_trees_all_close(back.params, plain.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(back.batch_stats, plain.batch_stats, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="use it with parallel='mesh', not 'pmap'"):
        make_strategy("pmap", num_classes=16, state_specs=specs)


def test_freezing_by_filter_and_by_pattern_equal_linen_transfer_learning():
    """Training only LeNet-5's head: with an NNX filter (wrt=), and with jaxcnn.transfer's
    patterns on the NNX state, equals jaxcnn.transfer on the Linen model; the frozen layers
    keep their bits."""
    from jaxcnn import models, transfer
    from jaxcnn.training import create_train_state

    frozen = ["^(?!output/)"]
    linen = models.create("lenet5", num_classes=10)
    x = jnp.zeros((1, 32, 32, 1))
    base = create_train_state(linen, optax.adam(1e-2), jax.random.PRNGKey(0), x)
    variables = {"params": base.params}

    def nnx_model():
        return jnnx.ZooModel(linen, (32, 32, 1), rngs=nnx.Rngs(0), variables=variables)

    states = {
        "linen": base.replace(tx=transfer.make_transfer_optimizer(
            optax.adam(1e-2), base.params, frozen)),
        "nnx filter": create_nnx_train_state(
            nnx_model(), optax.adam(1e-2), base.rng,
            wrt=nnx.All(nnx.Param, nnx.PathContains("output"))),
        "nnx patterns": create_nnx_train_state(
            nnx_model(), transfer.make_transfer_optimizer(optax.adam(1e-2), base.params,
                                                          frozen), base.rng),
    }
    states["linen"] = states["linen"].replace(opt_state=states["linen"].tx.init(base.params))
    images = jax.random.normal(jax.random.key(5), (3, 8, 32, 32, 1))
    labels = jax.random.randint(jax.random.key(6), (3, 8), 0, 10)
    step = jax.jit(transfer.make_transfer_train_step(frozen))
    for name in states:
        for i in range(3):
            states[name], _ = step(states[name], {"image": images[i], "label": labels[i]})
    for name in ("nnx filter", "nnx patterns"):
        chex.assert_trees_all_close(states[name].params, states["linen"].params,
                                    rtol=1e-6, atol=1e-7)
        for layer in ("c1", "c3", "c5", "f6"):
            chex.assert_trees_all_equal(states[name].params[layer], base.params[layer])
        assert not np.array_equal(states[name].params["output"]["kernel"],
                                  base.params["output"]["kernel"])
    with pytest.raises(ValueError, match="selects no parameter"):
        create_nnx_train_state(nnx_model(), optax.sgd(0.1), base.rng,
                               wrt=nnx.All(nnx.Param, nnx.PathContains("fc9")))


def test_nnx_ensemble_equals_separate_members_and_predicts():
    """create_nnx_ensemble_state + the vmapped step = K separate NNX states stepped one by
    one (same derived keys); predict() with the state's apply_fn gives each member's output."""
    from jaxcnn import ensemble, models

    def make(rngs):
        return models.create("lenet5_modern", num_classes=10, api="nnx", rngs=rngs,
                             dropout_rate=0.5)

    keys = jax.random.split(jax.random.key(0), 3)
    tx = optax.adam(1e-3)
    stacked = ensemble.create_nnx_ensemble_state(make, tx, keys)
    images = jax.random.normal(jax.random.key(1), (3, 4, 32, 32, 1))
    labels = jax.random.randint(jax.random.key(2), (3, 4), 0, 10)
    stacked, _ = jax.jit(ensemble.make_ensemble_train_step())(
        stacked, {"image": images, "label": labels})
    step = jax.jit(make_train_step())
    logits = ensemble.predict(stacked.apply_fn, ensemble.ensemble_variables(stacked), images[0])
    assert logits.shape == (3, 4, 10)
    for k in range(3):
        init_key, train_key = jax.random.split(jax.random.key_data(keys[k]))
        init_key = jax.random.wrap_key_data(init_key)
        single = create_nnx_train_state(make(nnx.Rngs(params=init_key, dropout=init_key)), tx,
                                        train_key)
        single, _ = step(single, {"image": images[k], "label": labels[k]})
        member = jax.tree_util.tree_map(lambda a, k=k: a[k], stacked.params)
        chex.assert_trees_all_close(member, single.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(logits[k], merge_model(single)(images[0]),
                                   rtol=1e-4, atol=1e-5)
    # The members differ (own keys), and dropout was on in training only.
    assert not np.allclose(logits[0], logits[1])
