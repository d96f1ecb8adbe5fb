"""Classification sums against numpy, masking, summaries, and eval sums over split batches."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn.training import (
    classification_sums,
    create_train_state,
    make_eval_step,
    summarize,
)

# One compiled call instead of many eagerly dispatched ops: much faster on a busy CPU.
_sums = jax.jit(classification_sums, static_argnums=2, static_argnames="confusion")


def _ref(logits, labels, num_classes, mask=None):
    z = np.asarray(logits, np.float64)
    keep = np.ones(len(labels), bool) if mask is None else np.asarray(mask, bool)
    z = z - z.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    losses = -log_p[np.arange(len(labels)), labels]
    pred = z.argmax(-1)
    k = min(5, z.shape[-1])
    top = np.argsort(-z, -1)[:, :k]
    in_top = (top == labels[:, None]).any(-1)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for y, p, m in zip(labels, pred, keep, strict=True):
        confusion[y, p] += int(m)
    return {"loss_sum": losses[keep].sum(), "correct": int((keep & (pred == labels)).sum()),
            "correct_top5": int((keep & in_top).sum()), "count": int(keep.sum()),
            "confusion": confusion}


def _data(n, k, seed):
    rng = np.random.default_rng(seed)
    # Distinct continuous values: no ties, so argmax / top-k agree with numpy.
    return (rng.normal(size=(n, k)).astype(np.float32),
            rng.integers(0, k, n).astype(np.int32))


def _check(got, ref, confusion=True):
    np.testing.assert_allclose(float(got["loss_sum"]), ref["loss_sum"], rtol=1e-5)
    for key in ("correct", "correct_top5", "count"):
        assert got[key].dtype == jnp.int32
        assert int(got[key]) == ref[key], key
    if confusion:
        assert got["confusion"].dtype == jnp.int32
        np.testing.assert_array_equal(got["confusion"], ref["confusion"])
    else:
        assert "confusion" not in got


@pytest.mark.parametrize("n, k, seed", [(16, 10, 0), (9, 7, 1), (5, 3, 2), (12, 2, 3)])
@pytest.mark.parametrize("confusion", [True, False])
def test_classification_sums_matches_numpy(n, k, seed, confusion):
    logits, labels = _data(n, k, seed)
    got = _sums(jnp.asarray(logits), jnp.asarray(labels), k, confusion=confusion)
    _check(got, _ref(logits, labels, k), confusion)


def test_classification_sums_top5_differs_from_top1():
    logits, labels = _data(64, 10, 4)
    ref = _ref(logits, labels, 10)
    assert ref["correct"] < ref["correct_top5"] < 64  # the case is informative
    _check(_sums(logits, labels, 10, confusion=True), ref)


@pytest.mark.parametrize("mask_dtype", [np.int32, np.bool_, np.float32])
def test_classification_sums_mask_excludes_padding(mask_dtype):
    logits, labels = _data(12, 6, 5)
    n_real = 9
    # Padding as the training loop builds it: zero images give equal logits, label 0.
    labels[n_real:] = 0
    logits[n_real:] = 0.0
    mask = (np.arange(12) < n_real).astype(mask_dtype)
    got = jax.jit(lambda z, y, m: classification_sums(z, y, 6, mask=m, confusion=True))(
        logits, labels, mask)
    _check(got, _ref(logits[:n_real], labels[:n_real], 6))
    assert int(got["confusion"].sum()) == n_real


def test_classification_sums_all_masked():
    logits, labels = _data(4, 3, 6)
    got = _sums(logits, labels, 3, mask=np.zeros(4, np.int32), confusion=True)
    assert int(got["count"]) == 0 and float(got["loss_sum"]) == 0.0
    assert int(got["confusion"].sum()) == 0


def test_classification_sums_bfloat16_logits():
    logits, labels = _data(8, 5, 7)
    z16 = jnp.asarray(logits, jnp.bfloat16)
    got = _sums(z16, jnp.asarray(labels), 5)
    assert got["loss_sum"].dtype == jnp.float32
    _check(got, _ref(np.asarray(z16.astype(jnp.float32)), labels, 5), confusion=False)


def test_summarize_means_and_per_class_accuracy():
    confusion = np.array([[3, 1, 0],   # class 0: 3 of 4 right
                          [0, 0, 2],   # class 1: 0 of 2
                          [0, 0, 0]])  # class 2: no examples -> 0, not a division by zero
    sums = {"loss_sum": np.float32(4.5), "correct": np.int32(3),
            "correct_top5": np.int32(6), "count": np.int32(6), "confusion": confusion}
    out = summarize(sums)
    assert out["loss"] == pytest.approx(0.75)
    assert out["accuracy"] == 0.5 and out["top5_accuracy"] == 1.0 and out["count"] == 6
    assert out["per_class_accuracy"] == [0.75, 0.0, 0.0]
    assert out["confusion_matrix"] == confusion.tolist()
    assert isinstance(out["loss"], float) and isinstance(out["count"], int)


def test_summarize_of_classification_sums_matches_numpy():
    logits, labels = _data(40, 4, 8)
    out = summarize(jax.device_get(_sums(logits, labels, 4, confusion=True)))
    pred = logits.argmax(-1)
    expected = [float((pred[labels == c] == c).mean()) for c in range(4)]
    np.testing.assert_allclose(out["per_class_accuracy"], expected, atol=1e-6)
    assert out["accuracy"] == pytest.approx(float((pred == labels).mean()))


def test_summarize_count_zero_raises():
    with pytest.raises(ValueError, match="count is 0"):
        summarize({"loss_sum": np.float32(0), "correct": 0, "correct_top5": 0, "count": 0})


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(5)(nn.relu(x).reshape(x.shape[0], -1))


def test_eval_step_sums_over_half_batches_equal_full_batch():
    rng = np.random.default_rng(9)
    images = rng.normal(size=(10, 4, 4, 1)).astype(np.float32)
    labels = rng.integers(0, 5, 10).astype(np.int32)
    mask = (np.arange(10) < 8).astype(np.int32)  # the last 2 are padding
    state = create_train_state(_Net(), optax.sgd(0.1), jax.random.PRNGKey(0), images[:1])
    step = jax.jit(make_eval_step(num_classes=5))
    full = step(state, {"image": images, "label": labels, "mask": mask})
    halves = [step(state, {"image": images[s], "label": labels[s], "mask": mask[s]})
              for s in (slice(0, 5), slice(5, 10))]
    summed = jax.tree_util.tree_map(lambda a, b: a + b, *halves)
    assert set(full) == {"loss_sum", "correct", "correct_top5", "count", "confusion"}
    assert int(full["count"]) == 8
    for key in ("correct", "correct_top5", "count", "confusion"):
        np.testing.assert_array_equal(summed[key], full[key], err_msg=key)
    np.testing.assert_allclose(summed["loss_sum"], full["loss_sum"], rtol=1e-5)
    # And the sums are those of the model's eval-mode logits.
    logits = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats}, images)
    _check(full, _ref(np.asarray(logits)[:8], labels[:8], 5))
    assert summarize(jax.device_get(summed))["count"] == 8


def test_eval_step_uses_main_head_of_tuple_outputs_and_no_mask():
    class TwoHeads(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            x = x.reshape(x.shape[0], -1)
            return nn.Dense(3, name="main")(x), nn.Dense(3, name="aux")(x)

    rng = np.random.default_rng(10)
    images = rng.normal(size=(6, 2, 2, 1)).astype(np.float32)
    labels = rng.integers(0, 3, 6).astype(np.int32)
    state = create_train_state(TwoHeads(), optax.sgd(0.1), jax.random.PRNGKey(1), images)
    got = make_eval_step(num_classes=3, confusion=False)(state, {"image": images,
                                                                 "label": labels})
    main, _ = state.apply_fn({"params": state.params}, images)
    _check(got, _ref(np.asarray(main), labels, 3), confusion=False)
