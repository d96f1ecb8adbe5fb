"""Bad input to the :mod:`jaxcnn.nnx` layers: at construction and at the call.

Everything is traced: layers are built with ``nnx.eval_shape`` (no initialiser runs) and called
under ``jax.eval_shape``, so a row costs a trace. An NNX layer checks its variables against the
input at each call, so "other channels" means a layer built for 3 channels fed 4: the message
must name ``x``, the stored variable and the fix (the Linen layers' "does not fit" error).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxcnn import layers as L
from jaxcnn import nnx as N
from tests.bad_input._census import Case, check, params, spec

X = spec(2, 8, 8, 3)
X4 = spec(2, 8, 8, 4)
NO_BATCH = spec(8, 8, 3)
FLAT = spec(2, 3)
U8 = spec(2, 8, 8, 3, dtype=jnp.uint8)

FLOAT = r"`x` must be a floating-point.*astype\(jnp.float32\)"
BATCH_AXIS = r"`x` must have a batch axis.*x\[None\]"
POSITIVE = r"`{}` must be a positive int, got 0"
RNGS = r"`rngs` must be an nnx.Rngs \(e.g. `rngs=nnx.Rngs\(0\)`\), got int"
NO_KEY = r"{} in training mode \(deterministic=False\) needs a 'dropout' key.*model.eval\(\)"


def _fits(name, n=4, unit="channels"):
    return (rf"`x` with shape \(.*\) \({n} {unit} on the last axis\) does not fit layer "
            rf"'{name}': its `.*` was initialised with shape .*Pass `x` shaped as when the "
            rf"layer was built")


def _rngs():
    return nnx.Rngs(0)


def _build(build):
    """Construct the layer abstractly (shapes only)."""
    return lambda: nnx.eval_shape(build)


def _call(build, x, **kwargs):
    """Construct the layer abstractly and call it on ``x`` (shapes only)."""
    def run():
        graphdef, state = nnx.split(nnx.eval_shape(build))
        return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x, **kwargs), state, x)
    return run


def _rows(name, build, *, in_features=True, rank_input=NO_BATCH, rank_match=BATCH_AXIS,
          uint8=U8, other=X4, unit="channels", extra=()):
    """Every layer: wrong rank and an integer image at the call; layers with variables also
    get zero ``in_features``, bad ``rngs`` and other channels at the call."""
    target = f"nnx.{name}"
    rows = [Case(target, "wrong rank", _call(build(), rank_input), ValueError, rank_match),
            Case(target, "uint8 x", _call(build(), uint8), TypeError, FLOAT)]
    if in_features:
        feature = "in_features" if in_features is True else in_features
        rows += [
            Case(target, f"{feature} 0", _build(build(features=0)), ValueError,
                 POSITIVE.format(feature)),
            Case(target, "rngs not an nnx.Rngs", _build(build(rngs=0)), TypeError, RNGS),
            Case(target, "other channels at the call", _call(build(), other), ValueError,
                 _fits(name, other.shape[-1], unit)),
        ]
    return rows + [Case(target, what, *rest) for what, *rest in extra]


def _conv(cls, *args, **options):
    def build(features=3, rngs=None):
        return lambda: cls(features, *args, **options, rngs=_rngs() if rngs is None else rngs)
    return build


def _norm(cls, **options):
    def build(features=3, rngs=None):
        return lambda: cls(features, **options, rngs=_rngs() if rngs is None else rngs)
    return build


def _stateless(cls, *args, **options):
    def build():
        return lambda: cls(*args, **options)
    return build


CONV = [
    *_rows("Conv", _conv(N.Conv, 4, (3, 3)), extra=[
        ("out_features 0", _build(lambda: N.Conv(3, 0, 3, rngs=_rngs())), ValueError,
         POSITIVE.format("out_features")),
        ("groups 0", _build(lambda: N.Conv(3, 4, 3, groups=0, rngs=_rngs())), ValueError,
         POSITIVE.format("groups")),
        ("kernel_size of 4 dims", _build(lambda: N.Conv(3, 4, (3, 3, 3, 3), rngs=_rngs())),
         ValueError, r"`kernel_size` must be an int or 1-3 ints"),
        ("1-D x for an int kernel_size (2-D)", _call(_conv(N.Conv, 4, 3)(), spec(2, 8, 3)),
         ValueError, r"`x` must have a batch axis.*2-D `kernel_size`=\(3, 3\)"),
        ("groups not dividing in_features", _call(_conv(N.Conv, 4, 3, groups=2)(), X),
         ValueError, r"`groups`=2 must divide both the channels of `x`"),
    ]),
    *_rows("ConvTranspose", _conv(N.ConvTranspose, 4, (3, 3))),
    *_rows("DepthwiseConv", _conv(N.DepthwiseConv, (3, 3)), extra=[
        ("depth_multiplier 0",
         _build(lambda: N.DepthwiseConv(3, 3, depth_multiplier=0, rngs=_rngs())), ValueError,
         POSITIVE.format("depth_multiplier")),
    ]),
    *_rows("SeparableConv", _conv(N.SeparableConv, 8, (3, 3))),
    *_rows("LocalConv", _conv(N.LocalConv, 4, (3, 3), input_size=(8, 8)), extra=[
        ("other image size at the call",
         _call(_conv(N.LocalConv, 4, 3, input_size=(8, 8))(), spec(2, 10, 10, 3)), ValueError,
         _fits("LocalConv", 3)),
        ("input_size of another rank",
         _build(lambda: N.LocalConv(3, 4, (3, 3), input_size=(8, 8, 8), rngs=_rngs())),
         ValueError, r"`input_size` must give one size per spatial dim of `kernel_size`"),
        ("window larger than input_size",
         _build(lambda: N.LocalConv(3, 4, 9, input_size=(8, 8), rngs=_rngs())), ValueError,
         r"larger than the padded input.*use a smaller kernel"),
    ]),
]

CORE = [
    *_rows("Dense", _conv(N.Dense, 4), rank_input=spec(), other=spec(2, 5), unit="features",
           rank_match=r"`x` must have a feature axis", uint8=spec(2, 3, dtype=jnp.uint8),
           extra=[("out_features 0", _build(lambda: N.Dense(3, 0, rngs=_rngs())), ValueError,
                   POSITIVE.format("out_features"))]),
    Case("nnx.Maxout", "pieces 0", _build(lambda: N.Maxout(3, 4, 0, rngs=_rngs())), ValueError,
         POSITIVE.format("pieces")),
    Case("nnx.Maxout", "other features at the call",
         _call(lambda: N.Maxout(3, 4, 2, rngs=_rngs()), spec(2, 5)), ValueError,
         _fits("Dense", 5, "features")),
    Case("nnx.Dropout", "training without a key", _call(lambda: N.Dropout(0.5), X),
         ValueError, NO_KEY.format("Dropout")),
    Case("nnx.Dropout", "rate 2", _call(lambda: N.Dropout(2.0, deterministic=True), X),
         ValueError, r"`rate` is the drop probability and must be in \[0, 1\]"),
    Case("nnx.Dropout", "rngs not an nnx.Rngs", lambda: N.Dropout(0.5, rngs=0), TypeError,
         r"`rngs` must be an nnx.Rngs, an nnx.RngStream or None, got int"),
    Case("nnx.SpatialDropout", "training without a key", _call(lambda: N.SpatialDropout(0.5), X),
         ValueError, NO_KEY.format("SpatialDropout")),
    Case("nnx.SpatialDropout", "no spatial axis",
         _call(lambda: N.SpatialDropout(0.5, rngs=_rngs()), FLAT), ValueError,
         r"`x` must be \(N, \*spatial, C\).*use `dropout`"),
    Case("nnx.Activation", "unknown name", _call(lambda: N.Activation("rleu"), X), ValueError,
         r"unknown activation name 'rleu'. Did you mean 'relu'"),
    Case("nnx.Activation", "missing name", lambda: N.Activation(), TypeError,
         r"Activation: missing a required argument: 'activation'; use the arguments "
         r"\(activation\)"),
]

_NORM_RANK = dict(rank_input=spec(3), rank_match=r"`x` must have rank 2 or 3 or 4 or 5")
NORMALIZATION = [
    *_rows("BatchNorm", _norm(N.BatchNorm), in_features="num_features", **_NORM_RANK, extra=[
        ("momentum 2", _call(_norm(N.BatchNorm, momentum=2.0)(), X), ValueError,
         r"`momentum` must lie in \[0.0, 1.0\]"),
    ]),
    *_rows("LayerNorm", _norm(N.LayerNorm), in_features="num_features", **_NORM_RANK),
    *_rows("GroupNorm", _norm(N.GroupNorm, num_groups=1), in_features="num_features",
           **_NORM_RANK, extra=[
               ("groups not dividing", _call(_norm(N.GroupNorm, num_groups=2)(), X),
                ValueError, r"`num_groups`=2 must divide the number of channels C=3"),
           ]),
    *_rows("InstanceNorm", _norm(N.InstanceNorm), in_features="num_features",
           rank_input=FLAT, rank_match=r"`x` must have rank 3 or 4 or 5"),
    *_rows("LocalResponseNorm", _stateless(N.LocalResponseNorm), in_features=False,
           **_NORM_RANK, extra=[
               ("size 0", _call(lambda: N.LocalResponseNorm(size=0), X), ValueError,
                r"`size` must be >= 1"),
           ]),
    *_rows("LocalContrastNorm", _stateless(N.LocalContrastNorm), in_features=False,
           rank_input=FLAT, rank_match=r"`x` must have rank 3 or 4 or 5"),
]

_POOLS = {
    "MaxPool": (), "AvgPool": (), "LPPool": (2.0,), "GlobalAvgPool": (), "GlobalMaxPool": (),
    "AdaptiveAvgPool": (2,), "AdaptiveMaxPool": (2,), "SpatialPyramidPool": (),
}
POOLING = [
    *(row for name, args in _POOLS.items()
      for row in _rows(name, _stateless(getattr(N, name), *args), in_features=False,
                       rank_input=FLAT, rank_match=r"`x` must have rank")),
    *_rows("StochasticPool", lambda: lambda: N.StochasticPool(rngs=_rngs()),
           in_features=False, rank_input=FLAT, rank_match=r"`x` must have rank"),
    Case("nnx.StochasticPool", "training without a key", _call(lambda: N.StochasticPool(), X),
         ValueError, NO_KEY.format("StochasticPool")),
    Case("nnx.MaxPool", "an argument Linen's MaxPool does not take",
         lambda: N.MaxPool(2, size=3), TypeError,
         r"MaxPool: got an unexpected keyword argument 'size'; use the arguments \(window=2"),
    Case("nnx.LPPool", "p 0", _call(lambda: N.LPPool(0.0), X), ValueError,
         r"`p` must be a finite"),
]


def _conv_built_for(channels):
    return N.Conv(channels, 4, 3, rngs=_rngs())


def _linen_conv_variables(channels):
    return jax.tree.map(np.asarray, L.Conv(4, 3).init(jax.random.key(0),
                                                       jnp.ones((1, 8, 8, channels))))


CONVERT = [
    Case("nnx.from_linen", "a layer's variables for other channels",
         lambda: N.from_linen(_conv_built_for(3), _linen_conv_variables(4)), ValueError,
         r"params/kernel: `variables` has shape \(3, 3, 4, 4\), the NNX model \(3, 3, 3, 4\)"),
]

BUILD = [
    Case("nnx.build_layer", "a flax.linen layer", lambda: N.build_layer(
        nn.Dense(4), (1, 3), rngs=_rngs()), TypeError,
         r"`module` must be a jaxcnn.layers layer \(one of .*\), got flax.linen.*Dense"),
]

CASES = CONV + CORE + NORMALIZATION + POOLING + CONVERT + BUILD


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case: Case) -> None:
    check(case)
