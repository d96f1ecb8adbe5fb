"""Convolution layers: thin wrappers (output == the F function on the layer's params), Flax
parity, parameter layouts, dtypes, transformations and input validation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import functional as F
from jaxcnn import layers as L
from tests.layers._helpers import KEY, randn, random_variables

X = randn((2, 8, 8, 4))  # one shape for most tests: compiled ops are reused across tests


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ----------------------------------------------------------------- Conv


@pytest.mark.parametrize("x_shape,kernel_size,kw", [
    ((2, 9, 3), 3, dict(strides=2, padding="CAUSAL")),
    ((2, 9, 3), (4,), dict(dilation=2, padding="VALID")),
    ((2, 8, 8, 4), (3, 3), dict()),
    ((2, 8, 8, 4), 3, dict(strides=(2, 1), padding=((1, 2), (0, 1)), groups=2)),
    ((2, 8, 8, 4), (3, 2), dict(dilation=(2, 1), padding=1, use_bias=False)),
    ((1, 5, 6, 4, 2), (2, 3, 3), dict(strides=2, padding="SAME")),
])
def test_conv_is_f_conv(x_shape, kernel_size, kw):
    x = randn(x_shape)
    layer = L.Conv(6, kernel_size, **kw)
    params = random_variables(layer, x)["params"]
    want = F.conv(x, params["kernel"], params.get("bias"), stride=kw.get("strides", 1),
                  padding=kw.get("padding", "SAME"), dilation=kw.get("dilation", 1),
                  groups=kw.get("groups", 1))
    np.testing.assert_array_equal(layer.apply({"params": params}, x), want)


@pytest.mark.parametrize("padding,strides,groups,dilation", [
    ("SAME", 1, 1, 1),
    ("SAME", 2, 2, 1),
    ("VALID", 1, 2, 1),
    ("VALID", 2, 1, 1),
    (((1, 0), (2, 1)), 2, 4, 1),
    ("SAME", 1, 1, 2),
])
def test_conv_matches_flax(padding, strides, groups, dilation):
    ours = L.Conv(8, (3, 3), strides=strides, padding=padding, groups=groups,
                  dilation=dilation)
    theirs = nn.Conv(8, (3, 3), strides=strides, padding=padding, feature_group_count=groups,
                     kernel_dilation=dilation)
    variables = random_variables(ours, X)
    assert jax.tree.map(jnp.shape, jax.eval_shape(theirs.init, KEY, X)) == \
        jax.tree.map(jnp.shape, variables)
    _close(ours.apply(variables, X), theirs.apply(variables, X))


def test_conv_param_layout_is_hwio():
    variables = jax.eval_shape(L.Conv(8, (3, 5), groups=4).init, KEY, randn((1, 10, 10, 12)))
    assert jax.tree.map(jnp.shape, variables) == {
        "params": {"kernel": (3, 5, 3, 8), "bias": (8,)}}
    assert variables["params"]["kernel"].dtype == jnp.float32


def test_conv_under_jit_vmap_grad():
    layer = L.Conv(5, 3, strides=2)
    variables = random_variables(layer, X)
    y = layer.apply(variables, X)
    _close(jax.jit(layer.apply)(variables, X), y)
    _close(jax.vmap(lambda xi: layer.apply(variables, xi[None])[0])(X), y)
    p = variables["params"]
    grads = jax.grad(lambda p, x: layer.apply({"params": p}, x).sum(), (0, 1))(p, X)
    want = jax.grad(lambda p, x: F.conv(x, p["kernel"], p["bias"], stride=2).sum(),
                    (0, 1))(p, X)
    jax.tree.map(_close, grads, want)


def test_conv_bfloat16_compute_dtype():
    layer = L.Conv(4, 3, dtype=jnp.bfloat16)
    variables = random_variables(layer, X)
    assert variables["params"]["kernel"].dtype == jnp.float32  # params stay float32
    y = layer.apply(variables, X)
    assert y.dtype == jnp.bfloat16
    _close(y.astype(jnp.float32), L.Conv(4, 3).apply(variables, X), tol=0.1)
    # dtype=None promotes like Flax: bf16 input with float32 params computes in float32
    assert L.Conv(4, 3).apply(variables, X.astype(jnp.bfloat16)).dtype == jnp.float32
    bf16 = L.Conv(4, 3, param_dtype=jnp.bfloat16)
    assert bf16.apply(random_variables(bf16, X), X.astype(jnp.bfloat16)).dtype == jnp.bfloat16


# ------------------------------------------------------------ ConvTranspose


@pytest.mark.parametrize("kernel_size,kw", [
    ((3, 3), dict(strides=2)),
    ((4, 4), dict(strides=2, padding="VALID")),
    ((3, 3), dict(strides=2, padding=1, output_padding=1)),
    ((2, 3), dict(dilation=(1, 2), use_bias=False)),
])
def test_conv_transpose_is_f(kernel_size, kw):
    layer = L.ConvTranspose(3, kernel_size, **kw)
    params = random_variables(layer, X)["params"]
    assert params["kernel"].shape == (*kernel_size, 4, 3)
    want = F.conv_transpose(X, params["kernel"], params.get("bias"),
                            stride=kw.get("strides", 1), padding=kw.get("padding", "SAME"),
                            dilation=kw.get("dilation", 1),
                            output_padding=kw.get("output_padding", 0))
    np.testing.assert_array_equal(layer.apply({"params": params}, X), want)


@pytest.mark.parametrize("strides", [1, 2])
def test_conv_transpose_matches_flax_with_flipped_kernel(strides):
    ours = L.ConvTranspose(3, (3, 3), strides=strides)
    params = random_variables(ours, X)["params"]
    flipped = {"kernel": params["kernel"][::-1, ::-1], "bias": params["bias"]}
    theirs = nn.ConvTranspose(3, (3, 3), strides=(strides, strides), padding="SAME")
    _close(ours.apply({"params": params}, X), theirs.apply({"params": flipped}, X))


# ---------------------------------------------- DepthwiseConv / SeparableConv


def test_depthwise_conv_is_f_and_flax_grouped_conv():
    layer = L.DepthwiseConv(3, depth_multiplier=2, strides=2)
    params = random_variables(layer, X)["params"]
    assert jax.tree.map(jnp.shape, params) == {"kernel": (3, 3, 1, 8), "bias": (8,)}
    y = layer.apply({"params": params}, X)
    np.testing.assert_array_equal(
        y, F.depthwise_conv(X, params["kernel"], params["bias"], stride=2))
    _close(y, nn.Conv(8, (3, 3), strides=2, feature_group_count=4).apply({"params": params}, X))


@pytest.mark.parametrize("x_shape,kw", [
    ((2, 8, 8, 4), dict()),
    ((2, 8, 8, 4), dict(strides=2, depth_multiplier=2, padding="VALID")),
    ((2, 9, 3), dict(dilation=2, use_bias=False)),
])
def test_separable_conv_is_f(x_shape, kw):
    x = randn(x_shape)
    layer = L.SeparableConv(5, 3, **kw)
    params = random_variables(layer, x)["params"]
    n, mid = len(x_shape) - 2, x_shape[-1] * kw.get("depth_multiplier", 1)
    assert params["depthwise_kernel"].shape == (3,) * n + (1, mid)
    assert params["pointwise_kernel"].shape == (1,) * n + (mid, 5)  # Keras layout
    assert ("bias" in params) == kw.get("use_bias", True)
    want = F.separable_conv(x, params["depthwise_kernel"], params["pointwise_kernel"],
                            params.get("bias"), stride=kw.get("strides", 1),
                            padding=kw.get("padding", "SAME"), dilation=kw.get("dilation", 1))
    np.testing.assert_array_equal(layer.apply({"params": params}, x), want)


# ---------------------------------------------------------------- LocalConv


@pytest.mark.parametrize("x_shape,kernel_size,kw,out_spatial", [
    ((2, 8, 8, 4), 3, dict(), (6, 6)),
    ((2, 8, 8, 4), (2, 3), dict(strides=2, padding="SAME"), (4, 4)),
    ((2, 9, 3), 3, dict(dilation=2, use_bias=False), (5,)),
])
def test_local_conv_is_f(x_shape, kernel_size, kw, out_spatial):
    x = randn(x_shape)
    layer = L.LocalConv(4, kernel_size, **kw)
    params = random_variables(layer, x)["params"]
    n = len(x_shape) - 2
    window = (kernel_size,) * n if isinstance(kernel_size, int) else kernel_size
    assert params["kernel"].shape == (*out_spatial, int(np.prod(window)) * x_shape[-1], 4)
    if kw.get("use_bias", True):
        assert params["bias"].shape == (*out_spatial, 4)  # unshared, as Keras
    want = F.local_conv(x, params["kernel"], params.get("bias"), window=window,
                        stride=kw.get("strides", 1), padding=kw.get("padding", "VALID"),
                        dilation=kw.get("dilation", 1))
    np.testing.assert_array_equal(layer.apply({"params": params}, x), want)


def test_local_conv_matches_flax_conv_local_and_inits_per_position():
    ours = L.LocalConv(4, (3, 3), use_bias=False)
    theirs = nn.ConvLocal(4, (3, 3), padding="VALID", use_bias=False)
    variables = random_variables(ours, X)
    _close(ours.apply(variables, X), theirs.apply(variables, X))
    kernel = ours.init(KEY, X)["params"]["kernel"]  # (6, 6, 36, 4)
    # LeCun normal with fan-in 3 * 3 * 4 = 36 at every position (Flax's would use 36 * 36)
    assert abs(float(jnp.std(kernel)) * 6 - 1) < 0.15


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("layer,x,exc,match", [
    (L.Conv(4, (3, 3)), np.ones((8, 8, 3), np.float32), ValueError,
     "`x` must have a batch axis"),
    (L.Conv(4, 3), np.ones((2, 3), np.float32), ValueError, "`x` must have rank"),
    (L.Conv(4, (3, 3)), np.ones((1, 2, 8, 8, 3), np.float32), ValueError, "kernel_size"),
    (L.Conv(4, 3, strides=0), np.ones((1, 8, 8, 3), np.float32), ValueError, "stride"),
    (L.Conv(4, 3, groups=0), np.ones((1, 8, 8, 3), np.float32), ValueError, "groups"),
    (L.Conv(4, 3, groups=2), np.ones((1, 8, 8, 3), np.float32), ValueError, "groups"),
    (L.Conv(4, 0), np.ones((1, 8, 8, 3), np.float32), ValueError, "kernel_size"),
    (L.Conv(4, 5, padding="VALID"), np.ones((1, 4, 4, 3), np.float32), ValueError,
     "larger than the padded input"),
    (L.Conv(4, 3, padding="FULL"), np.ones((1, 8, 8, 3), np.float32), ValueError, "padding"),
    (L.Conv(4, 3), np.ones((1, 8, 8, 3), np.int32), TypeError, "`x` must be a floating"),
    (L.DepthwiseConv(3, depth_multiplier=0), np.ones((1, 8, 8, 3), np.float32), ValueError,
     "depth_multiplier"),
    (L.LocalConv(4, 9), np.ones((1, 8, 8, 3), np.float32), ValueError, "larger than"),
    (L.ConvTranspose(4, 3, strides=2, output_padding=2), np.ones((1, 4, 4, 3), np.float32),
     ValueError, "output_padding"),
])
def test_bad_input_names_the_argument(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        jax.eval_shape(layer.init, KEY, x)  # shape errors are raised while tracing
