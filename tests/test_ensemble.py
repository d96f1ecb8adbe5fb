"""Tests for jaxcnn.ensemble against numpy references and separate single-model training."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn import ensemble
from jaxcnn.training import create_train_state, make_train_step


class TinyNet(nn.Module):
    """Conv + BatchNorm + dropout + dense: exercises params, batch_stats and dropout keys."""

    @nn.compact
    def __call__(self, x, train=False):
        # no conv bias before BatchNorm: its gradient is zero up to rounding, which Adam would
        # amplify into lr-sized steps of arbitrary sign (different in vmapped and single runs)
        x = nn.Conv(4, (3, 3), use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(x).mean(axis=(1, 2))
        x = nn.Dropout(0.3, deterministic=not train)(x)
        return nn.Dense(3)(x)


def _np_vote(preds, num_classes):
    out = []
    for column in preds.T:
        counts = np.bincount(column, minlength=num_classes)
        out.append(int(np.flatnonzero(counts == counts.max())[0]))  # lowest class among ties
    return np.array(out)


@pytest.mark.parametrize("k,n,c,seed", [(1, 7, 3, 0), (3, 50, 4, 1), (4, 200, 2, 2),
                                        (5, 100, 10, 3), (6, 300, 3, 4)])
def test_majority_vote_matches_numpy(k, n, c, seed):
    preds = np.random.default_rng(seed).integers(0, c, (k, n))
    np.testing.assert_array_equal(ensemble.majority_vote(jnp.asarray(preds), c),
                                  _np_vote(preds, c))


def test_majority_vote_ties_go_to_lowest_class_and_jits():
    preds = jnp.array([[3, 2, 0], [1, 2, 1], [3, 0, 1], [1, 0, 0]])
    # column 0: 3,1,3,1 -> tie 1/3 -> 1; column 1: 2,2,0,0 -> 0; column 2: 0,1,1,0 -> 0
    out = jax.jit(ensemble.majority_vote, static_argnums=1)(preds, 4)
    assert out.tolist() == [1, 0, 0] and out.dtype == jnp.int32


def test_majority_vote_bad_inputs():
    with pytest.raises(ValueError, match="preds"):
        ensemble.majority_vote(jnp.zeros((5,), jnp.int32), 3)
    with pytest.raises(TypeError, match="preds"):
        ensemble.majority_vote(jnp.zeros((2, 5)), 3)
    with pytest.raises(ValueError, match="num_classes"):
        ensemble.majority_vote(jnp.zeros((2, 5), jnp.int32), 0)


def _np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("shape,seed", [((1, 4, 3), 0), ((3, 20, 5), 1), ((7, 9, 10), 2)])
def test_averages_match_numpy(shape, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape).astype(np.float32) * 3
    weights = rng.uniform(0.1, 2.0, shape[0]).astype(np.float32)
    probs = _np_softmax(logits.astype(np.float64))
    np.testing.assert_allclose(ensemble.average_probabilities(jnp.asarray(logits)),
                               probs.mean(0), atol=1e-6)
    expected = sum(w * p for w, p in zip(weights, probs, strict=True)) / weights.sum()
    np.testing.assert_allclose(ensemble.weighted_average(jnp.asarray(logits), weights),
                               expected, atol=1e-6)
    # equal weights are the plain average
    np.testing.assert_allclose(ensemble.weighted_average(logits, np.ones(shape[0])),
                               probs.mean(0), atol=1e-6)


def test_averages_bfloat16_and_bad_inputs():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 4)), jnp.bfloat16)
    assert ensemble.average_probabilities(logits).dtype == jnp.bfloat16
    assert ensemble.weighted_average(logits, jnp.ones(2)).dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="logits"):
        ensemble.average_probabilities(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="weights"):
        ensemble.weighted_average(jnp.ones((2, 3, 4)), jnp.ones(3))


def test_bootstrap_indices_in_range_and_differ_per_member():
    idx = np.asarray(ensemble.bootstrap_indices(jax.random.key(0), 1000, 4))
    assert idx.shape == (4, 1000) and idx.min() >= 0 and idx.max() < 1000
    for a in range(4):
        # with replacement: about 1 - 1/e = 63.2% distinct examples per sample
        assert 0.58 < len(np.unique(idx[a])) / 1000 < 0.69
        for b in range(a):
            assert not np.array_equal(idx[a], idx[b])
    assert np.array_equal(idx, ensemble.bootstrap_indices(jax.random.key(0), 1000, 4))
    with pytest.raises(ValueError, match="`n`"):
        ensemble.bootstrap_indices(jax.random.key(0), 0, 4)
    with pytest.raises(ValueError, match="`k`"):
        ensemble.bootstrap_indices(jax.random.key(0), 10, -1)


def test_init_members_equals_separate_inits_and_members_differ():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 6, 1)), jnp.float32)
    keys = jax.random.split(jax.random.key(1), 3)
    stacked = ensemble.init_members(TinyNet(), keys, x)
    for i in range(3):
        single = TinyNet().init({"params": keys[i], "dropout": keys[i]}, x)
        jax.tree.map(lambda s, v, i=i: np.testing.assert_allclose(s[i], v, rtol=1e-6),
                     stacked, single)
    kernel = stacked["params"]["Conv_0"]["kernel"]
    assert not np.allclose(kernel[0], kernel[1])
    with pytest.raises(ValueError, match="keys"):
        ensemble.init_members(TinyNet(), jax.random.key(0), x)


def test_vmapped_training_equals_separate_training():
    k, b, steps = 3, 8, 3
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.normal(size=(steps, k, b, 6, 6, 1)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 3, (steps, k, b)))
    keys = jax.random.split(jax.random.key(0), k)
    tx = optax.adam(1e-2)

    states = ensemble.create_ensemble_state(TinyNet(), tx, keys, images[0, 0])
    step = jax.jit(ensemble.make_ensemble_train_step(label_smoothing=0.1))
    losses = []
    for s in range(steps):
        states, metrics = step(states, {"image": images[s], "label": labels[s]})
        losses.append(metrics["loss"])
    assert states.step.tolist() == [steps] * k

    single_step = jax.jit(make_train_step(label_smoothing=0.1))
    for i in range(k):
        state = create_train_state(TinyNet(), tx, keys[i], images[0, 0])
        for s in range(steps):
            state, metrics = single_step(state, {"image": images[s, i], "label": labels[s, i]})
            np.testing.assert_allclose(losses[s][i], metrics["loss"], rtol=1e-5)
        for tree in ("params", "batch_stats"):
            jax.tree.map(lambda a, v, i=i: np.testing.assert_allclose(a[i], v, rtol=1e-5,
                                                                      atol=1e-6),
                         getattr(states, tree), getattr(state, tree))

    logits = ensemble.predict(states.apply_fn, ensemble.ensemble_variables(states),
                              images[0, 0], batch_size=3)
    assert logits.shape == (k, b, 3)
    np.testing.assert_allclose(
        logits[k - 1], state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                                      images[0, 0]), rtol=1e-5, atol=1e-6)


def test_ensemble_step_rejects_batches_without_member_axis():
    x = jnp.ones((4, 6, 6, 1))
    states = ensemble.create_ensemble_state(TinyNet(), optax.sgd(0.1),
                                            jax.random.split(jax.random.key(0), 2), x)
    step = ensemble.make_ensemble_train_step()
    with pytest.raises(ValueError, match="batches"):
        step(states, {"image": x, "label": jnp.zeros(4, jnp.int32)})
    with pytest.raises(ValueError, match="batches"):
        step(states, {"image": x[None].repeat(2, 0)})


def test_stacking_beats_or_equals_best_member():
    # member 0 is right on classes 0-1 and guesses class 0 otherwise; member 1 is right on
    # class 2 only; member 2 is noise. Stacking learns whom to trust per class.
    rng = np.random.default_rng(0)
    c, n = 3, 600
    labels = rng.integers(0, c, n)

    def members(y):
        eye = np.eye(c)
        m0 = np.where((y < 2)[:, None], eye[y], eye[0]) * 0.8 + 0.2 / c
        m1 = np.where((y == 2)[:, None], eye[2], eye[rng.integers(0, 2, len(y))]) * 0.7 + 0.1
        m2 = rng.dirichlet(np.ones(c), len(y))
        return np.stack([m0, m1, m2])

    held, test_labels = members(labels), rng.integers(0, c, n)
    test = members(test_labels)
    meta = ensemble.fit_stacking(held, labels)
    stacked_acc = np.mean(ensemble.predict_stacking(meta, test) == test_labels)
    best_member = max(np.mean(p.argmax(-1) == test_labels) for p in test)
    assert stacked_acc >= best_member and stacked_acc > 0.95
    probs = ensemble.predict_stacking(meta, test, probabilities=True)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="member_probs"):
        ensemble.predict_stacking(meta, test[:2])
    with pytest.raises(ValueError, match="labels_heldout"):
        ensemble.fit_stacking(held, labels[:10])
