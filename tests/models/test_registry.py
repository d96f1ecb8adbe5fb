"""``models.create(..., bn_axis_name=...)``: bound into BatchNorm, rejected clearly elsewhere."""

import functools
import re

import jax
import jax.numpy as jnp
import pytest

from jaxcnn import layers as L
from jaxcnn import models

# The zoo's models with BatchNorm in their default configuration; every other registered
# model has none. A new model must be added here or to NO_BATCH_NORM (checked below).
BATCH_NORM = re.compile(r"densenet.*|googlenet|resnet.*|wide_resnet.*|vgg\d+_bn|xception")
NO_BATCH_NORM = {"alexnet", "alexnet_torchvision", "allconv", "fcn_classifier", "highway_net",
                 "lenet5", "lenet5_modern", "mlp", "perceptron", "vgg11", "vgg13", "vgg16",
                 "vgg19"}


def _bound_axis(norm):
    """The ``axis_name`` a norm factory (a class or nested partials of one) will be built with."""
    axis = None
    while isinstance(norm, functools.partial):
        axis = norm.keywords.get("axis_name", axis) if axis is None else axis
        norm = norm.func
    return axis


def test_every_registered_model_is_classified():
    names = models.list_models()
    with_bn = {n for n in names if BATCH_NORM.fullmatch(n)}
    assert with_bn and not with_bn & NO_BATCH_NORM
    assert with_bn | NO_BATCH_NORM == set(names)


@pytest.mark.parametrize("name", [n for n in models.list_models() if BATCH_NORM.fullmatch(n)])
def test_models_with_batch_norm_bind_the_axis(name):
    model = models.create(name, num_classes=10, bn_axis_name="batch")
    assert _bound_axis(model.norm) == "batch"
    assert models.has_batch_norm(model)


@pytest.mark.parametrize("name", sorted(NO_BATCH_NORM))
def test_models_without_batch_norm_reject_the_axis_naming_the_model(name):
    assert not models.has_batch_norm(models.create(name, num_classes=10))
    with pytest.raises(ValueError, match=rf"model {name!r} has no BatchNorm.*bn_axis_name"):
        models.create(name, num_classes=10, bn_axis_name="batch")


def test_group_norm_resnet_rejects_the_axis_with_a_clear_error():
    group_norm = functools.partial(L.GroupNorm, num_groups=2)
    model = models.create("resnet18", num_classes=10, norm=group_norm)
    assert not models.has_batch_norm(model)
    with pytest.raises(ValueError, match=r"model 'resnet18' has no BatchNorm.*GroupNorm"):
        models.create("resnet18", num_classes=10, norm=group_norm, bn_axis_name="batch")


def test_batch_norm_given_as_an_option_binds_the_axis():
    model = models.create("highway_net", num_classes=10, norm=L.BatchNorm, bn_axis_name="batch")
    assert _bound_axis(model.norm) == "batch"


def test_bound_axis_pools_statistics_under_pmap():
    """The binding is real: per-device batches with different means give one pooled mean."""
    model = models.create("highway_net", num_classes=4, norm=L.BatchNorm, bn_axis_name="batch",
                          depth=1, width=2, stages=1)
    x = jnp.arange(2.0)[:, None, None, None, None] + jnp.ones((2, 1, 8, 8, 3))
    variables = model.init(jax.random.key(0), x[0])

    def stats(x):
        _, new = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return new["batch_stats"]

    out = jax.pmap(stats, axis_name="batch", devices=jax.devices()[:2])(x)
    first = jax.tree_util.tree_leaves(out)[0]
    assert jnp.array_equal(first[0], first[1])  # both devices hold the pooled statistics


def test_training_loop_binds_the_axis_only_where_there_is_batch_norm():
    from experiments.configs import default
    from jaxcnn.training.loop import _build_model

    config = default.get_config()
    assert not models.has_batch_norm(_build_model(config, 10, "pmap"))  # lenet5: no error
    config.model = "vgg11_bn"
    assert _bound_axis(_build_model(config, 10, "pmap").norm) == "batch"
    assert _bound_axis(_build_model(config, 10, "mesh").norm) is None
