"""The "plain Flax linen" baseline: models and train step written the way Flax's examples are.

Nothing here imports jaxcnn (the baseline must run without whatever jaxcnn sets up on import).
The ResNet is Flax's ``examples/imagenet/models.py`` (``nn.Conv``, ``nn.BatchNorm`` with
``momentum=0.9, epsilon=1e-5``, ``'SAME'`` padding, zero-initialised last BatchNorm scale)
with the CIFAR stem (3x3 stride-1 convolution, no max pool); LeNet-5 is Flax's MNIST example
style (``nn.Conv`` + ``nn.avg_pool``). The train step is the examples' ``train_step``:
``jax.value_and_grad`` of the softmax cross-entropy, ``TrainState.apply_gradients`` with
``optax.sgd(lr, momentum=0.9)``, under a plain ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

__all__ = ["BUILDERS", "TrainState", "build", "create_state", "train_step"]


class ResNetBlock(nn.Module):
    """Flax example's ``ResNetBlock`` (two 3x3 convolutions, projection when shapes differ)."""

    filters: int
    conv: Any
    norm: Any
    act: Callable
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = self.conv(self.filters, (3, 3), self.strides)(x)
        y = self.act(self.norm()(y))
        y = self.conv(self.filters, (3, 3))(y)
        y = self.norm(scale_init=nn.initializers.zeros_init())(y)
        if residual.shape != y.shape:
            residual = self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)
        return self.act(residual + y)


class ResNet(nn.Module):
    """Flax example's ``ResNet`` with an optional CIFAR stem."""

    stage_sizes: tuple[int, ...]
    num_classes: int
    num_filters: int = 64
    cifar_stem: bool = True

    @nn.compact
    def __call__(self, x, train: bool = True):
        conv = partial(nn.Conv, use_bias=False)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5)
        if self.cifar_stem:
            x = conv(self.num_filters, (3, 3), name="conv_init")(x)
        else:
            x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)],
                     name="conv_init")(x)
        x = nn.relu(norm(name="bn_init")(x))
        if not self.cifar_stem:
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, block_size in enumerate(self.stage_sizes):
            for j in range(block_size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = ResNetBlock(self.num_filters * 2**i, strides=strides, conv=conv, norm=norm,
                                act=nn.relu)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


class LeNet5(nn.Module):
    """LeNet-5 (tanh, average pooling, VALID 5x5 convolutions) in Flax's MNIST-example style."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.avg_pool(nn.tanh(nn.Conv(6, (5, 5), padding="VALID")(x)), (2, 2), (2, 2))
        x = nn.avg_pool(nn.tanh(nn.Conv(16, (5, 5), padding="VALID")(x)), (2, 2), (2, 2))
        x = nn.tanh(nn.Conv(120, (5, 5), padding="VALID")(x)).reshape((x.shape[0], -1))
        x = nn.tanh(nn.Dense(84)(x))
        return nn.Dense(self.num_classes)(x)


BUILDERS: dict[str, Callable[[int], nn.Module]] = {
    "lenet5": LeNet5,
    "resnet18": lambda num_classes: ResNet((2, 2, 2, 2), num_classes),
}
"""Benchmark model name -> ``builder(num_classes) -> flax.linen.Module``."""


class TrainState(train_state.TrainState):
    """The Flax examples' ``TrainState`` with BatchNorm statistics."""

    batch_stats: Any = None


def build(name: str, num_classes: int) -> nn.Module:
    """The plain-Flax twin of benchmark model ``name`` (one of :data:`BUILDERS`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = jnp.ones((1, 32, 32, 1))
        >>> v = jax.eval_shape(build("lenet5", 10).init, jax.random.key(0), x)
        >>> sum(x.size for x in jax.tree_util.tree_leaves(v["params"]))
        61706
    """
    if name not in BUILDERS:
        raise ValueError(f"`name` must be one of {sorted(BUILDERS)} for the plain-Flax "
                         f"baseline, got {name!r}.")
    return BUILDERS[name](num_classes)


def create_state(model: nn.Module, rng: jax.Array, sample: jax.Array,
                 learning_rate: float = 0.01) -> TrainState:
    """Initialise ``model`` and wrap it with ``optax.sgd(learning_rate, momentum=0.9)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> s = create_state(build("lenet5", 10), jax.random.key(0), jnp.ones((1, 32, 32, 1)))
        >>> int(s.step)
        0
    """
    variables = jax.jit(partial(model.init, train=False))(rng, sample)
    return TrainState.create(apply_fn=model.apply, params=variables["params"],
                             batch_stats=variables.get("batch_stats", {}),
                             tx=optax.sgd(learning_rate, momentum=0.9))


def train_step(state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
    """Forward, backward and update, as the Flax examples write it (jit it yourself).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> s = create_state(build("lenet5", 10), jax.random.key(0), jnp.ones((1, 32, 32, 1)))
        >>> batch = {"image": jnp.ones((2, 32, 32, 1)), "label": jnp.array([0, 1])}
        >>> s, metrics = jax.jit(train_step)(s, batch)
        >>> int(s.step), sorted(metrics)
        (1, ['accuracy', 'loss'])
    """
    def loss_fn(params):
        variables = {"params": params}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        logits, updates = state.apply_fn(variables, batch["image"], train=True,
                                         mutable=["batch_stats"])
        one_hot = jax.nn.one_hot(batch["label"], logits.shape[-1])
        loss = optax.softmax_cross_entropy(logits, one_hot).mean()
        return loss, (updates, logits)

    (loss, (updates, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads,
                                  batch_stats=updates.get("batch_stats", state.batch_stats))
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return state, {"loss": loss, "accuracy": accuracy}
