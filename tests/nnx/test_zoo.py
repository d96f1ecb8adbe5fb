"""``models.create(name, api="nnx")``: the same model as Linen, as an ``nnx.Module``.

The references are the Linen modules the registry builds, applied to the NNX model's own
variables (read back with ``jaxcnn.nnx.to_linen``): outputs in eval mode, outputs and updated
BatchNorm statistics in training mode, and the variable tree (names and shapes) of the whole
registry against Linen's ``init``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxcnn import count_params, models
from jaxcnn.nnx import to_linen
from jaxcnn.nnx._zoo import _init_linen

# Every family's smallest member (options shrink the deep ones); the deeper registered
# variants are the same classes with other stage sizes (their trees: the registry test below).
SMALL = {
    "lenet5": {}, "lenet5_modern": {"dropout_rate": 0.5}, "perceptron": {}, "mlp": {},
    "fcn_classifier": {}, "allconv": {}, "highway_net": {"depth": 3},
    "resnet18": {"cifar_stem": True, "num_filters": 4, "stage_sizes": (1, 1)},
    "resnet18_v2": {"cifar_stem": True, "num_filters": 4, "stage_sizes": (1, 1)},
    "resnet50": {"cifar_stem": True, "num_filters": 4, "stage_sizes": (1, 1)},
    "densenet_bc_cifar": {"depth": 10, "growth_rate": 4},
    "vgg11_bn": {"width": 4, "fc_features": 16},
    "googlenet": {"aux_logits": True},  # slow (a minute to compile): `pytest -m slow`
}
SHAPES = {"googlenet": (96, 96, 3), "vgg11_bn": (32, 32, 3)}  # smaller than the usual


def _assert_trees_close(actual, expected, **tolerance):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tolerance), actual, expected)


def _linen_tree(name, shape, **options):
    linen = models.create(name, num_classes=7, **options)
    key = jax.random.key(0)
    tree = jax.eval_shape(lambda: linen.init({"params": key, "dropout": key},
                                             jnp.zeros((1, *shape)), train=False))
    return {c: jax.tree.map(lambda a: a.shape, dict(t)) for c, t in tree.items()}


def _nnx_tree(model):
    return {c: jax.tree.map(lambda a: a.shape, t) for c, t in to_linen(model).items()}


def _perturbed(model, seed):
    """Random parameters and BatchNorm statistics (never the initial ones: zero biases and
    identity statistics would hide a mix-up)."""
    rng = np.random.default_rng(seed)
    for kind in (nnx.Param, nnx.BatchStat):
        for _, var in nnx.to_flat_state(nnx.state(model, kind)):
            shape = var.value.shape
            noise = rng.standard_normal(shape).astype(np.float32) * 0.1
            var[...] = var[...] + (jnp.abs(noise) if kind is nnx.BatchStat else noise)
    # flat_state hands back the same Variable objects, so the model holds the new values
    return model


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "googlenet"
                                  else n for n in sorted(SMALL)])
def test_nnx_model_equals_linen_in_eval_and_train_mode(name):
    options = SMALL[name]
    shape = SHAPES.get(name) or models.input_shape(name, **options)
    model = models.create(name, num_classes=7, api="nnx", rngs=nnx.Rngs(0),
                          input_shape=shape, **options)
    assert _nnx_tree(model) == _linen_tree(name, shape, **options)
    _perturbed(model, 1)
    linen = models.create(name, num_classes=7, **options)
    variables = to_linen(model)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((4, *shape)), jnp.float32)

    model.eval()
    # Both compiled: the same program, so the same float32 bits up to 1e-6.
    _assert_trees_close(nnx.jit(lambda m, x: m(x))(model, x),
                        jax.jit(lambda v, x: linen.apply(v, x, train=False))(variables, x),
                        rtol=1e-6, atol=1e-6)

    model.train()
    key = jax.random.fold_in(jax.random.key(5), 0)
    model.rngs = nnx.Rngs(dropout=5)  # the key the Linen reference uses: its first draw
    y = nnx.jit(lambda m, x: m(x))(model, x)
    reference = jax.jit(lambda v, x: linen.apply(v, x, train=True, rngs={"dropout": key},
                                                 mutable=["batch_stats"]))(variables, x)
    expected, updates = reference
    # In train mode the two programs differ (NNX writes the batch statistics back into the
    # module, Linen returns them), so XLA may fuse and order reductions differently: equal up
    # to float32 rounding, which BatchNorm's batch statistics amplify layer by layer (4e-5
    # relative after GoogLeNet's 22 layers).
    _assert_trees_close(y, expected, rtol=1e-4, atol=1e-5)
    if "batch_stats" in variables:
        after = to_linen(model)["batch_stats"]
        _assert_trees_close(after, dict(updates["batch_stats"]), rtol=1e-4, atol=1e-6)
        assert not np.allclose(jax.tree.leaves(after)[0], jax.tree.leaves(
            variables["batch_stats"])[0])


def _sgd_step_linen(linen, variables, x, labels, key, tx):
    def loss_fn(params):
        logits, updates = linen.apply({**variables, "params": params}, x, train=True,
                                      rngs={"dropout": key}, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, updates

    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
    new_params = optax.apply_updates(variables["params"], tx.update(grads, tx.init(
        variables["params"]), variables["params"])[0])
    return loss, {**variables, **updates, "params": new_params}


@pytest.mark.parametrize("name", ["lenet5_modern", "resnet18"])
def test_one_training_step_updates_the_variables_as_linen_does(name):
    """nnx.Optimizer + nnx.value_and_grad on the NNX model against optax + jax.grad on the
    Linen module: the same loss, parameters and BatchNorm statistics after one step."""
    options = SMALL[name]
    shape = models.input_shape(name, **options)
    model = _perturbed(models.create(name, num_classes=7, api="nnx", rngs=nnx.Rngs(0),
                                     **options), 3)
    variables = to_linen(model)
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((8, *shape)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 7, 8))
    tx = optax.sgd(0.1, momentum=0.9)

    model.train()
    model.rngs = nnx.Rngs(dropout=6)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, labels):
        def loss_fn(model):
            return optax.softmax_cross_entropy_with_integer_labels(model(x), labels).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    loss = step(model, optimizer, x, labels)
    linen = models.create(name, num_classes=7, **options)
    key = jax.random.fold_in(jax.random.key(6), 0)
    expected_loss, expected = jax.jit(
        lambda v, x, y: _sgd_step_linen(linen, v, x, y, key, tx))(variables, x, labels)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    _assert_trees_close(to_linen(model), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(jax.tree.leaves(to_linen(model)["params"])[0],
                           jax.tree.leaves(variables["params"])[0])


@pytest.mark.parametrize("name", models.list_models())
def test_every_registered_model_has_the_linen_variable_tree(name):
    """Same paths and shapes (so the same parameter count) as the Linen model, for every
    registered model at its usual input size. Abstract: nothing is allocated or compiled."""
    model = nnx.eval_shape(lambda: models.create(name, num_classes=7, api="nnx",
                                                 rngs=nnx.Rngs(0)))
    # The Linen reference through the same jitted init (JAX reuses the trace ZooModel made of
    # this module and input: half the cost); the comparison is of ZooModel's variables.
    linen = models.create(name, num_classes=7)
    shape = models.input_shape(name)
    tree = jax.eval_shape(jax.jit(_init_linen, static_argnums=0), linen, jax.random.key(0),
                          jnp.zeros((1, *shape)))
    expected = {c: jax.tree.map(lambda a: a.shape, dict(t)) for c, t in tree.items()}
    assert _nnx_tree(model) == expected
    assert count_params(to_linen(model)["params"]) == count_params(tree["params"])



def test_intermediates_of_an_nnx_model_are_the_linen_feature_maps():
    from jaxcnn import intermediates

    options = SMALL["resnet18"]
    model = _perturbed(models.create("resnet18", num_classes=7, api="nnx", rngs=nnx.Rngs(0),
                                     **options), 7)
    x = jnp.asarray(np.random.default_rng(8).standard_normal((2, 32, 32, 3)), jnp.float32)
    names = ["stem_conv", "stage2_block1/conv1"]
    got = intermediates(model, None, x, names)
    linen = models.create("resnet18", num_classes=7, **options)
    expected = intermediates(linen, to_linen(model), x, names)
    assert [v.shape for v in got.values()] == [(2, 32, 32, 4), (2, 16, 16, 8)]
    _assert_trees_close(got, expected, rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"`model` must be a Flax linen module or a jaxcnn NNX"):
        intermediates(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), None, x, names)
