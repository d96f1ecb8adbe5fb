"""jaxcnn.inspect: named intermediate activations and the Keras-style summary table."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import count_params
from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.inspect import intermediates, summary
from tests.layers._helpers import KEY, randn, random_variables


class Block(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = L.Conv(self.features, 3, use_bias=False, name="conv1")(x)
        return F.relu(L.BatchNorm(name="bn1")(x, train=train))


class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = Block(4, name="stage1_block1")(x, train)
        x = L.MaxPool(2, name="block1_pool")(x)
        x = L.Dropout(0.5, name="drop")(x, train)
        x = L.GlobalAvgPool(name="global_pool")(x)
        return L.Dense(3, name="head")(x)


X = randn((2, 8, 8, 3))
NET = Net()
VARIABLES = random_variables(NET, X)


def test_intermediates_returns_named_outputs_in_order():
    names = ["block1_pool", "stage1_block1/conv1", "stage1_block1", "head"]
    feats = intermediates(NET, VARIABLES, X, names)
    assert list(feats) == names
    p = VARIABLES["params"]
    conv = F.conv(X, p["stage1_block1"]["conv1"]["kernel"])
    np.testing.assert_allclose(feats["stage1_block1/conv1"], conv, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(feats["block1_pool"], F.max_pool(feats["stage1_block1"], 2),
                               rtol=1e-6)
    np.testing.assert_allclose(feats["head"], NET.apply(VARIABLES, X), rtol=1e-6)
    assert feats["block1_pool"].shape == (2, 4, 4, 4)
    # a single name is accepted as a plain string
    assert set(intermediates(NET, VARIABLES, X, "head")) == {"head"}


def test_intermediates_train_mode_uses_batch_stats_and_rngs():
    name = "stage1_block1/bn1"
    eval_feat = intermediates(NET, VARIABLES, X, [name])[name]
    with pytest.raises(flax.errors.InvalidRngError, match="dropout"):
        intermediates(NET, VARIABLES, X, [name], train=True)
    train_feat = intermediates(NET, VARIABLES, X, [name], train=True,
                               rngs={"dropout": jax.random.key(0)})[name]
    # training normalises with the batch's own statistics: mean ~ bias per channel
    bias = np.asarray(VARIABLES["params"]["stage1_block1"]["bn1"]["bias"])
    np.testing.assert_allclose(np.asarray(train_feat).mean((0, 1, 2)), bias, atol=1e-4)
    assert not np.allclose(train_feat, eval_feat)


def test_intermediates_under_jit():
    fn = jax.jit(lambda v, x: intermediates(NET, v, x, ["block1_pool"]))
    np.testing.assert_allclose(fn(VARIABLES, X)["block1_pool"],
                               intermediates(NET, VARIABLES, X, ["block1_pool"])["block1_pool"],
                               rtol=1e-5, atol=1e-5)


def test_intermediates_unknown_name_lists_available_paths():
    with pytest.raises(ValueError, match="Did you mean 'block1_pool'") as info:
        intermediates(NET, VARIABLES, X, ["block1_pool", "block1_pol"])
    message = str(info.value)
    assert "['block1_pol']" in message
    for path in ("stage1_block1/conv1", "stage1_block1/bn1", "global_pool", "head"):
        assert path in message


def test_intermediates_shared_module_and_model_without_train():
    class Shared(nn.Module):  # no `train` argument
        @nn.compact
        def __call__(self, x):
            dense = L.Dense(4, name="shared")
            return dense(F.tanh(dense(x)))

    x = randn((2, 4))
    model = Shared()
    variables = random_variables(model, x)
    out = intermediates(model, variables, x, ["shared"])["shared"]
    assert isinstance(out, tuple) and len(out) == 2  # one output per call, in call order
    np.testing.assert_allclose(out[1], model.apply(variables, x), rtol=1e-6)


def test_summary_table():
    lines = []
    text = summary(NET, X, print_fn=lines.append)
    assert lines == [text]
    rows = text.splitlines()
    assert rows[0] == "Model: Net, input (2, 8, 8, 3) float32 -> output (2, 3)"
    body = [r.split() for r in rows[4:rows.index(rows[1], 4)]]
    assert [r[0] for r in body] == ["stage1_block1", "stage1_block1/conv1", "stage1_block1/bn1",
                                    "block1_pool", "drop", "global_pool", "head"]
    by_name = {r[0]: r for r in body}
    # Conv 3*3*3*4 = 108 (no bias), BN scale+bias 8, Dense 4*3 + 3 = 15
    assert by_name["stage1_block1/conv1"][1:] == ["Conv", "(2,", "8,", "8,", "4)", "108"]
    assert by_name["stage1_block1"][-1] == "116"  # the block's row covers its submodules
    assert by_name["block1_pool"][1:] == ["MaxPool", "(2,", "4,", "4,", "4)", "0"]
    assert by_name["head"][1:] == ["Dense", "(2,", "3)", "15"]
    assert "Trainable params: 131 (524.00 B)" in text
    assert "Non-trainable state: 8 (batch_stats)" in text
    assert rows[-1] == "Total: 139"
    assert count_params(VARIABLES["params"]) == 131


def test_summary_depth_and_silence():
    text = summary(NET, jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32), depth=1,
                   print_fn=None, train=True)
    assert "stage1_block1/conv1" not in text and "stage1_block1 " in text
    assert "(1, 8, 8, 4)" in text


def test_summary_is_abstract_for_big_models():
    class Big(nn.Module):  # VGG-16's classifier: 102,764,544 + 16,781,312 + 4,097,000
        @nn.compact
        def __call__(self, x):
            x = x.reshape(x.shape[0], -1)
            x = L.Dense(4096, name="fc1")(x)
            x = L.Dense(4096, name="fc2")(x)
            return L.Dense(1000, name="predictions")(x)

    text = summary(Big(), jax.ShapeDtypeStruct((8, 7, 7, 512), jnp.float32), print_fn=None)
    assert "102,764,544" in text and "16,781,312" in text and "4,097,000" in text
    assert "Trainable params: 123,642,856 (471.66 MB)" in text


def test_vgg16_summary_and_keras_feature_names():
    from jaxcnn import models

    model = models.create("vgg16")
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    text = summary(model, x, print_fn=None)
    assert "Trainable params: 138,357,544" in text
    assert "block1_conv1" in text and "block5_pool" in text
    # intermediates itself can run abstractly: shapes of the Keras feature maps, no FLOPs
    variables = jax.eval_shape(model.init, KEY, x)
    feats = jax.eval_shape(lambda v, x: intermediates(model, v, x, ["block4_pool", "fc2"]),
                           variables, x)
    assert feats["block4_pool"].shape == (1, 14, 14, 512)
    assert feats["fc2"].shape == (1, 4096)
