"""Bad input to :mod:`jaxcnn.layers` and :mod:`jaxcnn.blocks`, traced with ``jax.eval_shape``.

"Wrong channel count" for a module means variables initialised on ``C`` channels applied to an
input with ``C'`` channels: the layer must name ``x`` and the fix, not stop in Flax's
``ScopeParamShapeError``.
"""

from __future__ import annotations

import flax.errors
import jax.numpy as jnp
import pytest

from jaxcnn import blocks as B
from jaxcnn import layers as L
from tests.bad_input._census import (
    Case,
    apply,
    apply_on_other_input,
    check,
    init,
    params,
    spec,
    train_kwargs,
)

X = spec(2, 8, 8, 3)
X4 = spec(2, 8, 8, 4)
NO_BATCH = spec(8, 8, 3)
FLAT = spec(2, 3)
SCALAR = spec()
U8 = spec(2, 8, 8, 3, dtype=jnp.uint8)

FLOAT = r"`x` must be a floating-point.*astype\(jnp.float32\)"
BATCH_AXIS = r"`x` must have a batch axis.*x\[None\]"
NO_RNG = r"with train=True needs a 'dropout' PRNG stream.*rngs=\{'dropout': key\}"


def _other_channels(module, x=X, other=X4, unit="channels"):
    """Initialise on ``x``, apply to ``other``: must name ``x`` and the stored parameter."""
    n = other.shape[-1]
    return (lambda: apply_on_other_input(module, x, other, **train_kwargs(module)), ValueError,
            rf"`x` with shape \(.*\) \({n} {unit} on the last axis\) does not fit layer.*was "
            rf"initialised with shape")


def _rows(ns, name, module, *, rank_input=NO_BATCH, rank_match=r"`x` must have rank",
          uint8=U8, channels=True, extra=()):
    """The rows every module gets: wrong rank, an integer image, other channels; plus extras."""
    target = f"{ns}.{name}"
    kwargs = train_kwargs(module)
    rows = [
        Case(target, "wrong rank", lambda: init(module, rank_input, **kwargs), ValueError,
             rank_match),
        Case(target, "uint8 x", lambda: init(module, uint8, **kwargs), TypeError, FLOAT),
    ]
    if channels:
        rows.append(Case(target, "other channels at apply", *_other_channels(module)))
    rows += [Case(target, what, *rest) for what, *rest in extra]
    return rows


def _init(module, x=X, **kwargs):
    return lambda: init(module, x, **kwargs)


