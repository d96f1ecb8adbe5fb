"""Shared helpers for the classic-model tests (simple, LeNet, AlexNet, VGG, All-CNN, highway).

Cost notes (the suite runs on 2 shared CPU cores): big models are only traced
(``jax.eval_shape``: no memory, no compilation); small models get variables drawn with numpy
in the shapes ``eval_shape(model.init)`` reports (:func:`random_variables`: LeCun-normal
kernels, random biases and BatchNorm statistics), because a real ``init`` compiles a threefry
program per parameter shape (about a second each). Where ``init`` itself is under test,
:func:`init` uses an ``rbg`` key, several times cheaper to compile. Every apply runs under one
``jax.jit`` per mode; deep networks under :func:`quick_jit`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpy.lib.stride_tricks import sliding_window_view

import jaxcnn


def key(seed: int = 0) -> jax.Array:
    return jax.random.key(seed, impl="rbg")


def randn(shape, seed=0, scale=1.0, dtype=np.float32):
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), dtype)


def abstract_variables(model, x, **kwargs):
    return jax.eval_shape(partial(model.init, **kwargs), key(), x)


def param_count(model, x) -> int:
    return jaxcnn.count_params(abstract_variables(model, x)["params"])


def output_shape(model, x, **kwargs):
    variables = abstract_variables(model, x)
    return jax.eval_shape(partial(model.apply, **kwargs), variables, x)


def init(model, x, seed=0):
    """The model's own ``init`` (cheap ``rbg`` key, one compiled program)."""
    return jax.jit(model.init)(key(seed), x)


def random_variables(shapes, seed=1):
    """Concrete variables for the abstract ``shapes`` of ``eval_shape(model.init)``, in numpy.

    Nothing is left at Flax's initial value, so an eval-mode reference checks every part:

    * kernels LeCun-normal (``N(0, 1 / fan_in)``, the default initializer's scale);
    * biases (of convolutions, dense layers and norms) and running means ``N(0, 0.3^2)``;
    * running variances log-uniform in ``[1e-3, 2]``: where ``var`` is ~1e-3 an epsilon of
      1e-5 moves the output by 0.5%, so a misplaced or missing epsilon shows at float32
      tolerance;
    * a BatchNorm's scale ``sqrt(var) * U(0.5, 1.5)``, so each norm has a gain of order one
      whatever its variance and deep networks neither explode nor vanish; a norm without
      running statistics (GroupNorm, LayerNorm) gets ``U(0.5, 1.5)``.
    """
    rng = np.random.default_rng(seed)
    stats = shapes.get("batch_stats", {})
    variances = {}

    def draw_stat(path, s):
        module = tuple(p.key for p in path[:-1])
        if path[-1].key == "var":
            variances[module] = np.exp(rng.uniform(np.log(1e-3), np.log(2.0), s.shape))
            return jnp.asarray(variances[module], s.dtype)
        return jnp.asarray(0.3 * rng.standard_normal(s.shape), s.dtype)

    stats = jax.tree_util.tree_map_with_path(draw_stat, stats)

    def draw_param(path, s):
        name, module = path[-1].key, tuple(p.key for p in path[:-1])
        if name in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            fan_in = int(np.prod(s.shape[:-1]))
            value = rng.standard_normal(s.shape) / np.sqrt(fan_in)
        elif name == "scale":
            value = rng.uniform(0.5, 1.5, s.shape) * np.sqrt(variances.get(module, 1.0))
        else:  # biases
            value = 0.3 * rng.standard_normal(s.shape)
        return jnp.asarray(value, s.dtype)

    out = {k: v for k, v in shapes.items() if k not in ("params", "batch_stats")}
    if "params" in shapes:
        out["params"] = jax.tree_util.tree_map_with_path(draw_param, shapes["params"])
    if "batch_stats" in shapes:
        out["batch_stats"] = stats
    return out


# XLA's LLVM optimisations dominate compiling a deep network on CPU (ResNet-152, DenseNet-201:
# 15-25 s); without them it compiles 3-5x faster, and at test sizes running costs nothing.
_QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def quick_jit(fun, **kwargs):
    """``jax.jit`` compiling without XLA's backend optimisations (same numerics, faster)."""
    return jax.jit(fun, compiler_options=_QUICK_COMPILE, **kwargs)


def numpy_variables(model, x, seed=1):
    """:func:`random_variables` in ``model.init``'s shapes for input ``x`` (no initializer is
    compiled)."""
    return random_variables(abstract_variables(model, x), seed)


def sgd_losses(model, variables, x, labels, lr=0.05):
    """Training-mode cross-entropy before and after one SGD step on ``(x, labels)``.

    Both losses use the same dropout key, so they measure the same function of the params;
    BatchNorm uses batch statistics (``mutable=["batch_stats"]``).
    """
    state = {k: v for k, v in variables.items() if k != "params"}

    def loss(params):
        logits, _ = model.apply({"params": params, **state}, x, train=True,
                                rngs={"dropout": key(7)}, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def step(params):
        before, grads = jax.value_and_grad(loss)(params)
        after = loss(jax.tree.map(lambda p, g: p - lr * g, params, grads))
        return before, after

    before, after = step(variables["params"])
    return float(before), float(after)


def check_dropout(model, variables, x):
    """Evaluation is deterministic; training differs between two dropout keys."""
    evaluate = jax.jit(partial(model.apply, train=False))
    train = jax.jit(lambda v, x, k: model.apply(v, x, train=True, rngs={"dropout": k},
                                                mutable=["batch_stats"])[0])
    np.testing.assert_array_equal(evaluate(variables, x), evaluate(variables, x))
    a, b = train(variables, x, key(1)), train(variables, x, key(2))
    np.testing.assert_array_equal(a, train(variables, x, key(1)))
    assert not np.allclose(a, b), "dropout keys 1 and 2 gave the same training output"


# ------------------------------------------------------------------ numpy references


def np_conv(x, kernel, stride=1, pad=0, groups=1):
    """NHWC x HWIO cross-correlation with symmetric zero padding, float64."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kernel = np.asarray(kernel, np.float64)
    win = sliding_window_view(x, kernel.shape[:2], axis=(1, 2))[:, ::stride, ::stride]
    cin, cout = kernel.shape[2], kernel.shape[3]
    outs = [np.einsum("nhwcij,ijco->nhwo", win[..., g * cin:(g + 1) * cin, :, :],
                      kernel[..., g * cout // groups:(g + 1) * cout // groups])
            for g in range(groups)]
    return np.concatenate(outs, axis=-1)


def np_pool(x, window, stride, reduce):
    win = sliding_window_view(np.asarray(x, np.float64), (window, window), axis=(1, 2))
    return reduce(win[:, ::stride, ::stride], axis=(-2, -1))


def call_order(model, x, **kwargs):
    """Names of the model's direct submodules in call order (traced only, no compilation).

    Recorded by the ``capture_intermediates`` filter: ``jit``/``eval_shape`` outputs come back
    with sorted dict keys, which would hide the order.
    """
    names = []

    def record(module, method_name):
        if method_name == "__call__" and len(module.scope.path) == 1:
            names.append(module.scope.path[0])
        return False

    variables = abstract_variables(model, x)
    jax.eval_shape(partial(model.apply, capture_intermediates=record, **kwargs), variables, x)
    return names
