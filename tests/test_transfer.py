"""Tests of jaxcnn.transfer on tiny models (fast)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn import transfer
from jaxcnn.models import create
from jaxcnn.training import create_train_state


class Tiny(nn.Module):
    """conv -> BN -> conv -> BN -> pool -> dense head: every kind of leaf, small."""

    num_classes: int = 3

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(4, (3, 3), name="conv1")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn1")(x))
        x = nn.Conv(4, (3, 3), name="conv2")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="bn2")(x))
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(x)


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": jnp.asarray(rng.normal(size=(n, 6, 6, 2)), jnp.float32),
            "label": jnp.asarray(rng.integers(0, 3, n), jnp.int32)}


def _state(tx_fn, seed=0):
    batch = _batch()
    params = Tiny().init(jax.random.key(seed), batch["image"])["params"]
    tx = tx_fn(params)
    return create_train_state(Tiny(), tx, jax.random.PRNGKey(seed), batch["image"])


def _flat(tree):
    return {"/".join(str(k.key) for k in p): np.asarray(v)
            for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _run(state, frozen, steps=2):
    step = jax.jit(transfer.make_transfer_train_step(frozen))
    for i in range(steps):
        state, _ = step(state, _batch(seed=i))
    return state


def test_frozen_params_and_stats_unchanged_trainable_change():
    # Momentum: a frozen leaf must stay put although its (zeroed) gradient history is nonzero.
    base = optax.sgd(0.1, momentum=0.9)
    frozen = ["^conv1/", "^bn1/"]
    state0 = _state(lambda p: transfer.make_transfer_optimizer(base, p, frozen))
    state = _run(state0, frozen)
    before, after = _flat(state0.params), _flat(state.params)
    for path in before:
        if path.startswith(("conv1/", "bn1/")):
            np.testing.assert_array_equal(after[path], before[path], err_msg=path)  # bit-exact
        else:
            assert not np.array_equal(after[path], before[path]), path
    stats0, stats = _flat(state0.batch_stats), _flat(state.batch_stats)
    for path in stats0:
        if path.startswith("bn1/"):
            np.testing.assert_array_equal(stats[path], stats0[path], err_msg=path)
        else:
            assert not np.array_equal(stats[path], stats0[path]), path


def test_plain_train_step_would_move_the_frozen_stats():
    # The control for the test above: without make_transfer_train_step, bn1's stats move.
    from jaxcnn.training import make_train_step
    frozen = ["^conv1/", "^bn1/"]
    state0 = _state(lambda p: transfer.make_transfer_optimizer(optax.sgd(0.1), p, frozen))
    state, _ = jax.jit(make_train_step())(state0, _batch())
    assert not np.array_equal(state.batch_stats["bn1"]["mean"], state0.batch_stats["bn1"]["mean"])


@pytest.mark.parametrize("scale", [0.1, 0.25])
def test_backbone_learning_rate_scaled(scale):
    # One SGD step from the same params/grads: backbone update = scale * head-style update.
    batch = _batch()
    params = Tiny().init(jax.random.key(0), batch["image"])["params"]
    grads = jax.tree.map(lambda p: jnp.asarray(
        np.random.default_rng(p.size).normal(size=p.shape), p.dtype), params)
    full = optax.sgd(0.3)
    ref, _ = full.update(grads, full.init(params), params)
    tx = transfer.make_transfer_optimizer(optax.sgd(0.3), params, ["^conv1/"],
                                          ["^(conv2|bn1|bn2)/"], backbone_lr_scale=scale)
    upd, _ = tx.update(grads, tx.init(params), params)
    ref, upd = _flat(ref), _flat(upd)
    for path in ref:
        if path.startswith("conv1/"):
            assert not upd[path].any(), path
        elif path.startswith("head/"):
            np.testing.assert_allclose(upd[path], ref[path], rtol=1e-6)
        else:
            np.testing.assert_allclose(upd[path], scale * ref[path], rtol=1e-6)


def test_backbone_lr_scaled_with_adam_after_training():
    # With Adam the first update is -lr * sign(g) (up to eps): the ratio is exactly the scale.
    batch = _batch()
    params = Tiny().init(jax.random.key(0), batch["image"])["params"]
    grads = jax.tree.map(lambda p: jnp.full(p.shape, 0.5, p.dtype), params)
    tx = transfer.make_transfer_optimizer(optax.adam(1e-2), params, None, "^conv", 0.1)
    upd, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(upd["conv1"]["kernel"], -1e-3, rtol=1e-5)
    np.testing.assert_allclose(upd["head"]["kernel"], -1e-2, rtol=1e-5)


def test_freeze_labels_and_errors():
    params = Tiny().init(jax.random.key(0), _batch()["image"])["params"]
    labels = _flat(transfer.freeze(params, ["^(?!head/)"]))
    assert {p for p, v in labels.items() if v == "trainable"} == {"head/bias", "head/kernel"}
    with pytest.raises(ValueError, match="patterns.*'conv9'.*matches no parameter path"):
        transfer.freeze(params, "conv9")
    with pytest.raises(ValueError, match="invalid regular expression"):
        transfer.freeze(params, "conv(")
    with pytest.raises(ValueError, match="backbone_lr_scale"):
        transfer.make_transfer_optimizer(optax.sgd(1.0), params, None, None, -1.0)
    with pytest.raises(ValueError, match="backbone_patterns"):
        transfer.make_transfer_optimizer(optax.sgd(1.0), params, None, "nope")


def test_freeze_batch_stats_structure_mismatch():
    with pytest.raises(ValueError, match="same structure"):
        transfer.freeze_batch_stats({"a": jnp.ones(2)}, {"b": jnp.ones(2)}, "a")


def test_replace_head_keeps_others_and_resizes_head():
    batch = _batch()
    variables = Tiny().init(jax.random.key(0), batch["image"])
    model, new = transfer.replace_head(Tiny(), variables, 7, jax.random.key(1))
    assert model.num_classes == 7
    old_f, new_f = _flat(variables), _flat(new)
    assert set(old_f) == set(new_f)
    for path in old_f:
        if path.startswith("params/head/"):
            assert new_f[path].shape == (*old_f[path].shape[:-1], 7)
        else:
            np.testing.assert_array_equal(new_f[path], old_f[path])
    assert np.std(new_f["params/head/kernel"]) > 0 and not new_f["params/head/bias"].any()
    out = model.apply(new, batch["image"])
    assert out.shape == (8, 7)
    # the new variables are exactly what the new model's init produces, structurally
    ref = jax.eval_shape(model.init, jax.random.key(0), batch["image"])
    assert jax.tree.map(lambda a: a.shape, ref) == jax.tree.map(lambda a: a.shape, new)


@pytest.mark.parametrize("name,head", [("mlp", "head")])  # lenet5: the doctest
def test_replace_head_zoo(name, head):
    model = create(name, num_classes=10)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 1)), jnp.float32)
    variables = jax.jit(model.init)(jax.random.key(0), x)
    new_model, new = transfer.replace_head(model, variables, 4, jax.random.key(1), head=head)
    assert jax.eval_shape(new_model.apply, new, x).shape == (2, 4)
    assert new["params"][head]["kernel"].shape[-1] == 4


def test_replace_head_errors():
    variables = Tiny().init(jax.random.key(0), _batch()["image"])
    with pytest.raises(ValueError, match="`head` 'output'.*conv1, bn1, conv2, bn2, head"):
        transfer.replace_head(Tiny(), variables, 3, jax.random.key(0), head="output")
    with pytest.raises(ValueError, match="num_classes"):
        transfer.replace_head(Tiny(), variables, 0, jax.random.key(0))


def test_extract_features_shape_and_values():
    model = create("lenet5_modern", num_classes=10)
    x = np.random.default_rng(0).normal(size=(7, 32, 32, 1)).astype(np.float32)
    variables = jax.jit(model.init)(jax.random.key(0), x[:1])
    feats = transfer.extract_features(model, variables, x, "f6", batch_size=3)
    assert feats.shape == (7, 84) and feats.dtype == np.float32
    # f6 is the dense layer before its ReLU: recompute it by hand from c5's output.
    c5 = transfer.extract_features(model, variables, x, "c5", batch_size=4)
    p = variables["params"]["f6"]
    ref = np.maximum(c5, 0) @ np.asarray(p["kernel"]) + np.asarray(p["bias"])
    np.testing.assert_allclose(feats, ref, atol=1e-4)
    with pytest.raises(ValueError, match="unknown layer"):
        transfer.extract_features(model, variables, x, "f7")
    with pytest.raises(ValueError, match="batch_size"):
        transfer.extract_features(model, variables, x, "f6", batch_size=0)
    with pytest.raises(ValueError, match="images"):
        transfer.extract_features(model, variables, x[0], "f6")


@pytest.mark.parametrize("kind", ["logistic", "svm"])
def test_linear_classifier_fits_separable_data(kind):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    x = rng.normal(size=(200, 16)) + 6 * np.eye(4, 16)[y]
    clf = transfer.fit_linear_classifier(x, y, kind)
    assert clf.score(x, y) == 1.0
    y_test = rng.integers(0, 4, 100)
    x_test = rng.normal(size=(100, 16)) + 6 * np.eye(4, 16)[y_test]
    assert clf.score(x_test, y_test) > 0.95


def test_linear_classifier_errors():
    x, y = np.ones((4, 2)), np.arange(4)
    with pytest.raises(ValueError, match="kind"):
        transfer.fit_linear_classifier(x, y, "knn")
    with pytest.raises(ValueError, match="features"):
        transfer.fit_linear_classifier(np.ones(4), y)
    with pytest.raises(ValueError, match="labels"):
        transfer.fit_linear_classifier(x, np.arange(3))