LAYERS = [
    *_rows("layers", "Conv", L.Conv(4, (3, 3)), rank_match=BATCH_AXIS, extra=[
        ("groups 0", _init(L.Conv(4, (3, 3), groups=0)), ValueError,
         r"`groups` must be a positive int"),
        ("features 0", _init(L.Conv(0, (3, 3))), ValueError,
         r"`features` must be a positive int"),
        ("kernel_size of 4 dims", _init(L.Conv(4, (3, 3, 3, 3))), ValueError,
         r"`kernel_size` must be an int or 1-3 ints"),
        ("int kernel_size, rank 2 x", _init(L.Conv(4, 3), FLAT), ValueError,
         r"`x` must have rank 3 or 4 or 5"),
    ]),
    *_rows("layers", "ConvTranspose", L.ConvTranspose(4, (3, 3)), rank_match=BATCH_AXIS,
           extra=[("features 0", _init(L.ConvTranspose(0, (3, 3))), ValueError,
                   r"`features` must be a positive int")]),
    *_rows("layers", "DepthwiseConv", L.DepthwiseConv((3, 3)), rank_match=BATCH_AXIS, extra=[
        ("depth_multiplier 0", _init(L.DepthwiseConv((3, 3), depth_multiplier=0)), ValueError,
         r"`depth_multiplier` must be a positive int"),
    ]),
    *_rows("layers", "SeparableConv", L.SeparableConv(8, (3, 3)), rank_match=BATCH_AXIS,
           extra=[("features 0", _init(L.SeparableConv(0, (3, 3))), ValueError,
                   r"`features` must be a positive int")]),
    *_rows("layers", "LocalConv", L.LocalConv(4, (3, 3)), rank_match=BATCH_AXIS, extra=[
        ("other image size at apply", *_other_channels(L.LocalConv(4, (3, 3)), X,
                                                       spec(2, 10, 10, 3))),
        ("window larger than input", _init(L.LocalConv(4, (9, 9))), ValueError,
         r"larger than the padded input.*use a smaller kernel"),
    ]),
    *_rows("layers", "Dense", L.Dense(4), rank_input=SCALAR,
           rank_match=r"`x` must have a feature axis", uint8=spec(2, 3, dtype=jnp.uint8),
           channels=False, extra=[
               ("other features at apply", *_other_channels(L.Dense(4), FLAT, spec(2, 5),
                                                            unit="features")),
               ("features 0", _init(L.Dense(0), FLAT), ValueError,
                r"`features` must be a positive int"),
           ]),
    Case("layers.Maxout", "pieces 0", _init(L.Maxout(4, 0), FLAT), ValueError,
         r"`pieces` must be a positive int"),
    Case("layers.Maxout", "uint8 x", _init(L.Maxout(4, 2), spec(2, 3, dtype=jnp.uint8)),
         TypeError, FLOAT),
    Case("layers.Maxout", "other features at apply",
         *_other_channels(L.Maxout(4, 2), FLAT, spec(2, 5), unit="features")),
    Case("layers.Dropout", "no dropout rng", lambda: apply(L.Dropout(0.5), {}, X, train=True),
         flax.errors.InvalidRngError, "Dropout " + NO_RNG),
    Case("layers.Dropout", "rate 2", lambda: apply(L.Dropout(2.0), {}, X), ValueError,
         r"`rate` is the drop probability and must be in \[0, 1\]"),
    Case("layers.Dropout", "uint8 x", lambda: apply(L.Dropout(0.5), {}, U8), TypeError, FLOAT),
    Case("layers.SpatialDropout", "no spatial axis",
         lambda: apply(L.SpatialDropout(0.5), {}, FLAT), ValueError,
         r"`x` must be \(N, \*spatial, C\).*use `dropout`"),
    Case("layers.SpatialDropout", "no dropout rng",
         lambda: apply(L.SpatialDropout(0.5), {}, X, train=True), flax.errors.InvalidRngError,
         "SpatialDropout " + NO_RNG),
    Case("layers.Activation", "unknown name", lambda: apply(L.Activation("rleu"), {}, X),
         ValueError, r"unknown activation name 'rleu'. Did you mean 'relu'"),
    Case("layers.get_activation", "unknown name", lambda: L.get_activation("tanhh"),
         ValueError, r"unknown activation name 'tanhh'. Did you mean 'tanh'"),
    Case("layers.get_activation", "not a name", lambda: L.get_activation(3), TypeError,
         r"`name` must be an activation name or a callable, got 3"),
    *_rows("layers", "BatchNorm", L.BatchNorm(), rank_input=spec(3),
           rank_match=r"`x` must have rank 2 or 3 or 4 or 5", extra=[
               ("momentum 2", _init(L.BatchNorm(momentum=2.0), X, train=True), ValueError,
                r"`momentum` must lie in \[0.0, 1.0\]"),
           ]),
    *_rows("layers", "LayerNorm", L.LayerNorm(), rank_input=spec(3),
           rank_match=r"`x` must have rank 2 or 3 or 4 or 5"),
    *_rows("layers", "GroupNorm", L.GroupNorm(num_groups=1), rank_input=spec(3),
           rank_match=r"`x` must have rank 2 or 3 or 4 or 5", extra=[
               ("groups not dividing", _init(L.GroupNorm(num_groups=2)), ValueError,
                r"`num_groups`=2 must divide the number of channels C=3"),
           ]),
    *_rows("layers", "InstanceNorm", L.InstanceNorm(), rank_input=FLAT,
           rank_match=r"`x` must have rank 3 or 4 or 5"),
    *_rows("layers", "LocalResponseNorm", L.LocalResponseNorm(), rank_input=spec(3),
           rank_match=r"`x` must have rank 2 or 3 or 4 or 5", channels=False, extra=[
               ("size 0", _init(L.LocalResponseNorm(size=0)), ValueError,
                r"`size` must be >= 1"),
           ]),
    *_rows("layers", "LocalContrastNorm", L.LocalContrastNorm(), rank_input=FLAT,
           rank_match=r"`x` must have rank 3 or 4 or 5", channels=False),
]

_POOLS = {
    "MaxPool": L.MaxPool(), "AvgPool": L.AvgPool(), "LPPool": L.LPPool(2.0),
    "GlobalAvgPool": L.GlobalAvgPool(), "GlobalMaxPool": L.GlobalMaxPool(),
    "AdaptiveAvgPool": L.AdaptiveAvgPool(2), "AdaptiveMaxPool": L.AdaptiveMaxPool(2),
    "SpatialPyramidPool": L.SpatialPyramidPool(), "StochasticPool": L.StochasticPool(),
}
POOLING = [
    *(row for name, module in _POOLS.items()
      for row in _rows("layers", name, module, rank_input=FLAT, channels=False)),
    Case("layers.StochasticPool", "no dropout rng",
         lambda: apply(L.StochasticPool(), {}, X, train=True), flax.errors.InvalidRngError,
         "StochasticPool " + NO_RNG),
    Case("layers.SpatialPyramidPool", "kind", _init(L.SpatialPyramidPool(kind="sum")),
         ValueError, r"`kind` must be one of \('max', 'avg'\)"),
    Case("layers.LPPool", "p 0", _init(L.LPPool(0.0)), ValueError, r"`p` must be a finite"),
    Case("layers.MaxPool", "window larger than input", _init(L.MaxPool(9)), ValueError,
         r"larger than the padded input"),
    Case("layers.AdaptiveAvgPool", "output_size 0", _init(L.AdaptiveAvgPool(0)), ValueError,
         r"`output_size` must be >= 1"),
]

