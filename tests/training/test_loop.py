"""The training loop end to end on the embedded digits dataset: metrics, files, exact resume."""

import json

import chex
import numpy as np
import pytest

from experiments.configs import default
from jaxcnn import data, models
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


@pytest.mark.optimized_xla  # 660 steps
def test_default_config_learns_the_digits_and_evaluates_each_test_digit_once(tmp_path,
                                                                             data_dir):
    """`make train`'s job, unchanged: LeNet-5, 30 epochs on the digits, at least 95 %.

    The evaluation's confusion matrix must hold each of the 360 test digits exactly once (the
    last batch of 104 is padded to 256 and the padding masked; padding counted would add 152
    digits of class 0) and equal that of the final parameters applied to the whole test split
    at once; the reported accuracy is its trace over 360.
    """
    config = default.get_config()
    config.data_dir = data_dir
    final = train(config, tmp_path)
    assert {"eval_accuracy", "eval_loss", "steps", "wall_s"} <= set(final)
    assert final["steps"] == 660  # 30 epochs of 1437 // 64 = 22 batches
    assert final["eval_accuracy"] >= 0.95, final
    assert json.loads((tmp_path / "final_metrics.json").read_text()) == final

    test_ds = data.load("digits", "test", data_dir)
    confusion = _confusion_of_each_test_digit_once(tmp_path, test_ds)
    assert final["eval_accuracy"] == np.trace(confusion) / 360
    np.testing.assert_allclose(final["per_class_accuracy"],
                               np.diag(confusion) / confusion.sum(1), atol=1e-6)
    # The reference: the final checkpoint's parameters on all 360 digits in one batch.
    saved = _restore(tmp_path)
    model = models.create(config.model, num_classes=10)
    (batch,) = test_ds.batches(360, shuffle=False, drop_remainder=False)
    variables = {"params": saved["params"]}
    if saved["batch_stats"]:
        variables["batch_stats"] = saved["batch_stats"]
    predicted = np.argmax(model.apply(variables, batch["image"], train=False), -1)
    expected = np.zeros((10, 10), int)
    np.add.at(expected, (batch["label"], predicted), 1)
    np.testing.assert_array_equal(confusion, expected)

    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train_loss" in r] == list(range(20, 661, 20))
    # Once per epoch (22 steps), then the final evaluation.
    assert [r["step"] for r in records if "eval_accuracy" in r] == list(range(22, 661, 22))
    assert records[-1]["eval_accuracy"] == final["eval_accuracy"]
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert list((tmp_path / "tensorboard").iterdir())


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
    chex.assert_trees_all_equal(a, b, strict=True)  # structure, dtypes, shapes and bits


def _confusion_of_each_test_digit_once(workdir, test_ds):
    """The run's confusion matrix, checked to count each of the 360 test digits once."""
    confusion = np.asarray(json.loads((workdir / "confusion_matrix.json").read_text()))
    assert len(test_ds) == 360 and confusion.sum() == 360
    np.testing.assert_array_equal(confusion.sum(1), np.bincount(test_ds.labels, minlength=10))
    return confusion


def _restore(workdir):
    import orbax.checkpoint as ocp

    ckpt = Checkpointer(workdir / "checkpoints")
    step = ckpt.latest_step()
    tree = ckpt._manager.restore(step, args=ocp.args.StandardRestore())
    ckpt.close()
    return tree


@pytest.mark.parametrize("parallel", ["pmap", "mesh"])
def test_parallel_modes_run_through_the_loop_with_batchnorm(tmp_path, data_dir, parallel):
    """pmap binds the BatchNorm axis name into the model; mesh needs none. Both train, and
    both evaluate each test digit once (eval batches of 256 split over 8 devices, the last
    one padded from 104)."""
    config = _config(data_dir, parallel=parallel, model="vgg11_bn", num_steps=4,
                     eval_every_steps=0, log_every_steps=2)
    config.model_options = {"width": 4, "fc_features": 16}
    final = train(config, tmp_path)
    assert final["steps"] == 4 and final["parallel"] == parallel
    assert np.isfinite(final["eval_loss"])
    _confusion_of_each_test_digit_once(tmp_path, data.load("digits", "test", data_dir))
