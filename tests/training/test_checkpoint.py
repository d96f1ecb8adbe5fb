"""Orbax checkpointing of a TrainState: interval, retention, exact restore, no-op resaves."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.training import create_train_state, make_optimizer
from jaxcnn.training.checkpoint import Checkpointer


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(3)(x)


def _state(seed=0):
    tx = make_optimizer("adam", 1e-3)
    return create_train_state(_Net(), tx, jax.random.PRNGKey(seed), jnp.ones((2, 4)))


def _perturbed(state, step, seed=1):
    """A state at ``step`` whose every leaf differs from a fresh one (incl. Adam moments)."""
    rng = np.random.default_rng(seed)

    def noise(x):
        return jnp.asarray(rng.normal(size=x.shape), x.dtype) if jnp.issubdtype(
            x.dtype, jnp.floating) else x

    return state.replace(
        step=jnp.asarray(step, jnp.int32),
        params=jax.tree_util.tree_map(noise, state.params),
        batch_stats=jax.tree_util.tree_map(noise, state.batch_stats),
        opt_state=jax.tree_util.tree_map(noise, state.opt_state),
        rng=jax.random.key_data(jax.random.fold_in(jax.random.PRNGKey(seed), step)))


def _fields(state):
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "rng": state.rng}


def _assert_bit_identical(a, b):
    la, ta = jax.tree_util.tree_flatten(_fields(a))
    lb, tb = jax.tree_util.tree_flatten(_fields(b))
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x.reshape(-1).view(np.uint8), y.reshape(-1).view(np.uint8))


@pytest.fixture(scope="module")
def state():
    return _state()


def test_restore_latest_on_empty_directory_returns_input(tmp_path, state):
    with Checkpointer(tmp_path / "ckpt", every_steps=1) as ckpt:
        assert ckpt.latest_step() is None and ckpt.all_steps() == []
        assert ckpt.restore_latest(state) is state
    assert (tmp_path / "ckpt").is_dir()  # created if missing


def test_restore_is_bit_identical(tmp_path, state):
    saved = _perturbed(state, 7)
    with Checkpointer(tmp_path, every_steps=1) as ckpt:
        assert ckpt.save(saved)
    # A new Checkpointer (a new process after preemption) into a fresh, different state.
    with Checkpointer(tmp_path, every_steps=1) as ckpt:
        assert ckpt.latest_step() == 7
        restored = ckpt.restore_latest(_perturbed(state, 0, seed=2))
    _assert_bit_identical(restored, saved)
    assert restored.rng.dtype == jnp.uint32 and int(restored.step) == 7
    # Static fields come from ``like``; the restored state still trains.
    assert restored.apply_fn is state.apply_fn and restored.tx is state.tx
    grads = jax.tree_util.tree_map(jnp.ones_like, restored.params)
    assert int(restored.apply_gradients(grads, restored.batch_stats).step) == 8


def test_keeps_only_last_k(tmp_path, state):
    with Checkpointer(tmp_path, every_steps=1, keep=2) as ckpt:
        for step in (1, 2, 3, 4):
            assert ckpt.save(_perturbed(state, step, seed=step))
        assert ckpt.all_steps() == [3, 4] and ckpt.latest_step() == 4
        _assert_bit_identical(ckpt.restore(3, state), _perturbed(state, 3, seed=3))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["3", "4"]


def test_saves_every_n_steps(tmp_path, state):
    with Checkpointer(tmp_path, every_steps=3, keep=10) as ckpt:
        assert [s for s in range(1, 10) if ckpt.should_save(s)] == [3, 6, 9]
        saved = [s for s in range(1, 8) if ckpt.save(_perturbed(state, s))]
        assert saved == [3, 6] and ckpt.all_steps() == [3, 6]
        # ``force`` saves off the interval (the final checkpoint of a run).
        assert ckpt.save(_perturbed(state, 7), force=True)
        assert ckpt.all_steps() == [3, 6, 7]


def test_saving_the_same_step_twice_is_a_no_op(tmp_path, state):
    first = _perturbed(state, 4, seed=1)
    with Checkpointer(tmp_path, every_steps=2) as ckpt:
        assert ckpt.save(first) is True
        assert ckpt.save(_perturbed(state, 4, seed=5)) is False
        assert ckpt.save(_perturbed(state, 4, seed=6), force=True) is False
        assert ckpt.all_steps() == [4]
        _assert_bit_identical(ckpt.restore_latest(state), first)  # the first one is kept


@pytest.mark.parametrize("kwargs", [{"every_steps": 0}, {"every_steps": -1}, {"keep": 0}])
def test_bad_arguments_raise(tmp_path, kwargs):
    with pytest.raises(ValueError, match="every_steps"):
        Checkpointer(tmp_path, **kwargs)
