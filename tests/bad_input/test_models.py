"""Bad input to every registered model (``jaxcnn.models.list_models()``) and the registry.

Three rows per model, all traced (``jax.eval_shape``): a 3-D image without the batch axis, a
uint8 image, and variables initialised on 3 channels applied to a 4-channel image. The last
one only needs the model's first layer (see ``first_layer_variables``), where it must fail
with a message naming ``x`` and the fix, not Flax's ``ScopeParamShapeError``.
"""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from jaxcnn import models
from jaxcnn.models.registry import unregister
from tests.bad_input._census import (
    Case,
    apply,
    apply_on_other_input,
    check,
    first_layer_variables,
    init,
    params,
    spec,
    train_kwargs,
)

# 32x32 reaches every model's first layer (AlexNet's 11x11/4 conv included); the rows fail
# before any later layer could need a larger image.
SIZE = 32


def _model_rows(name: str) -> list[Case]:
    model = models.create(name, num_classes=10)
    kwargs = train_kwargs(model)
    rgb, four = spec(2, SIZE, SIZE, 3), spec(2, SIZE, SIZE, 4)
    target = f"models.{name}"

    def other_channels():
        return apply(model, first_layer_variables(model, rgb), four, **kwargs)

    return [
        # Rank 1 (a flattened image, no batch axis) is wrong for every model; rank 3 is a valid
        # 1-D batch for the N-D models (ResNet, FCN, highway) and (N, H, C) for mlp/perceptron.
        Case(target, "rank 1", lambda: init(model, spec(SIZE * SIZE * 3), **kwargs),
             ValueError, r"`x` must have rank [2-4].*got rank 1"),
        Case(target, "uint8 image", lambda: init(model, spec(2, SIZE, SIZE, 3,
                                                              dtype=jnp.uint8), **kwargs),
             TypeError, r"`x` must be a floating-point.*astype\(jnp.float32\).*divide by 255"),
        # Models flattening first (perceptron, mlp) see 4/3 as many features, not channels.
        Case(target, "other channels at apply", other_channels, ValueError,
             r"`x` with shape \(.*\) \(\d+ (channels|features) on the last axis\) does not fit "
             r"layer .*`model.init` again"),
    ]


def _duplicate_registration():
    """A fresh name registered twice, then removed: the zoo stays as it was."""
    try:
        for _ in range(2):
            models.register("_census_duplicate")(lambda num_classes=10: None)
    finally:
        unregister("_census_duplicate")


def _nnx_rngs():
    from flax import nnx

    return nnx.Rngs(0)


def _nnx_lenet_on_rgb():
    """An NNX LeNet-5 (built on 32x32x1) called on RGB images, as a user meets it."""
    model = models.create("lenet5", num_classes=10, api="nnx", rngs=_nnx_rngs())
    model.eval()
    return model(jnp.ones((2, SIZE, SIZE, 3)))


REGISTRY = [
    Case("models.create", "unknown name", lambda: models.create("resnt18"), ValueError,
         r"unknown model name 'resnt18'. Did you mean 'resnet18'.*list_models\(\)"),
    Case("models.create", "unknown option", lambda: models.create("lenet5", widht=2),
         TypeError, r"unknown option\(s\) \['widht'\]; use one of"),
    Case("models.register", "name taken", _duplicate_registration, ValueError,
         r"model name '_census_duplicate' is already registered; choose another name"),
    Case("models.lenet5", "image without batch axis",
         lambda: init(models.create("lenet5", num_classes=10), spec(SIZE, SIZE, 1)),
         ValueError, r"`x` must have rank 4 .*got rank 3 with shape \(32, 32, 1\)"),
    # The same failure with the model's full variables, as a user meets it.
    Case("models.lenet5", "greyscale variables, RGB image",
         lambda: apply_on_other_input(models.create("lenet5", num_classes=10),
                                      spec(2, SIZE, SIZE, 1), spec(2, SIZE, SIZE, 3)),
         ValueError, r"`x` with shape \(2, 32, 32, 3\) \(3 channels on the last axis\) does "
                     r"not fit layer 'c1': its `kernel` was initialised with shape "
                     r"\(5, 5, 1, 6\)"),
    Case("models.create", "num_classes 0",
         lambda: init(models.create("lenet5", num_classes=0), spec(2, SIZE, SIZE, 1)),
         ValueError, r"`num_classes` must be a positive int"),
    Case("models.create", "bn_axis_name without BatchNorm",
         lambda: models.create("lenet5", bn_axis_name="batch"), ValueError,
         r"model 'lenet5' has no BatchNorm .*bn_axis_name='batch'"),
    Case("models.create", "unknown api", lambda: models.create("lenet5", api="flax"),
         ValueError, r"unknown api 'flax'; use one of \('linen', 'nnx'\)"),
    Case("models.create", "api='nnx' without rngs", lambda: models.create("lenet5", api="nnx"),
         ValueError, r"api='nnx' builds the variables now: pass rngs, e.g. "
                     r"jaxcnn.models.create\('lenet5', api='nnx', rngs=flax.nnx.Rngs\(0\)\)"),
    Case("models.create", "rngs for a Linen model",
         lambda: models.create("lenet5", rngs=_nnx_rngs()), ValueError,
         r"`rngs` and `input_shape` are for api='nnx'"),
    Case("models.input_shape", "unknown name", lambda: models.input_shape("lenet6"),
         ValueError, r"unknown model name 'lenet6'. Did you mean 'lenet5'"),
    Case("models.lenet5", "NNX model, RGB image", _nnx_lenet_on_rgb, ValueError,
         r"`x` with shape \(2, 32, 32, 3\) \(3 channels on the last axis\) does not fit "
         r"layer 'c1'"),
    Case("models.has_batch_norm", "a name instead of a model",
         lambda: models.has_batch_norm("resnet18"), TypeError,
         r"`model` must be a Flax module .* got 'resnet18'"),
]

CASES = [row for name in models.list_models() for row in _model_rows(name)] + REGISTRY


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case: Case) -> None:
    check(case)
