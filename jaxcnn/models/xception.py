"""Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions").

Keras' ``keras.applications.Xception`` layout and layer names: the stem's layers are named as
in Keras (``block1_conv1``, ``block1_conv1_bn``, ``block1_conv1_act``, ...), as are the last
separable convolutions (``block14_sepconv1``, ``block14_sepconv1_bn``, ``block14_sepconv1_act``,
...), ``avg_pool`` and ``predictions``; the residual modules are submodules ``block2`` ...
``block13`` (:mod:`jaxcnn.blocks.xception`) whose inner names drop the ``blockN_`` prefix
(Keras ``block5_sepconv2_bn`` is ``block5/sepconv2_bn``). A module's output is Keras' ``add``
output for that block.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.blocks.xception import KERAS_BATCH_NORM, EntryFlowBlock, ExitFlowBlock, MiddleFlowBlock
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import register

__all__ = ["Xception", "xception"]

ModuleDef = Any
Array = jax.Array


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class Xception(nn.Module):
    """Xception: entry flow, ``middle_flow_repeats`` middle-flow modules, exit flow; 299x299.

    * entry flow: ``block1_conv1`` 3x3/2 (32, "VALID") and ``block1_conv2`` 3x3 (64,
      "VALID"), each + norm + act; ``block2`` .. ``block4``:
      :class:`~jaxcnn.blocks.EntryFlowBlock` with 128, 256, 728 channels (stride 2 each);
    * middle flow: ``block5`` .. ``block12``: :class:`~jaxcnn.blocks.MiddleFlowBlock` (728);
    * exit flow: ``block13``: :class:`~jaxcnn.blocks.ExitFlowBlock` (728, 1024);
      ``block14_sepconv1`` (1536) and ``block14_sepconv2`` (2048), each + norm + act;
    * ``avg_pool`` (global), optional ``dropout``, ``predictions`` (dense, logits).

    Feature maps at 299x299: 149, 147, 74, 37, 19 (middle flow), 10 (exit flow).

    Args:
        num_classes: size of the head. Default 1000.
        middle_flow_repeats: number of middle-flow modules (8 in the paper); the exit-flow
            blocks are numbered after them (``block13``, ``block14`` for 8). Default 8.
        width: multiplier of every channel count (``max(1, round(c * width))``), e.g.
            ``1 / 16`` for a fast test network. Default 1.
        dropout_rate: dropout before the head (the paper: 0.5 on ImageNet; Keras: none).
            Default 0 (no dropout layer).
        sepconv: separable convolution factory; default ``partial(L.SeparableConv,
            use_bias=False)``.
        conv: convolution factory (stem and shortcuts); default ``partial(L.Conv,
            use_bias=False)``.
        norm: normalization factory; default Keras' BatchNorm (``epsilon=1e-3``,
            ``momentum=0.99``).
        act: activation; default ``F.relu``.
        dtype: compute dtype (e.g. ``jnp.bfloat16``); parameters stay float32.

    Input ``(N, H, W, C)`` with ``H, W >= 71`` for the full network (Keras' minimum; smaller
    inputs work down to 32x32 with the "SAME" pools). In training pass
    ``mutable=["batch_stats"]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = Xception(num_classes=10, middle_flow_repeats=1, width=1 / 16)
        >>> x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
        >>> logits, variables = jax.eval_shape(model.init_with_output, jax.random.key(0), x)
        >>> logits.shape
        (2, 10)
        >>> sorted(variables["params"])[:6]
        ['block1_conv1', 'block1_conv1_bn', 'block1_conv2', 'block1_conv2_bn', 'block2', 'block3']

    (``jax.eval_shape`` traces without computing; ``model.init`` and ``model.apply`` are called
    the same way on real arrays.)
    """

    num_classes: int = 1000
    middle_flow_repeats: int = 8
    width: float = 1.0
    dropout_rate: float = 0.0
    sepconv: ModuleDef = partial(L.SeparableConv, use_bias=False)
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = KERAS_BATCH_NORM
    act: Callable[[Array], Array] = F.relu
    dtype: Any = None

    def _validate(self, x: Array) -> None:
        check_rank(x, "x", 4, "(N, H, W, C) for Xception")
        check_float(x, "x")
        positive_int(self.num_classes, "num_classes")
        repeats = self.middle_flow_repeats
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 0:
            raise ValueError(f"`middle_flow_repeats` must be an int >= 0, got {repeats!r}.")
        if not self.width > 0:
            raise ValueError(f"`width` must be > 0, got {self.width!r}.")

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        self._validate(x)
        typed = {} if self.dtype is None else {"dtype": self.dtype}
        w = partial(_scaled, width=self.width)
        conv, norm = partial(self.conv, **typed), partial(self.norm, **typed)
        parts = dict(sepconv=partial(self.sepconv, **typed), conv=conv, norm=norm,
                     act=self.act)

        def norm_act(y: Array, name: str) -> Array:
            y = norm(name=f"{name}_bn")(y, train=train)
            return L.Activation(self.act, name=f"{name}_act")(y)

        x = norm_act(conv(w(32), 3, strides=2, padding="VALID", name="block1_conv1")(x),
                     "block1_conv1")
        x = norm_act(conv(w(64), 3, strides=1, padding="VALID", name="block1_conv2")(x),
                     "block1_conv2")
        x = EntryFlowBlock(w(128), first_act=False, **parts, name="block2")(x, train)
        x = EntryFlowBlock(w(256), **parts, name="block3")(x, train)
        x = EntryFlowBlock(w(728), **parts, name="block4")(x, train)
        middle = {k: v for k, v in parts.items() if k != "conv"}
        for i in range(self.middle_flow_repeats):
            x = MiddleFlowBlock(w(728), **middle, name=f"block{5 + i}")(x, train)
        exit_block = 5 + self.middle_flow_repeats
        x = ExitFlowBlock((w(728), w(1024)), **parts, name=f"block{exit_block}")(x, train)
        for j, features in enumerate((1536, 2048), start=1):
            name = f"block{exit_block + 1}_sepconv{j}"
            x = norm_act(parts["sepconv"](w(features), 3, padding="SAME", name=name)(x), name)

        x = L.GlobalAvgPool(name="avg_pool")(x)
        if self.dropout_rate > 0:
            x = L.Dropout(self.dropout_rate, name="dropout")(x, train=train)
        return L.Dense(self.num_classes, name="predictions", **typed)(x)


@register("xception", input_shape=(299, 299, 3))
def xception(num_classes: int = 1000, **options: Any) -> Xception:
    """Xception (Chollet 2017), Keras layout; 22,855,952 parameters; input 299x299x3.

    The count is the ``params`` collection and equals Keras' TRAINABLE parameters of
    ``keras.applications.Xception()``; Keras' total, 22,910,480, also counts the 54,528
    BatchNorm moving means and variances, which live in ``batch_stats`` here (2 per channel
    of the 40 norms: 27,264 channels).

    Args:
        num_classes: size of the head; default 1000.
        **options: other :class:`Xception` fields (``middle_flow_repeats``, ``width``,
            ``dropout_rate``, ``norm``, ``dtype``, ...).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import jaxcnn
        >>> x = jax.ShapeDtypeStruct((1, 299, 299, 3), jnp.float32)
        >>> variables = jax.eval_shape(xception().init, jax.random.key(0), x)
        >>> jaxcnn.count_params(variables["params"]), jaxcnn.count_params(variables)
        (22855952, 22910480)
    """
    return Xception(num_classes=num_classes, **options)
