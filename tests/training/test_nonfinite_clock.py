"""A skipped non-finite step: ``state.step`` counts batches, the optimizer counts updates.

The clocks (documented in ``make_train_step``): ``state.step`` counts every step taken (the
data position and the dropout keys follow it, so a resumed run is exact), while the
optimizer's state, the learning-rate schedule's count included, advances only on applied
updates, as under ``optax.apply_if_finite``. A skipped step is then invisible to the
optimizer, and the loop reports the learning rate of the schedule's own count.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import default
from jaxcnn.training import create_train_state, make_optimizer, make_schedule, make_train_step
from jaxcnn.training.loop import train
from jaxcnn.training.optim import schedule_count
from tests.training._models import TinyNet


def _batch(seed, nan=False):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(8, 8, 8, 1)).astype(np.float32)
    if nan:
        images[3, 1, 2, 0] = np.nan
    return {"image": images, "label": rng.integers(0, 10, 8).astype(np.int32)}


def _run(batches):
    # A schedule that changes every step, and momentum, so any clock slip would show.
    schedule = make_schedule("inverse_time", 0.1, total_steps=10, decay_rate=1.0)
    state = create_train_state(TinyNet(), make_optimizer("momentum", schedule),
                               jax.random.PRNGKey(0), jnp.ones((1, 8, 8, 1)))
    step = jax.jit(make_train_step())
    for batch in batches:
        state, metrics = step(state, batch)
    return state


def test_skipped_step_is_invisible_to_the_optimizer_and_its_schedule():
    skipped = _run([_batch(0), _batch(1, nan=True), _batch(2)])
    reference = _run([_batch(0), _batch(2)])  # the same run without the bad batch
    assert int(skipped.step) == 3 and int(reference.step) == 2  # batches consumed
    assert schedule_count(skipped.opt_state) == schedule_count(reference.opt_state) == 2
    for tree in ("params", "opt_state", "batch_stats"):
        jax.tree_util.tree_map(np.testing.assert_array_equal, getattr(skipped, tree),
                               getattr(reference, tree))


def test_schedule_count_without_a_schedule_is_none():
    state = create_train_state(TinyNet(), make_optimizer("sgd", 0.1), jax.random.PRNGKey(0),
                               jnp.ones((1, 8, 8, 1)))
    assert schedule_count(state.opt_state) is None


def test_loop_reports_the_learning_rate_of_the_applied_updates(tmp_path):
    config = default.get_config()
    config.data_dir = str(tmp_path / "data")
    config.num_steps, config.batch_size, config.log_every_steps = 6, 32, 1
    config.optimizer, config.learning_rate = "sgd", 1e30  # step 1 applies, then NaN/Inf
    config.schedule, config.decay_rate = "inverse_time", 0.5
    config.nonfinite = "skip"
    train(config, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text()
               .splitlines()]
    records = [r for r in records if "train_loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    flags = [r["nonfinite_step"] for r in records]
    assert flags[0] == 0 and sum(flags) > 0  # some steps were skipped
    schedule = make_schedule("inverse_time", 1e30, total_steps=6, decay_rate=0.5)
    applied = 0
    for record, flag in zip(records, flags, strict=True):
        applied += flag == 0
        # The rate of the last applied update: the schedule at its own count - 1.
        assert record["learning_rate"] == pytest.approx(float(schedule(applied - 1)), rel=1e-6)
