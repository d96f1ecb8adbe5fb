"""The training loop end to end on the embedded digits dataset: metrics, files, exact resume."""

import json

import jax
import numpy as np
import pytest

from experiments.configs import default
from jaxcnn.training.checkpoint import Checkpointer
from jaxcnn.training.loop import train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("datasets"))


def _config(data_dir, **overrides):
    config = default.get_config()
    config.data_dir = data_dir
    config.num_steps = 12
    config.batch_size = 32
    config.log_every_steps = 4
    config.eval_every_steps = 6
    config.checkpoint_every_steps = 4
    for k, v in overrides.items():
        setattr(config, k, v)
    return config


def test_train_writes_metrics_curves_and_final_json(tmp_path, data_dir):
    final = train(_config(data_dir), tmp_path)
    assert {"eval_accuracy", "eval_loss", "steps", "wall_s"} <= set(final)
    assert final["steps"] == 12 and 0.0 <= final["eval_accuracy"] <= 1.0
    assert json.loads((tmp_path / "final_metrics.json").read_text()) == final
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train_loss" in r] == [4, 8, 12]
    assert any("eval_accuracy" in r for r in records)
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert list((tmp_path / "tensorboard").iterdir())
    assert len(final["per_class_accuracy"]) == 10


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, data_dir):
    """Stop after 8 of 12 steps, rerun the same command: same parameters bit for bit."""
    full = tmp_path / "full"
    train(_config(data_dir), full)
    part = tmp_path / "part"
    train(_config(data_dir), part, stop_after=8)  # as if preempted after step 8
    resumed = train(_config(data_dir), part)
    assert resumed["resumed_from_step"] == 8
    a = _restore(full)
    b = _restore(part)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def _restore(workdir):
    import orbax.checkpoint as ocp

    ckpt = Checkpointer(workdir / "checkpoints")
    step = ckpt.latest_step()
    tree = ckpt._manager.restore(step, args=ocp.args.StandardRestore())
    ckpt.close()
    return tree


@pytest.mark.parametrize("parallel", ["pmap", "mesh"])
def test_parallel_modes_run_through_the_loop_with_batchnorm(tmp_path, data_dir, parallel):
    """pmap binds the BatchNorm axis name into the model; mesh needs none. Both train."""
    config = _config(data_dir, parallel=parallel, model="vgg11_bn", num_steps=4,
                     eval_every_steps=0, log_every_steps=2)
    config.model_options = {"width": 4, "fc_features": 16}
    final = train(config, tmp_path)
    assert final["steps"] == 4 and final["parallel"] == parallel
    assert np.isfinite(final["eval_loss"])
