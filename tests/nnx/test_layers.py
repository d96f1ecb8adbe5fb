"""jaxcnn.nnx layers against their jaxcnn.layers (Linen) twins.

Every layer is built both ways with one configuration; the Linen variables (random, never the
initial values: a mix-up of two variables would otherwise hide) are loaded into the NNX layer
with ``from_linen``. Then the variable trees (names, shapes, dtypes), the outputs in evaluation
and training mode and the updated BatchNorm statistics must agree, the tree must round-trip
through ``to_linen``, and ``nnx.jit`` / ``nnx.grad`` must give Linen's gradients.
"""

import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn import nnx as N
from jaxcnn.nnx import from_linen, to_linen
from tests.layers._helpers import randn, random_variables

IMG = (2, 6, 6, 4)  # one input shape for most layers: compiled ops are shared


def _same(name, *args, **kwargs):
    """A layer without variables: the NNX layer takes the Linen layer's arguments."""
    return getattr(L, name)(*args, **kwargs), lambda: getattr(N, name)(*args, **kwargs), IMG


def _nnx(build):
    return lambda: build(nnx.Rngs(0))


CASES = {
    "Conv": (L.Conv(6, (3, 3), strides=2, padding=((1, 0), (2, 1)), groups=2),
             _nnx(lambda r: N.Conv(4, 6, (3, 3), strides=2, padding=((1, 0), (2, 1)),
                                   groups=2, rngs=r)), IMG),
    "Conv-1d": (L.Conv(3, (3,), dilation=2, padding="CAUSAL"),
                _nnx(lambda r: N.Conv(4, 3, (3,), dilation=2, padding="CAUSAL", rngs=r)),
                (2, 9, 4)),
    "ConvTranspose": (L.ConvTranspose(3, 3, strides=2, output_padding=1, use_bias=False),
                      _nnx(lambda r: N.ConvTranspose(4, 3, 3, strides=2, output_padding=1,
                                                     use_bias=False, rngs=r)), IMG),
    "DepthwiseConv": (L.DepthwiseConv(3, depth_multiplier=2, strides=2),
                      _nnx(lambda r: N.DepthwiseConv(4, 3, 2, depth_multiplier=2, rngs=r)),
                      IMG),
    "SeparableConv": (L.SeparableConv(5, (3, 3), depth_multiplier=2, dilation=2),
                      _nnx(lambda r: N.SeparableConv(4, 5, (3, 3), depth_multiplier=2,
                                                     dilation=2, rngs=r)), IMG),
    "LocalConv": (L.LocalConv(3, (3, 3), strides=2, padding=1),
                  _nnx(lambda r: N.LocalConv(4, 3, (3, 3), strides=2, padding=1,
                                             input_size=(6, 6), rngs=r)), IMG),
    "Dense": (L.Dense(5), _nnx(lambda r: N.Dense(4, 5, rngs=r)), (3, 4)),
    "Dense-bfloat16": (L.Dense(5, dtype=jnp.bfloat16),
                       _nnx(lambda r: N.Dense(4, 5, dtype=jnp.bfloat16, rngs=r)), (3, 4)),
    "Maxout": (L.Maxout(3, pieces=2), _nnx(lambda r: N.Maxout(4, 3, 2, rngs=r)), (3, 4)),
    "BatchNorm": (L.BatchNorm(momentum=0.8, epsilon=1e-3),
                  _nnx(lambda r: N.BatchNorm(4, momentum=0.8, epsilon=1e-3, rngs=r)), IMG),
    "BatchNorm-no-scale": (L.BatchNorm(use_scale=False),
                           _nnx(lambda r: N.BatchNorm(4, use_scale=False, rngs=r)), (5, 4)),
    "LayerNorm": (L.LayerNorm(axes=-1), _nnx(lambda r: N.LayerNorm(4, axes=-1, rngs=r)), IMG),
    "GroupNorm": (L.GroupNorm(num_groups=2, use_bias=False),
                  _nnx(lambda r: N.GroupNorm(4, num_groups=2, use_bias=False, rngs=r)), IMG),
    "InstanceNorm": (L.InstanceNorm(epsilon=1e-3),
                     _nnx(lambda r: N.InstanceNorm(4, epsilon=1e-3, rngs=r)), IMG),
    "LocalResponseNorm": _same("LocalResponseNorm", 3, alpha=0.1),
    "LocalContrastNorm": _same("LocalContrastNorm", window=3, sigma=1.0),
    "MaxPool": _same("MaxPool", 3, strides=2, padding="SAME"),
    "AvgPool": _same("AvgPool", 3, strides=1, padding=1, count_include_pad=False),
    "LPPool": _same("LPPool", 2.0, window=2),
    "GlobalAvgPool": _same("GlobalAvgPool", keepdims=True),
    "GlobalMaxPool": _same("GlobalMaxPool"),
    "AdaptiveAvgPool": _same("AdaptiveAvgPool", (3, 2)),
    "AdaptiveMaxPool": _same("AdaptiveMaxPool", 3),
    "SpatialPyramidPool": _same("SpatialPyramidPool", (1, 2), "avg"),
    "Activation": _same("Activation", "gelu"),
}
RANDOM = {  # (Linen layer, NNX layer given rngs, the functional call with a key)
    "Dropout": (L.Dropout(0.5), lambda rngs: N.Dropout(0.5, rngs=rngs),
                lambda x, key: F.dropout(x, 0.5, key, True)),
    "SpatialDropout": (L.SpatialDropout(0.5), lambda rngs: N.SpatialDropout(0.5, rngs=rngs),
                       lambda x, key: F.spatial_dropout(x, 0.5, key, True)),
    "StochasticPool": (L.StochasticPool(2), lambda rngs: N.StochasticPool(2, rngs=rngs),
                       lambda x, key: F.stochastic_pool(x, key, 2, train=True)),
}


