"""Tests of experiments/transfer_mnist.py: the data split and the learning-rate grid (fast),
and one end-to-end run on a tiny random MNIST-like dataset (slow: it compiles four training
steps and pretrains, about a minute of CPU)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import transfer_mnist as tm
from jaxcnn import transfer


def test_draw_labelled_and_validation_are_disjoint_and_balanced():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 400)
    few, val = tm._draw(y, 7, 50, np.random.default_rng(1))
    assert len(few) == 35 and len(val) == 50
    assert np.bincount(y[few], minlength=5).tolist() == [7] * 5
    assert not set(few) & set(val)
    assert len(set(val)) == 50
    again = tm._draw(y, 7, 50, np.random.default_rng(1))
    assert (again[0] == few).all() and (again[1] == val).all()


def test_with_lr_sets_backbone_and_head_rates():
    rng = np.random.default_rng(0)
    params = {"c1": {"kernel": jnp.asarray(rng.normal(size=3), jnp.float32)},
              "output": {"kernel": jnp.asarray(rng.normal(size=3), jnp.float32)}}
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=0.0)
    tx = transfer.make_transfer_optimizer(adam, params, None, ["^(?!output/)"], 1.0)
    state = tm._with_lr(tx.init(params), 1e-2, 1e-4)
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
    updates, _ = tx.update(grads, state, params)
    # Adam's first step moves every weight by lr against the gradient's sign.
    for name, lr in (("c1", 1e-4), ("output", 1e-2)):
        np.testing.assert_allclose(updates[name]["kernel"],
                                   -lr * np.sign(grads[name]["kernel"]), rtol=1e-4)


def test_model_options_scale_every_conv_width():
    assert tm._model_options(tm.ARCHS["lenet5_modern"], 2.0) == {"width": 2.0}
    assert tm._model_options(tm.ARCHS["fcn_classifier"], 0.5) == {"features": (8, 16, 32)}
    model = tm.create("lenet5_modern", num_classes=5,
                      **tm._model_options(tm.ARCHS["lenet5_modern"], 2.0))
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    assert [shapes["params"][c]["kernel"].shape[-1] for c in ("c1", "c3", "c5")] == [12, 32, 240]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:mnist .* examples; the standard release:UserWarning")
def test_end_to_end_on_tiny_random_mnist(tmp_path):
    from jaxcnn.data.prepare import prepare
    from tests.data._helpers import write_mnist_like

    write_mnist_like(tmp_path / "raw", sizes=(("train", 400), ("test", 60)))
    prepare("mnist", tmp_path / "raw", tmp_path / "tfds")
    out = tmp_path / "r.json"
    argv = ["--data-dir", str(tmp_path / "tfds"), "--out", str(out), "--pretrain-epochs", "1",
            "--per-class", "3", "--val-size", "20", "--steps", "4", "--eval-every", "2",
            "--lrs", "1e-3", "3e-3", "--backbone-scales", "0.1", "1", "--cs", "0.1", "1",
            "--repeats", "2", "--pretrained-cache", str(tmp_path / "pre.msgpack"),
            "--width", "0.5", "--pretrain-rotate", "10", "--pretrain-zoom", "0.1"]
    report = tm.main(argv)
    assert json.loads(out.read_text())["test_accuracy_5_9"] == report["test_accuracy_5_9"]
    assert set(report["test_accuracy_5_9"]) == set(tm.NAMES)
    first, second = report["runs"]
    for arm, res in first.items():
        # the choice is the best validation accuracy of the grid, and draw 1 reuses it
        assert res["val"] == max(t["val"] for t in res["tried"])
        assert [t["config"] for t in second[arm]["tried"]] == [res["config"]]
    assert len(first["fine_tuned"]["tried"]) == 4 and len(first["scratch"]["tried"]) == 2
    # the cached pretrained weights are reused, and refused for another recipe
    assert tm.main(argv + ["--repeats", "1"])["pretrain_steps"] == report["pretrain_steps"]
    for other in (["--shift", "1"], ["--width", "1"], ["--pretrain-rotate", "5"]):
        with pytest.raises(ValueError, match="pretrained-cache"):
            tm.main(argv + other)
