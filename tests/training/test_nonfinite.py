"""NaN/Inf never reaches the parameters; the loop stops with the step, or skips, by config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import default
from jaxcnn.training import create_train_state, make_optimizer, make_train_step
from jaxcnn.training.loop import train
from tests.training._models import TinyNet


def test_step_with_nan_input_keeps_state_and_flags_it():
    state = create_train_state(TinyNet(), make_optimizer("momentum", 0.1), jax.random.PRNGKey(0),
                               jnp.ones((1, 8, 8, 1)))
    step = jax.jit(make_train_step())
    rng = np.random.default_rng(0)
    good = {"image": rng.normal(size=(4, 8, 8, 1)).astype(np.float32),
            "label": np.arange(4, dtype=np.int32)}
    state, m = step(state, good)
    assert float(m["nonfinite_loss"]) == 0 and float(m["nonfinite_grads"]) == 0
    bad = {**good, "image": good["image"].copy()}
    bad["image"][1, 2, 3, 0] = np.nan
    after, m = step(state, bad)
    assert float(m["nonfinite_loss"]) == 1
    assert int(after.step) == int(state.step) + 1
    for tree in ("params", "opt_state", "batch_stats"):
        jax.tree_util.tree_map(np.testing.assert_array_equal, getattr(after, tree),
                               getattr(state, tree))


def _exploding(data_dir, nonfinite):
    config = default.get_config()
    config.data_dir = data_dir
    config.num_steps, config.batch_size, config.log_every_steps = 6, 32, 3
    config.schedule, config.learning_rate, config.optimizer = "constant", 1e30, "sgd"
    config.nonfinite = nonfinite
    return config


def test_loop_stops_naming_the_step_and_quantity(tmp_path):
    with pytest.raises(FloatingPointError, match=r"non-finite (loss|gradients).* at step \d"):
        train(_exploding(str(tmp_path / "data"), "stop"), tmp_path / "run")


def test_loop_skips_when_configured(tmp_path):
    final = train(_exploding(str(tmp_path / "data"), "skip"), tmp_path / "run")
    assert final["steps"] == 6


def test_unknown_mode_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="config.nonfinite must be"):
        train(_exploding(str(tmp_path / "data"), "ignore"), tmp_path / "run")