def _train_kwargs(linen, train):
    return {"train": train} if "train" in inspect.signature(type(linen).__call__).parameters \
        else {}


def _close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, np.float32),
                               np.asarray(expected, np.float32), rtol=1e-6, atol=1e-6)


def _spec(tree):
    return jax.tree.map(lambda a: (a.shape, a.dtype), tree)


def test_every_linen_layer_has_an_nnx_twin():
    layers = {n for n in L.__all__ if isinstance(getattr(L, n), type)}
    assert layers <= set(N.__all__)
    assert layers == {name.split("-")[0] for name in CASES} | set(RANDOM)
    for name in layers:
        assert issubclass(getattr(N, name), nnx.Module), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_nnx_layer_equals_linen(name):
    linen, build, shape = CASES[name]
    x = randn(shape, seed=1)
    variables = random_variables(linen, x, seed=2)
    layer = build()
    assert _spec(to_linen(layer)) == _spec(variables)  # names, shapes and dtypes
    # the same layer, built from the Linen layer's configuration
    assert _spec(to_linen(N.build_layer(linen, shape, rngs=nnx.Rngs(1)))) == _spec(variables)
    assert from_linen(layer, variables) is layer
    jax.tree.map(np.testing.assert_array_equal, to_linen(layer), variables)

    layer.eval()
    _close(layer(x), linen.apply(variables, x, **_train_kwargs(linen, False)))

    layer.train()
    mutable = ["batch_stats"] if "batch_stats" in variables else False
    out = linen.apply(variables, x, **_train_kwargs(linen, True), mutable=mutable)
    y, updates = out if mutable else (out, {})
    _close(layer(x), y)
    if mutable:  # BatchNorm: the running statistics move exactly as Linen's
        jax.tree.map(_close, to_linen(layer)["batch_stats"], updates["batch_stats"])
        assert not np.allclose(updates["batch_stats"]["mean"], variables["batch_stats"]["mean"])


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_layers_sample_in_training_only(name):
    linen, build, reference = RANDOM[name]
    x = jnp.abs(randn(IMG, seed=3)) + 0.1
    layer = build(nnx.Rngs(dropout=5))
    assert to_linen(layer) == {}
    assert type(N.build_layer(linen, IMG, rngs=nnx.Rngs(0))) is type(layer)
    first, second = layer(x), layer(x)  # training (the default), the stream moves on
    assert not np.array_equal(first, second)
    key = jax.random.key(7)
    np.testing.assert_array_equal(layer(x, rngs=key), reference(x, key))

    layer.eval()
    expected = linen.apply({}, x)  # Linen in evaluation mode
    _close(layer(x), expected)
    layer.train()
    _close(layer(x, deterministic=True), expected)

    unseeded = build(None)
    with pytest.raises(ValueError, match=rf"{name} in training mode \(deterministic=False\) "
                                         r"needs a 'dropout' key"):
        unseeded(x)
    np.testing.assert_array_equal(unseeded(x, rngs=nnx.Rngs(dropout=7)),
                                  reference(x, jax.random.fold_in(jax.random.key(7), 0)))


