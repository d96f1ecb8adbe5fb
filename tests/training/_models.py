"""A tiny conv net with BatchNorm and dropout for training tests (fast to compile)."""

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn import layers as L


class TinyNet(nn.Module):
    num_classes: int = 10
    bn_axis_name: str | None = None
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = L.Conv(8, 3, name="conv1")(x)
        x = L.BatchNorm(axis_name=self.bn_axis_name, name="bn1")(x, train=train)
        x = nn.relu(x)
        x = L.MaxPool(2, name="pool1")(x)
        x = x.reshape(x.shape[0], -1)
        x = L.Dropout(self.dropout, name="drop")(x, train=train)
        return L.Dense(self.num_classes, name="head")(x).astype(jnp.float32)