_SPATIAL = r"`x` must have rank 3 or 4 or 5"
BLOCKS = [
    *_rows("blocks", "BasicBlock", B.BasicBlock(4), rank_input=FLAT, rank_match=_SPATIAL,
           extra=[("strides 0", _init(B.BasicBlock(4, strides=0)), ValueError,
                   r"`strides` must be >= 1")]),
    *_rows("blocks", "Bottleneck", B.Bottleneck(4), rank_input=FLAT, rank_match=_SPATIAL,
           extra=[("stride_on", _init(B.Bottleneck(4, stride_on="5x5")), ValueError,
                   r"`stride_on` must be one of \('3x3', '1x1'\)")]),
    *_rows("blocks", "PreActBlock", B.PreActBlock(4), rank_input=FLAT, rank_match=_SPATIAL),
    *_rows("blocks", "PreActBottleneck", B.PreActBottleneck(4), rank_input=FLAT,
           rank_match=_SPATIAL),
    *_rows("blocks", "SqueezeExcite", B.SqueezeExcite(), rank_input=FLAT,
           rank_match=_SPATIAL, channels=False, extra=[
               ("reduction 0", _init(B.SqueezeExcite(reduction=0)), ValueError,
                r"`reduction` must be a positive int"),
               ("other channels at apply",
                *_other_channels(B.SqueezeExcite(reduction=1), unit="features")),
           ]),
    *_rows("blocks", "DenseLayer", B.DenseLayer(4), rank_input=FLAT, rank_match=_SPATIAL),
    *_rows("blocks", "DenseBlock", B.DenseBlock(2, 4), rank_input=FLAT, rank_match=_SPATIAL,
           extra=[("num_layers 0", _init(B.DenseBlock(0, 4)), ValueError,
                   r"`num_layers` must be a positive int")]),
    *_rows("blocks", "Transition", B.Transition(), rank_input=FLAT, rank_match=_SPATIAL,
           channels=False, extra=[
               ("compression 0", _init(B.Transition(compression=0.0)), ValueError,
                r"`compression` must be in \(0, 1\]"),
               ("other channels at apply", *_other_channels(B.Transition(features=2))),
           ]),
    *_rows("blocks", "HighwayDense", B.HighwayDense(), rank_input=SCALAR,
           rank_match=r"`x` must have a feature axis", uint8=spec(2, 3, dtype=jnp.uint8),
           channels=False),
    *_rows("blocks", "HighwayConv", B.HighwayConv(), rank_input=FLAT, rank_match=_SPATIAL),
    *_rows("blocks", "BasicConv", B.BasicConv(4, 3), rank_input=FLAT, rank_match=_SPATIAL),
    *_rows("blocks", "Inception", B.Inception(2, 2, 2, 2, 2, 2), rank_input=FLAT,
           rank_match=_SPATIAL, extra=[
               ("even kernel_5x5", _init(B.Inception(2, 2, 2, 2, 2, 2, kernel_5x5=4)),
                ValueError, r"`kernel_5x5` must be odd"),
           ]),
    *_rows("blocks", "InceptionAux", B.InceptionAux(10), rank_input=FLAT,
           rank_match=_SPATIAL),
    *_rows("blocks", "EntryFlowBlock", B.EntryFlowBlock(4), rank_input=FLAT,
           rank_match=_SPATIAL, extra=[
               ("features triple", _init(B.EntryFlowBlock((4, 4, 4))), ValueError,
                r"`features` must be an int or a pair"),
           ]),
    *_rows("blocks", "ExitFlowBlock", B.ExitFlowBlock((4, 8)), rank_input=FLAT,
           rank_match=_SPATIAL),
    *_rows("blocks", "MiddleFlowBlock", B.MiddleFlowBlock(), rank_input=FLAT,
           rank_match=_SPATIAL, extra=[
               ("features not channels", _init(B.MiddleFlowBlock(features=8)), ValueError,
                r"`features`=8 must equal the input channels"),
           ]),
]

CASES = LAYERS + POOLING + BLOCKS


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case: Case) -> None:
    check(case)