@pytest.mark.parametrize("name", ["Conv", "BatchNorm", "Maxout"])
def test_jit_and_grad_equal_linen(name):
    """One training step under nnx.jit: gradients w.r.t. the nnx.Param variables equal
    jax.grad of the Linen layer's loss, and BatchNorm's statistics are updated as Linen's."""
    linen, build, shape = CASES[name]
    x = randn(shape, seed=4)
    variables = random_variables(linen, x, seed=5)
    layer = from_linen(build(), variables)
    train = _train_kwargs(linen, True)

    @nnx.jit
    def nnx_step(layer, x):
        return nnx.grad(lambda m: (m(x) ** 2).mean())(layer)

    @jax.jit
    def linen_step(variables, x):
        def loss(params):
            y, updates = linen.apply({**variables, "params": params}, x, **train,
                                     mutable=["batch_stats"])
            return (y ** 2).mean(), updates
        return jax.grad(loss, has_aux=True)(variables["params"])

    grads = nnx_step(layer, x)
    expected, updates = linen_step(variables, x)
    got = nnx.to_pure_dict(grads)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 got, expected)
    assert all(np.abs(g).max() > 0 for g in jax.tree.leaves(got))
    if "batch_stats" in updates:
        jax.tree.map(_close, to_linen(layer)["batch_stats"], updates["batch_stats"])


# ----------------------------------------------------------------------------- nested


class _NNXBlock(nnx.Module):
    def __init__(self, rngs):
        self.conv = N.Conv(3, 4, 3, use_bias=False, rngs=rngs)
        self.bn = N.BatchNorm(4, rngs=rngs)
        self.drop = N.Dropout(0.5, rngs=rngs)
        self.head = N.Maxout(4, 2, 2, rngs=rngs)

    def __call__(self, x):
        x = self.drop(F.relu(self.bn(self.conv(x))))
        return self.head(x.mean(axis=(1, 2)))


class _LinenBlock(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        x = L.Conv(4, 3, use_bias=False, name="conv")(x)
        x = L.BatchNorm(name="bn")(x, train=train)
        x = L.Dropout(0.5, name="drop")(F.relu(x), train=train)
        return L.Maxout(2, 2, name="head")(x.mean(axis=(1, 2)))


def test_nested_modules_map_onto_the_linen_paths():
    x = randn((4, 5, 5, 3), seed=6)
    linen = _LinenBlock()
    variables = random_variables(linen, x, seed=7)
    block = _NNXBlock(nnx.Rngs(0))
    assert _spec(to_linen(block)) == _spec(variables)
    from_linen(block, variables)

    block.eval()  # one call switches every layer
    assert block.bn.use_running_average and block.drop.deterministic
    _close(block(x), linen.apply(variables, x))

    block.train()
    assert not block.bn.use_running_average and not block.drop.deterministic
    _, updates = linen.apply(variables, x, train=True, mutable=["batch_stats"],
                             rngs={"dropout": jax.random.key(0)})
    block(x)  # the statistics come before the dropout, so they do not depend on its key
    jax.tree.map(_close, to_linen(block)["batch_stats"], updates["batch_stats"])


def test_from_linen_names_the_path_and_both_shapes():
    block = _NNXBlock(nnx.Rngs(0))
    before = to_linen(block)
    other = random_variables(_LinenBlock(), randn((1, 5, 5, 2)))  # two input channels
    with pytest.raises(ValueError, match=r"params/conv/kernel: `variables` has shape "
                                         r"\(3, 3, 2, 4\), the NNX model \(3, 3, 3, 4\)"):
        from_linen(block, other)
    jax.tree.map(np.testing.assert_array_equal, to_linen(block), before)  # nothing written

    variables = random_variables(_LinenBlock(), randn((1, 5, 5, 3)))
    del variables["batch_stats"]["bn"]["var"]
    with pytest.raises(ValueError, match=r"`variables` has no batch_stats/bn/var \(shape "
                                         r"\(4,\)\), which the NNX model needs"):
        from_linen(block, variables)
    variables = random_variables(_LinenBlock(), randn((1, 5, 5, 3)))
    variables["params"]["head"]["dense"]["scale"] = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"`variables` has params/head/dense/scale \(shape "
                                         r"\(4,\)\), which the NNX model does not have"):
        from_linen(block, variables)
