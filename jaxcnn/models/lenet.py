"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-Based Learning Applied to Document
Recognition") and its modern ReLU / max-pool variant.

Registered as ``"lenet5"`` and ``"lenet5_modern"``. Both take a 32x32x1 input (MNIST's 28x28
digits padded by 2 on each side, as in the paper) and share the geometry::

    C1 conv 6@5x5 -> 28x28x6, S2 pool 2x2 -> 14x14x6, C3 conv 16@5x5 -> 10x10x16,
    S4 pool 2x2 -> 5x5x16, C5 conv 120@5x5 -> 1x1x120, F6 dense 84, output dense 10

Submodule names follow the paper: ``c1``, ``s2``, ``c3``, ``s4``, ``c5``, ``flatten``, ``f6``,
``output`` (plus ``drop5`` / ``drop6`` when dropout is on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import register
from jaxcnn.models.simple import Flatten

__all__ = ["LeNet5", "lenet5", "lenet5_modern", "scaled_tanh"]

Array = jax.Array

_POOLS = {"avg": L.AvgPool, "max": L.MaxPool}


def scaled_tanh(x: Array) -> Array:
    """LeCun's scaled hyperbolic tangent ``f(x) = 1.7159 tanh(2x / 3)``.

    The constants make ``f(+-1) = +-1`` with the maximal second derivative at ``x = 1``
    (LeCun et al. 1998, Appendix A; "Efficient BackProp", LeCun et al. 1998), so unit-variance
    inputs give unit-variance outputs.

    Args:
        x: floating array of any shape.

    Example:
        >>> import jax.numpy as jnp
        >>> scaled_tanh(jnp.array([-1.0, 0.0, 1.0])).round(3)
        Array([-1.,  0.,  1.], dtype=float32)
    """
    return 1.7159 * F.tanh(x * jnp.asarray(2.0 / 3.0, x.dtype))


def _activation(name: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    if isinstance(name, str) and name.lower() == "scaled_tanh":
        return scaled_tanh
    return L.get_activation(name)


class LeNet5(nn.Module):
    """LeNet-5: three 5x5 convolutions, two 2x2 poolings and two dense layers, for 32x32 inputs.

    ``logits = output(f(f6(flatten(f(c5(pool(f(c3(pool(f(c1(x))))))))))))`` with all
    convolutions ``"VALID"``, C3 connected to all six S2 maps and parameter-free pooling
    (geometry in the module docstring). Parameters, 1 input channel, 10 classes:

    * C1 5*5*1*6 + 6 = 156; C3 5*5*6*16 + 16 = 2,416; C5 5*5*16*120 + 120 = 48,120;
    * F6 120*84 + 84 = 10,164; output 84*10 + 10 = 850;
    * total **61,706**, whatever the activation or pooling.

    Differences from the paper's network (about 60,000 parameters): its S2/S4 subsampling
    layers have a trainable coefficient and bias per map (2*6 + 2*16 = 12 + 32 parameters,
    here plain average pooling), its C3 connects each map to a subset of S2's maps (Table 1:
    1,516 parameters instead of 2,416), and its output layer is a Euclidean RBF over fixed
    codes (here a trained dense layer giving logits).

    Args:
        num_classes: size of the output layer; default 10.
        activation: ``"tanh"`` (default), ``"scaled_tanh"`` (the paper's
            ``1.7159 tanh(2x/3)``, :func:`scaled_tanh`), ``"relu"`` or any name / callable
            :func:`jaxcnn.layers.get_activation` accepts.
        pooling: ``"avg"`` (default, the paper's subsampling) or ``"max"``.
        dropout_rate: dropout on the inputs of F6 and of the output layer; default 0.
        width: multiplier of the channel counts of C1, C3 and C5 (``max(1, round(c * width))``
            of 6, 16, 120; F6 keeps 84 units); default 1, the paper's network. Wider early
            layers learn more (and more generic) features, e.g. for transfer learning.
        dtype: compute dtype; params stay float32.

    The input must be at least 32x32 (pad 28x28 MNIST digits by 2); a larger input leaves a
    C5 map larger than 1x1, which is flattened into F6.

    Example:
        >>> import jax, jax.numpy as jnp, jaxcnn
        >>> model = LeNet5(activation="scaled_tanh")
        >>> x = jnp.ones((2, 32, 32, 1))
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes, no memory
        >>> jaxcnn.count_params(variables["params"])
        61706
        >>> jax.tree.map(lambda a: a.shape, variables["params"]["c3"])
        {'bias': (16,), 'kernel': (5, 5, 6, 16)}
        >>> jax.eval_shape(model.apply, variables, x).shape
        (2, 10)
    """

    num_classes: int = 10
    activation: str | Callable[[Array], Array] = "tanh"
    pooling: str = "avg"
    dropout_rate: float = 0.0
    width: float = 1.0
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", 4, "(N, 32, 32, C) for LeNet-5")
        check_float(x, "x")
        if x.shape[1] < 32 or x.shape[2] < 32:
            raise ValueError(f"`x` must be at least 32x32 for LeNet-5, got shape {x.shape}; pad "
                             f"28x28 digits by 2 pixels on each side as LeCun et al. did, e.g. "
                             f"`jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))`.")
        if self.pooling not in _POOLS:
            raise ValueError(f"`pooling` must be one of {tuple(_POOLS)}, got {self.pooling!r}.")
        if not (isinstance(self.width, int | float) and self.width > 0):
            raise ValueError(f"`width` must be a number > 0 (1 for the paper's channel counts), "
                             f"got {self.width!r}.")
        act, pool = _activation(self.activation), _POOLS[self.pooling]

        def conv(features: int, name: str) -> nn.Module:
            return L.Conv(max(1, round(features * self.width)), 5, padding="VALID",
                          dtype=self.dtype, name=name)

        x = pool(2, name="s2")(act(conv(6, "c1")(x)))
        x = pool(2, name="s4")(act(conv(16, "c3")(x)))
        x = Flatten(name="flatten")(act(conv(120, "c5")(x)))
        x = L.Dropout(self.dropout_rate, name="drop5")(x, train=train)
        x = act(L.Dense(84, dtype=self.dtype, name="f6")(x))
        x = L.Dropout(self.dropout_rate, name="drop6")(x, train=train)
        return L.Dense(positive_int(self.num_classes, "num_classes"), dtype=self.dtype,
                       name="output")(x)


@register("lenet5", input_shape=(32, 32, 1))
def lenet5(num_classes: int = 10, **options: Any) -> LeNet5:
    """LeNet-5 (LeCun et al. 1998) with tanh and average pooling; 61,706 parameters.

    156 + 2,416 + 48,120 + 10,164 + 850 = 61,706 for 10 classes (see :class:`LeNet5`, which
    also lists the differences from the paper). Registered as ``"lenet5"``.

    Args:
        num_classes: default 10.
        **options: :class:`LeNet5` fields, e.g. ``activation="scaled_tanh"``, ``dtype``.

    Example:
        >>> lenet5(activation="scaled_tanh").pooling
        'avg'
    """
    return LeNet5(num_classes=num_classes, **{"activation": "tanh", "pooling": "avg", **options})


@register("lenet5_modern", input_shape=(32, 32, 1))
def lenet5_modern(num_classes: int = 10, dropout_rate: float = 0.0, **options: Any) -> LeNet5:
    """LeNet-5 with ReLU and 2x2 max pooling (optional dropout); 61,706 parameters.

    Same geometry and layers as :func:`lenet5`; activations and pooling carry no parameters,
    so the count is the same: 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706 for 10 classes.
    Registered as ``"lenet5_modern"``.

    Args:
        num_classes: default 10.
        dropout_rate: dropout on the inputs of F6 and of the output layer; default 0
            (0.5 is the usual choice).
        **options: other :class:`LeNet5` fields (``width``, ``dtype``).

    Example:
        >>> model = lenet5_modern(dropout_rate=0.5)
        >>> model.activation, model.pooling, model.dropout_rate
        ('relu', 'max', 0.5)
    """
    return LeNet5(num_classes=num_classes, dropout_rate=dropout_rate,
                  **{"activation": "relu", "pooling": "max", **options})
