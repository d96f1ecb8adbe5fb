"""create_train_state: the compiled init is reused, and unhashable modules still work."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn.training import create_train_state
from jaxcnn.training import state as state_module


class _Net(nn.Module):
    options: dict

    @nn.compact
    def __call__(self, x, train=False):
        return nn.Dense(2)(x)


class _Hashable(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        return nn.Dense(3)(x)


def test_second_state_reuses_the_compiled_init():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4)), jnp.float32)
    create_train_state(_Hashable(), optax.sgd(0.1), jax.random.PRNGKey(0), x)
    before = state_module._init_variables._cache_size()
    create_train_state(_Hashable(), optax.sgd(0.1), jax.random.PRNGKey(1), x)
    assert state_module._init_variables._cache_size() == before


def test_module_with_unhashable_fields_is_initialised():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(1, 3)), jnp.float32)
    s = create_train_state(_Net({"a": [1]}), optax.sgd(0.1), jax.random.PRNGKey(0), x)
    assert s.params["Dense_0"]["kernel"].shape == (3, 2)
