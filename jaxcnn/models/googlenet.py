"""GoogLeNet / Inception v1 (Szegedy et al. 2015, "Going Deeper with Convolutions").

The layout is torchvision's ``googlenet`` (batch norm after every convolution, "5x5" branches
with 3x3 kernels, adaptive 4x4 pooling in the auxiliary heads), so its weights can be
imported: submodule names are torchvision's (``conv1``, ``maxpool1``, ..., ``inception3a``,
..., ``inception5b``, ``aux1``, ``aux2``) except the classifier, named like the rest of the
zoo: ``global_pool``, ``dropout`` and ``head`` (torchvision's ``avgpool``, ``dropout``,
``fc``). Inside a block, torchvision's ``branch2.0.conv`` is ``branch2_0/conv``.

With ``aux_logits=True`` the two auxiliary classifiers (after ``inception4a`` and
``inception4d``) run in training only; the model then returns ``(logits, aux1, aux2)`` and the
training loss is ``loss + 0.3 * aux1_loss + 0.3 * aux2_loss`` (:func:`combine_aux_losses`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn import functional as F
from jaxcnn import layers as L
from jaxcnn.blocks.inception import TORCHVISION_BATCH_NORM, BasicConv, Inception, InceptionAux
from jaxcnn.functional._checks import check_float, check_rank
from jaxcnn.layers._utils import positive_int
from jaxcnn.models.registry import register

__all__ = ["GoogLeNet", "combine_aux_losses", "googlenet", "googlenet_loss_weights"]

ModuleDef = Any
Array = jax.Array

googlenet_loss_weights = (1.0, 0.3, 0.3)
"""Weights of the (main, aux1, aux2) losses in training (Szegedy et al. 2015, Sec. 5)."""

# (ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj): Table 1 of the paper.
_INCEPTION = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}
# torchvision's max pools (ceil_mode=True) that follow these layers.
_POOL_AFTER = {"inception3b": ("maxpool3", 3), "inception4e": ("maxpool4", 2)}
# torchvision's transform_input: x * std / 0.5 + (mean - 0.5) / 0.5 per RGB channel, i.e. from
# ImageNet-normalised inputs to the [-1, 1] scaling the ported TensorFlow weights expect.
_TRANSFORM_SCALE = (0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5)
_TRANSFORM_SHIFT = ((0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5)


def combine_aux_losses(main: Array, aux1: Array, aux2: Array,
                       weights: tuple[float, float, float] = googlenet_loss_weights) -> Array:
    """GoogLeNet's training loss: ``main + 0.3 * aux1 + 0.3 * aux2``.

    ``L = w_0 L_main + w_1 L_aux1 + w_2 L_aux2`` with ``weights = (1.0, 0.3, 0.3)``
    (:data:`googlenet_loss_weights`; Szegedy et al. 2015, Sec. 5: "their loss gets added to
    the total loss of the network with a discount weight (0.3)"). At inference the auxiliary
    heads are discarded.

    Args:
        main: loss of the main classifier (any shape, usually a scalar).
        aux1: loss of ``aux1`` (after ``inception4a``).
        aux2: loss of ``aux2`` (after ``inception4d``).
        weights: ``(w_0, w_1, w_2)``; default :data:`googlenet_loss_weights`.

    Example:
        >>> import jax.numpy as jnp
        >>> combine_aux_losses(jnp.float32(2.0), jnp.float32(1.0), jnp.float32(3.0))
        Array(3.2, dtype=float32)
    """
    w0, w1, w2 = weights
    return w0 * main + w1 * aux1 + w2 * aux2


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1) with torchvision's layout; input 224x224x3.

    ``conv1 7x7/2 -> maxpool1 -> conv2 1x1 -> conv3 3x3 -> maxpool2 -> inception3a, 3b ->
    maxpool3 -> inception4a..4e -> maxpool4 -> inception5a, 5b -> global_pool -> dropout ->
    head``, every convolution a :class:`~jaxcnn.blocks.inception.BasicConv` (conv, BN with
    ``epsilon=1e-3``, ReLU); max pools 3x3/2 (``maxpool4`` 2x2/2) with PyTorch's
    ``ceil_mode``. Feature maps at 224x224: 112, 56, 28 (3a-3b), 14 (4a-4e), 7 (5a-5b).

    Args:
        num_classes: size of the head. Default 1000.
        aux_logits: add the two auxiliary classifiers (``aux1`` after ``inception4a``,
            ``aux2`` after ``inception4d``); in training the model then returns
            ``(logits, aux1, aux2)``, combine their losses with :func:`combine_aux_losses`.
            In evaluation it returns ``logits`` only (the heads are not run). Default False.
        dropout_rate: dropout before the head; default 0.2 (torchvision; the paper: 0.4).
        aux_dropout_rate: dropout in the auxiliary heads; default 0.7.
        kernel_5x5: kernel of the Inception "5x5" branches; default 3 (torchvision, for its
            weights; 5 is the paper's).
        transform_input: rescale each RGB channel first, ``x * std / 0.5 + (mean - 0.5) /
            0.5`` with ImageNet's mean and std, as torchvision's ``transform_input`` (True
            for its pretrained weights, which were ported from TensorFlow). Default False.
        width: multiplier of every channel count (``max(1, round(c * width))``), e.g.
            ``1 / 16`` for a fast test network. Default 1.
        conv: convolution factory; default ``partial(L.Conv, use_bias=False)``.
        norm: normalization factory; default ``partial(L.BatchNorm, epsilon=1e-3)``.
        act: activation; default ``F.relu``.
        dtype: compute dtype (e.g. ``jnp.bfloat16``); parameters stay float32.

    Input ``(N, H, W, 3)`` with ``H, W >= 32``. In training pass ``mutable=["batch_stats"]``
    and ``rngs={"dropout": key}``.

    Example:
        >>> import functools, jax, jax.numpy as jnp
        >>> model = GoogLeNet(num_classes=10, aux_logits=True)
        >>> x = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
        >>> train = functools.partial(model.apply, train=True, mutable=["batch_stats"],
        ...                           rngs={"dropout": jax.random.key(1)})
        >>> (logits, aux1, aux2), _ = jax.eval_shape(train, variables, x)
        >>> logits.shape, aux1.shape, aux2.shape
        ((2, 10), (2, 10), (2, 10))
        >>> jax.eval_shape(model.apply, variables, x).shape           # eval: logits only
        (2, 10)

    (``jax.eval_shape`` traces without computing; ``model.init`` and ``model.apply`` are called
    the same way on real arrays.)
    """

    num_classes: int = 1000
    aux_logits: bool = False
    dropout_rate: float = 0.2
    aux_dropout_rate: float = 0.7
    kernel_5x5: int = 3
    transform_input: bool = False
    width: float = 1.0
    conv: ModuleDef = partial(L.Conv, use_bias=False)
    norm: ModuleDef = TORCHVISION_BATCH_NORM
    act: Callable[[Array], Array] = F.relu
    dtype: Any = None

    def _validate(self, x: Array) -> None:
        check_rank(x, "x", 4, "(N, H, W, C) for GoogLeNet")
        check_float(x, "x")
        positive_int(self.num_classes, "num_classes")
        if not self.width > 0:
            raise ValueError(f"`width` must be > 0, got {self.width!r}.")
        if self.transform_input and x.shape[-1] != 3:
            raise ValueError(f"`transform_input=True` rescales RGB channels: `x` must have 3 "
                             f"channels, got shape {x.shape}.")

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array | tuple[Array, Array, Array]:
        self._validate(x)
        typed = {} if self.dtype is None else {"dtype": self.dtype}
        w = partial(_scaled, width=self.width)
        parts = dict(conv=partial(self.conv, **typed), norm=partial(self.norm, **typed),
                     act=self.act)
        unit = partial(BasicConv, **parts)
        pool = partial(L.MaxPool, strides=2, ceil_mode=True)
        # torchvision builds the aux heads always; run them at init so their params exist.
        run_aux = self.aux_logits and (train or self.is_initializing())
        aux = partial(InceptionAux, self.num_classes, conv_features=w(128), hidden=w(1024),
                      dropout_rate=self.aux_dropout_rate, dtype=self.dtype, **parts)

        if self.transform_input:
            x = x * jnp.asarray(_TRANSFORM_SCALE, x.dtype) + jnp.asarray(_TRANSFORM_SHIFT,
                                                                         x.dtype)
        x = unit(w(64), 7, strides=2, padding=3, name="conv1")(x, train)
        x = pool(3, name="maxpool1")(x)
        x = unit(w(64), 1, name="conv2")(x, train)
        x = unit(w(192), 3, name="conv3")(x, train)
        x = pool(3, name="maxpool2")(x)
        aux_out = {}
        for name, channels in _INCEPTION.items():
            x = Inception(*map(w, channels), kernel_5x5=self.kernel_5x5, **parts,
                          name=name)(x, train)
            if name in _POOL_AFTER:
                pool_name, window = _POOL_AFTER[name]
                x = pool(window, name=pool_name)(x)
            head = {"inception4a": "aux1", "inception4d": "aux2"}.get(name)
            if run_aux and head:
                aux_out[head] = aux(name=head)(x, train)

        x = L.GlobalAvgPool(name="global_pool")(x)
        x = L.Dropout(self.dropout_rate, name="dropout")(x, train=train)
        logits = L.Dense(self.num_classes, name="head", **typed)(x)
        if self.aux_logits and train:
            return logits, aux_out["aux1"], aux_out["aux2"]
        return logits


@register("googlenet")
def googlenet(num_classes: int = 1000, aux_logits: bool = False, **options: Any) -> GoogLeNet:
    """GoogLeNet (Szegedy et al. 2015), torchvision layout; 6,624,904 parameters.

    Counts are the ``params`` collection (BatchNorm running statistics excluded) and equal
    torchvision's ``googlenet(aux_logits=False)``: 6,624,904, and with ``aux_logits=True``
    13,004,888. The two heads add 6,379,984: each is a 1x1 unit to 128 channels
    (``C * 128 + 2 * 128``), ``fc1`` ``2048 * 1024 + 1024 = 2,098,176`` and ``fc2``
    ``1024 * 1000 + 1000 = 1,025,000``; with ``C = 512`` (aux1) and ``528`` (aux2):
    ``3,188,968 + 3,191,016``.

    Args:
        num_classes: size of the head(s); default 1000.
        aux_logits: add the auxiliary classifiers (see :class:`GoogLeNet`); default False.
        **options: other :class:`GoogLeNet` fields (``width``, ``dropout_rate``,
            ``kernel_5x5``, ``transform_input``, ``norm``, ``dtype``, ...).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import jaxcnn
        >>> x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
        >>> variables = jax.eval_shape(googlenet().init, jax.random.key(0), x)
        >>> jaxcnn.count_params(variables["params"])
        6624904
    """
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, **options)
