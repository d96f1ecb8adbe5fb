"""Simple classifiers: the perceptron, a multi-layer perceptron and a fully convolutional net.

Registered as ``"perceptron"``, ``"mlp"`` and ``"fcn_classifier"``. :class:`Flatten` (a named
module, so ``capture_intermediates`` sees it, as Keras' ``Flatten`` layer) is shared with the
other classic models (LeNet, AlexNet, VGG).

Parameter counts below are the ``params`` collection for a 28x28x1 (MNIST) input and 10 classes:
a dense layer ``in -> out`` has ``in * out + out`` parameters, a ``k x k`` convolution
``C_in -> C_out`` has ``k * k * C_in * C_out + C_out``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import register

MNIST_INPUT = (28, 28, 1)

__all__ = ["FCNClassifier", "Flatten", "MLP", "Perceptron", "fcn_classifier", "mlp",
           "perceptron"]

Array = jax.Array
Activation = str | Callable[[Array], Array]


class Flatten(nn.Module):
    """Flatten every axis but the batch axis: ``(N, d1, ..., dk) -> (N, d1 * ... * dk)``.

    Row-major (C order), so a NHWC feature map flattens as Keras' ``Flatten`` does (channels
    fastest); PyTorch flattens NCHW, so dense weights imported from torchvision need their
    input axis permuted.

    Example:
        >>> import jax.numpy as jnp
        >>> Flatten().apply({}, jnp.ones((2, 7, 7, 512))).shape
        (2, 25088)
    """

    def __call__(self, x: Array) -> Array:
        check_rank(x, "x", tuple(range(2, 9)), "(N, ...): a batch axis and at least one more")
        return x.reshape(x.shape[0], -1)


def _check_positive_ints(values: Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(values, int) or not isinstance(values, Sequence):
        raise ValueError(f"`{name}` must be a sequence of positive ints, got {values!r}.")
    return tuple(positive_int(v, name) for v in values)


class Perceptron(nn.Module):
    """Single-layer perceptron (Rosenblatt 1958): one dense layer over the flattened input.

    ``y = f(flatten(x) @ W + b)`` with ``f`` the identity (logits, default, for a softmax /
    cross-entropy loss) or ``"step"`` (the classic ``sign`` output, ``+1`` / ``-1`` per class;
    its gradient is zero, so train the logits, e.g. with the perceptron rule). Submodules
    ``flatten``, ``dense``. Parameters: ``prod(x.shape[1:]) * num_classes + num_classes``
    (MNIST: 784 * 10 + 10 = 7,850).

    Args:
        num_classes: number of outputs; default 10.
        activation: output activation, ``"linear"`` (default, logits), ``"step"`` or any
            other name or callable :func:`jaxcnn.layers.get_activation` accepts.
        dtype: compute dtype (e.g. ``jnp.bfloat16``); params stay float32.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = Perceptron(num_classes=3, activation="step")
        >>> x = jnp.ones((2, 2, 2, 1))                            # 4 inputs once flattened
        >>> jax.tree.map(jnp.shape, jax.eval_shape(model.init, jax.random.key(0), x))
        {'params': {'dense': {'bias': (3,), 'kernel': (4, 3)}}}
        >>> variables = {"params": {"dense": {"kernel": jnp.ones((4, 3)),
        ...                                   "bias": jnp.array([-5.0, 0.0, 5.0])}}}
        >>> model.apply(variables, x)                             # sign(4 + bias)
        Array([[-1.,  1.,  1.],
               [-1.,  1.,  1.]], dtype=float32)
    """

    num_classes: int = 10
    activation: Activation = "linear"
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        del train  # same behaviour in training and evaluation
        check_float(x, "x")
        act = L.get_activation(self.activation)
        x = Flatten(name="flatten")(x)
        return act(L.Dense(positive_int(self.num_classes, "num_classes"), dtype=self.dtype,
                           name="dense")(x))


class MLP(nn.Module):
    """Multi-layer perceptron: dense hidden layers with an activation and dropout, dense head.

    ``h_0 = flatten(x)``, ``h_i = dropout(f(h_{i-1} @ W_i + b_i))``, ``logits = h_L @ W + b``.
    Submodules ``flatten``, ``fc1``, ``drop1``, ..., ``fc{L}``, ``drop{L}``, ``head``.
    Parameters with the default ``hidden=(256, 128)`` on MNIST (784 inputs), 10 classes:
    784 * 256 + 256 = 200,960; 256 * 128 + 128 = 32,896; 128 * 10 + 10 = 1,290; total
    **235,146**.

    Args:
        num_classes: size of the head; default 10.
        hidden: widths of the hidden layers; default ``(256, 128)`` (``()`` gives a linear
            classifier).
        activation: hidden activation name or callable; default ``"relu"``.
        dropout_rate: dropout after each hidden activation (Srivastava et al. 2014); default 0.
        dtype: compute dtype; params stay float32.

    Example:
        >>> import jax, jax.numpy as jnp, jaxcnn
        >>> model = MLP(num_classes=10)
        >>> x = jnp.ones((2, 28, 28, 1))
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes, no memory
        >>> jaxcnn.count_params(variables["params"])
        235146
        >>> jax.tree.map(lambda a: a.shape, variables["params"]["fc1"])
        {'bias': (256,), 'kernel': (784, 256)}
        >>> jax.eval_shape(model.apply, variables, x).shape
        (2, 10)
    """

    num_classes: int = 10
    hidden: Sequence[int] = (256, 128)
    activation: Activation = "relu"
    dropout_rate: float = 0.0
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_float(x, "x")
        act = L.get_activation(self.activation)
        x = Flatten(name="flatten")(x)
        for i, width in enumerate(_check_positive_ints(self.hidden, "hidden"), start=1):
            x = act(L.Dense(width, dtype=self.dtype, name=f"fc{i}")(x))
            x = L.Dropout(self.dropout_rate, name=f"drop{i}")(x, train=train)
        return L.Dense(positive_int(self.num_classes, "num_classes"), dtype=self.dtype,
                       name="head")(x)


class FCNClassifier(nn.Module):
    """Fully convolutional classifier: conv/ReLU/pool blocks, a 1x1 conv head, global average.

    ``h_i = max_pool_2(relu(conv3x3_i(h_{i-1})))`` (pools pad ``"SAME"``, so any input of at
    least 1x1 works), ``logits = global_avg_pool(conv1x1(h_L))`` (Lin et al. 2014, "Network In
    Network"; Long et al. 2015): no dense layer, so the input may have ANY spatial size.
    Submodules ``block{i}_conv``, ``block{i}_pool``, ``head`` (the 1x1 convolution),
    ``global_pool``. Parameters with the default ``features=(32, 64, 128)``, 1 input channel,
    10 classes: 9 * 1 * 32 + 32 = 320; 9 * 32 * 64 + 64 = 18,496; 9 * 64 * 128 + 128 = 73,856;
    head 128 * 10 + 10 = 1,290; total **93,962** (independent of the spatial size).

    Args:
        num_classes: channels of the 1x1 head; default 10.
        features: widths of the 3x3 convolution blocks; default ``(32, 64, 128)``.
        dtype: compute dtype; params stay float32.

    Example:
        >>> import jax, jax.numpy as jnp, jaxcnn
        >>> model = FCNClassifier(num_classes=10)
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 28, 28, 1)))
        >>> jaxcnn.count_params(variables["params"])
        93962
        >>> jax.eval_shape(model.apply, variables, jnp.ones((2, 40, 52, 1))).shape  # any size
        (2, 10)
    """

    num_classes: int = 10
    features: Sequence[int] = (32, 64, 128)
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        del train  # same behaviour in training and evaluation
        check_rank(x, "x", (3, 4, 5), "(N, *spatial, C) for FCNClassifier")
        check_float(x, "x")
        for i, width in enumerate(_check_positive_ints(self.features, "features"), start=1):
            x = L.Conv(width, 3, padding=1, dtype=self.dtype, name=f"block{i}_conv")(x)
            x = L.MaxPool(2, padding="SAME", name=f"block{i}_pool")(F.relu(x))
        x = L.Conv(positive_int(self.num_classes, "num_classes"), 1, dtype=self.dtype,
                   name="head")(x)
        return L.GlobalAvgPool(name="global_pool")(x)


@register("perceptron", input_shape=MNIST_INPUT)
def perceptron(num_classes: int = 10, **options: Any) -> Perceptron:
    """Single-layer perceptron; MNIST (784 inputs), 10 classes: 7,850 parameters.

    ``Perceptron(num_classes, **options)``; 784 * 10 + 10 = 7,850. Registered as
    ``"perceptron"``.

    Args:
        num_classes: number of outputs; default 10.
        **options: :class:`Perceptron` fields (``activation="step"``, ``dtype``).

    Example:
        >>> perceptron(activation="step").activation
        'step'
    """
    return Perceptron(num_classes=num_classes, **options)


@register("mlp", input_shape=MNIST_INPUT)
def mlp(num_classes: int = 10, **options: Any) -> MLP:
    """Multi-layer perceptron, hidden ``(256, 128)`` ReLU; MNIST: 235,146 parameters.

    ``MLP(num_classes, **options)``; 200,960 + 32,896 + 1,290 = 235,146 (see :class:`MLP`).
    Registered as ``"mlp"``.

    Args:
        num_classes: size of the head; default 10.
        **options: :class:`MLP` fields (``hidden``, ``activation``, ``dropout_rate``, ``dtype``).

    Example:
        >>> mlp(hidden=(64,), dropout_rate=0.5).hidden
        (64,)
    """
    return MLP(num_classes=num_classes, **options)


@register("fcn_classifier", input_shape=MNIST_INPUT)
def fcn_classifier(num_classes: int = 10, **options: Any) -> FCNClassifier:
    """Fully convolutional classifier for any input size; 93,962 parameters (1 channel, 10 classes).

    ``FCNClassifier(num_classes, **options)``; 320 + 18,496 + 73,856 + 1,290 = 93,962 (see
    :class:`FCNClassifier`). Registered as ``"fcn_classifier"``.

    Args:
        num_classes: channels of the 1x1 head; default 10.
        **options: :class:`FCNClassifier` fields (``features``, ``dtype``).

    Example:
        >>> fcn_classifier(features=(8,)).features
        (8,)
    """
    return FCNClassifier(num_classes=num_classes, **options)
