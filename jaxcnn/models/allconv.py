"""All-CNN-C (Springenberg, Dosovitskiy, Brox & Riedmiller 2014, "Striving for Simplicity: The
All Convolutional Net"): only convolutions, strided ones in place of max pooling.

Registered as ``"allconv"``. The network (Table 2, model C, for 32x32x3 CIFAR images)::

    conv1  3x3, 96, pad 1            32x32     conv6  3x3, 192, stride 2    8x8
    conv2  3x3, 96, pad 1            32x32     conv7  3x3, 192, VALID       6x6
    conv3  3x3, 96, stride 2         16x16     conv8  1x1, 192              6x6
    conv4  3x3, 192, pad 1           16x16     conv9  1x1, num_classes      6x6
    conv5  3x3, 192, pad 1           16x16     global average over 6x6 -> logits

with ReLU after conv1..conv8. Downsampling is learned (conv3, conv6 have stride 2) and the
only pooling is the final global average, which replaces dense layers (as Network in
Network). Submodules ``conv1`` ... ``conv9``, ``global_pool``, and with dropout
``drop_input``, ``drop3``, ``drop6``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import CIFAR_INPUT, register

__all__ = ["AllConvNet", "allconv"]

Array = jax.Array


class AllConvNet(nn.Module):
    """All-CNN-C: nine convolutions (two with stride 2) and a global average, no pooling layers.

    ``logits = mean_{6x6}(conv9(relu(conv8(... relu(conv1(x))))))``, layers in the module
    docstring. Parameter count (``width=96``, 3 input channels, 10 classes; every convolution
    has a bias, ``k*k*C_in*C_out + C_out``):

    * conv1 9*3*96 + 96 = 2,688; conv2, conv3 9*96*96 + 96 = 83,040 each;
    * conv4 9*96*192 + 192 = 166,080; conv5, conv6, conv7 9*192*192 + 192 = 331,968 each;
    * conv8 192*192 + 192 = 37,056; conv9 192*10 + 10 = 1,930;
    * total 2,688 + 166,080 + 166,080 + 995,904 + 37,056 + 1,930 = **1,369,738** (the paper's
      "1.3 M").

    Args:
        num_classes: channels of conv9; default 10.
        width: channels of conv1..conv3; conv4..conv8 have ``2 * width``. Default 96.
        input_dropout: dropout on the input image (the paper: 0.2); default 0.
        dropout_rate: dropout after the two strided convolutions (the paper: 0.5); default 0.
        head_relu: ReLU after conv9 as in the paper's Table 1 (``1x1 conv. 10 ReLU``). Default
            False: the averaged conv9 outputs are the logits, unconstrained in sign.
        dtype: compute dtype; params stay float32.

    The input must be at least 9x9 (``conv7``'s VALID 3x3 needs a 3x3 map); 32x32 is native.

    Example:
        >>> import jax, jax.numpy as jnp, jaxcnn
        >>> model = AllConvNet()
        >>> x = jnp.ones((2, 32, 32, 3))
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes, no memory
        >>> list(variables["params"])
        ['conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'conv6', 'conv7', 'conv8', 'conv9']
        >>> jaxcnn.count_params(variables["params"])
        1369738
        >>> jax.eval_shape(model.apply, variables, x).shape
        (2, 10)
    """

    num_classes: int = 10
    width: int = 96
    input_dropout: float = 0.0
    dropout_rate: float = 0.0
    head_relu: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        check_rank(x, "x", 4, "(N, H, W, C) for All-CNN-C")
        check_float(x, "x")
        if x.shape[1] < 9 or x.shape[2] < 9:
            raise ValueError(f"`x` must be at least 9x9 for All-CNN-C (32x32 native), got "
                             f"shape {x.shape}: two stride-2 convolutions and a VALID 3x3 "
                             f"convolution must leave a map.")
        w = positive_int(self.width, "width")
        # (features, kernel, stride, padding) of conv1..conv8, Table 2 model C.
        layers = [(w, 3, 1, 1), (w, 3, 1, 1), (w, 3, 2, 1),
                  (2 * w, 3, 1, 1), (2 * w, 3, 1, 1), (2 * w, 3, 2, 1),
                  (2 * w, 3, 1, 0), (2 * w, 1, 1, 0)]
        x = L.Dropout(self.input_dropout, name="drop_input")(x, train=train)
        for i, (features, kernel, stride, pad) in enumerate(layers, start=1):
            x = F.relu(L.Conv(features, kernel, strides=stride, padding=pad, dtype=self.dtype,
                              name=f"conv{i}")(x))
            if stride == 2:
                x = L.Dropout(self.dropout_rate, name=f"drop{i}")(x, train=train)
        x = L.Conv(positive_int(self.num_classes, "num_classes"), 1, padding=0,
                   dtype=self.dtype, name="conv9")(x)
        if self.head_relu:
            x = F.relu(x)
        return L.GlobalAvgPool(name="global_pool")(x)


@register("allconv", input_shape=CIFAR_INPUT)
def allconv(num_classes: int = 10, **options: Any) -> AllConvNet:
    """All-CNN-C (Springenberg et al. 2014) for 32x32x3 inputs; 1,369,738 parameters.

    ``AllConvNet(num_classes, **options)``; 2,688 + 2 * 83,040 + 166,080 + 3 * 331,968 +
    37,056 + 1,930 = 1,369,738 for 10 classes (see :class:`AllConvNet`). The paper trains it
    with ``input_dropout=0.2, dropout_rate=0.5``. Registered as ``"allconv"``.

    Args:
        num_classes: default 10.
        **options: :class:`AllConvNet` fields (``width``, ``input_dropout``, ``dropout_rate``,
            ``head_relu``, ``dtype``).

    Example:
        >>> allconv(input_dropout=0.2, dropout_rate=0.5).width
        96
    """
    return AllConvNet(num_classes=num_classes, **options)
