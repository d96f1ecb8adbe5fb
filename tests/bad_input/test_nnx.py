"""Bad input to the NNX front end: weights that do not fit, and what ZooModel is given."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from jaxcnn import models
from jaxcnn.nnx import ZooModel, from_linen, to_linen
from tests.bad_input._census import Case, check, params


def _lenet(num_classes=10):
    return models.create("lenet5", num_classes=num_classes, api="nnx", rngs=nnx.Rngs(0))


def _linen_variables(num_classes):
    return models.create("lenet5", num_classes=num_classes).init(
        jax.random.key(0), jnp.zeros((1, 32, 32, 1)))


CASES = [
    Case("nnx.from_linen", "other head size", lambda: from_linen(_lenet(), _linen_variables(7)),
         ValueError, r"params/output/bias: `variables` has shape \(7,\), the NNX model "
                     r"\(10,\); use the model name, num_classes"),
    Case("nnx.from_linen", "a list, not variables", lambda: from_linen(_lenet(), [1]),
         TypeError, r"`variables` must be a Linen variables mapping such as \{'params': ...\}"),
    Case("nnx.from_linen", "another collection",
         lambda: from_linen(_lenet(), {**_linen_variables(10), "cache": {}}), ValueError,
         r"collection\(s\) \['cache'\]; an NNX model takes only 'params' and 'batch_stats'"),
    Case("nnx.to_linen", "a Linen module",
         lambda: to_linen(models.create("lenet5")), TypeError,
         r"`module` must be an nnx.Module .*got LeNet5.*from_linen"),
    Case("nnx.ZooModel", "image size the dense layer cannot take",
         lambda: ZooModel(models.create("lenet5"), (32, 32, 1), rngs=nnx.Rngs(0))(
             jnp.ones((2, 28, 28, 1))), ValueError,
         r"`x` must be at least 32x32 for LeNet-5, got shape \(2, 28, 28, 1\); pad"),
    Case("nnx.ZooModel", "input_shape without channels",
         lambda: ZooModel(models.create("lenet5"), (32, 32), rngs=nnx.Rngs(0)), ValueError,
         r"`input_shape` must be one image's \(H, W, C\), without the batch axis, got "
         r"\(32, 32\)"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case: Case) -> None:
    check(case)
