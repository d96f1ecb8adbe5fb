"""Losses against numpy references; a GoogLeNet-style train step with two auxiliary heads."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn.training import (
    auxiliary_loss,
    create_train_state,
    cross_entropy,
    l2_penalty,
    make_train_step,
)


def _ce_ref(logits, labels, eps=0.0):
    """Mean of ``-sum_k q_k log softmax(z)_k`` with ``q = (1 - eps) onehot + eps / K``."""
    z = np.asarray(logits, np.float64)
    num_classes = z.shape[-1]
    z = z - z.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    q = (1 - eps) * np.eye(num_classes)[labels] + eps / num_classes
    return float(-(q * log_p).sum(-1).mean())


def _data(n=6, k=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, k)).astype(np.float32) * 3,
            rng.integers(0, k, n).astype(np.int32))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("shape", [(6, 5), (1, 2), (4, 10)])
def test_cross_entropy_matches_numpy(eps, shape):
    logits, labels = _data(*shape, seed=shape[1])
    got = cross_entropy(jnp.asarray(logits), jnp.asarray(labels), label_smoothing=eps)
    assert got.dtype == jnp.float32 and got.shape == ()
    np.testing.assert_allclose(float(got), _ce_ref(logits, labels, eps), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_soft_labels_match_numpy_and_jit(eps):
    """Soft labels ``q`` (mixup's) replace ``onehot(y)``; under jit they are not checked."""
    logits, _ = _data(6, 5, seed=3)
    q = np.random.default_rng(4).dirichlet(np.ones(5), 6).astype(np.float32)
    z = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    expected = float(-(((1 - eps) * q + eps / 5) * log_p).sum(-1).mean())
    got = cross_entropy(jnp.asarray(logits), jnp.asarray(q), label_smoothing=eps)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    jitted = jax.jit(lambda z, q: cross_entropy(z, q, label_smoothing=eps))(logits, q)
    np.testing.assert_allclose(float(jitted), expected, rtol=1e-5)


def test_cross_entropy_float_one_hot_equals_integer_labels():
    logits, labels = _data()
    soft = np.eye(5, dtype=np.float32)[labels]
    np.testing.assert_allclose(float(cross_entropy(logits, soft, label_smoothing=0.1)),
                               float(cross_entropy(logits, labels, label_smoothing=0.1)),
                               rtol=1e-6)


def test_cross_entropy_jit_and_grad():
    logits, labels = _data()
    f = jax.jit(lambda z: cross_entropy(z, labels, label_smoothing=0.1))
    np.testing.assert_allclose(float(f(logits)), _ce_ref(logits, labels, 0.1), rtol=1e-5)
    # d CE / dz = (softmax(z) - q) / N.
    q = 0.9 * np.eye(5)[labels] + 0.1 / 5
    expected = (np.asarray(jax.nn.softmax(logits)) - q) / len(labels)
    np.testing.assert_allclose(jax.grad(f)(logits), expected, atol=1e-6)


def test_cross_entropy_bfloat16_logits_computed_in_float32():
    logits, labels = _data(8, 7)
    z16 = jnp.asarray(logits, jnp.bfloat16)
    got = cross_entropy(z16, jnp.asarray(labels), label_smoothing=0.1)
    assert got.dtype == jnp.float32
    # Exactly the float32 loss of the (rounded) bfloat16 values: no bfloat16 arithmetic.
    ref = _ce_ref(np.asarray(z16.astype(jnp.float32)), labels, 0.1)
    np.testing.assert_allclose(float(got), ref, rtol=1e-6)
    jaxpr = str(jax.make_jaxpr(lambda z: cross_entropy(z, labels))(z16))
    assert "convert_element_type" in jaxpr and "new_dtype=float32" in jaxpr


@pytest.mark.parametrize("logits_shape, labels_shape, match", [
    ((6,), (6,), "logits"),
    ((2, 3, 4), (2,), "logits"),
    ((6, 5), (5,), "labels"),
    ((6, 5), (6, 1), "labels"),
])
def test_cross_entropy_shape_errors_name_the_argument(logits_shape, labels_shape, match):
    with pytest.raises(ValueError, match=match) as err:
        cross_entropy(jnp.ones(logits_shape), jnp.zeros(labels_shape, jnp.int32))
    assert str(logits_shape if match == "logits" else labels_shape) in str(err.value)


@pytest.mark.parametrize("eps", [-0.1, 1.0])
def test_cross_entropy_bad_label_smoothing(eps):
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy(jnp.ones((2, 3)), jnp.zeros(2, jnp.int32), label_smoothing=eps)


def test_l2_penalty_only_decays_kernels():
    rng = np.random.default_rng(1)
    params = {
        "conv": {"kernel": rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
                 "bias": rng.normal(size=(4,)).astype(np.float32)},
        "bn": {"scale": rng.normal(size=(4,)).astype(np.float32),
               "bias": rng.normal(size=(4,)).astype(np.float32)},
        "dense": {"kernel": rng.normal(size=(4, 3)).astype(np.float32)},
    }
    expected = 0.5 * 1e-3 * sum(float((params[m]["kernel"].astype(np.float64) ** 2).sum())
                                for m in ("conv", "dense"))
    got = l2_penalty(jax.tree_util.tree_map(jnp.asarray, params), 1e-3)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # Gradient: wd * W on kernels, exactly 0 on biases and scales.
    grads = jax.grad(lambda p: l2_penalty(p, 1e-3))(params)
    np.testing.assert_allclose(grads["conv"]["kernel"], 1e-3 * params["conv"]["kernel"],
                               rtol=1e-6)
    for leaf in (grads["conv"]["bias"], grads["bn"]["scale"], grads["bn"]["bias"]):
        np.testing.assert_array_equal(leaf, 0.0)


def test_l2_penalty_bfloat16_kernels_summed_in_float32():
    w = jnp.full((64, 64), 1.0, jnp.bfloat16)  # 4096 ones: a bfloat16 sum would round
    got = l2_penalty({"kernel": w}, 2.0)
    assert got.dtype == jnp.float32 and float(got) == 4096.0


def test_auxiliary_loss_weights():
    main, labels = _data(seed=2)
    aux1, _ = _data(seed=3)
    aux2, _ = _data(seed=4)
    total, logits = auxiliary_loss((main, aux1, aux2), labels, label_smoothing=0.1)
    expected = (1.0 * _ce_ref(main, labels, 0.1) + 0.3 * _ce_ref(aux1, labels, 0.1)
                + 0.3 * _ce_ref(aux2, labels, 0.1))
    np.testing.assert_allclose(float(total), expected, rtol=1e-5)
    assert logits is main
    # A single array is a model without auxiliary heads.
    single, logits = auxiliary_loss(jnp.asarray(main), labels)
    np.testing.assert_allclose(float(single), _ce_ref(main, labels), rtol=1e-5)
    # Custom weights; a list works as well as a tuple.
    total, _ = auxiliary_loss([main, aux1], labels, weights=(0.5, 2.0))
    expected = 0.5 * _ce_ref(main, labels) + 2.0 * _ce_ref(aux1, labels)
    np.testing.assert_allclose(float(total), expected, rtol=1e-5)


@pytest.mark.parametrize("n_outputs", [2, 4])
def test_auxiliary_loss_length_mismatch(n_outputs):
    main, labels = _data()
    with pytest.raises(ValueError, match=rf"{n_outputs} outputs.*`weights` has 3"):
        auxiliary_loss((main,) * n_outputs, labels)


class _AuxNet(nn.Module):
    """GoogLeNet-like: a main head and two auxiliary heads in training, one head at eval.

    Like :class:`jaxcnn.models.googlenet.GoogLeNet`, the auxiliary heads also run at init
    (``create_train_state`` initialises with ``train=False``) so that their parameters exist.
    """

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape(x.shape[0], -1)
        h = nn.relu(nn.Dense(8, name="trunk")(x))
        main = nn.Dense(4, name="main")(h)
        if not (train or self.is_initializing()):
            return main
        return main, nn.Dense(4, name="aux1")(h), nn.Dense(4, name="aux2")(x)


def test_googlenet_style_train_step_loss():
    rng = np.random.default_rng(5)
    images = rng.normal(size=(6, 3, 3, 2)).astype(np.float32)
    labels = rng.integers(0, 4, 6).astype(np.int32)
    model = _AuxNet()
    state = create_train_state(model, optax.sgd(0.1), jax.random.PRNGKey(0),
                               jnp.asarray(images))
    assert set(state.params) == {"trunk", "main", "aux1", "aux2"}
    assert model.apply({"params": state.params}, images).shape == (6, 4)  # eval: one array

    main, aux1, aux2 = model.apply({"params": state.params}, images, train=True)
    expected = (1.0 * _ce_ref(main, labels, 0.1) + 0.3 * _ce_ref(aux1, labels, 0.1)
                + 0.3 * _ce_ref(aux2, labels, 0.1))
    expected_acc = float(np.mean(np.argmax(main, -1) == labels))

    step = jax.jit(make_train_step(label_smoothing=0.1))
    new_state, metrics = step(state, {"image": images, "label": labels})
    np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-5)
    assert float(metrics["accuracy"]) == expected_acc
    assert int(new_state.step) == 1
    # The auxiliary heads are trained too (they received gradients).
    for name in ("main", "aux1", "aux2"):
        assert not np.array_equal(new_state.params[name]["kernel"],
                                  state.params[name]["kernel"])


def test_train_step_normalises_uint8_images_on_the_device():
    from jaxcnn.data import normalize

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            return nn.Dense(3)(x.reshape(x.shape[0], -1))

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 3, 3, 2), dtype=np.uint8)
    labels = jnp.array([0, 1, 2, 0])
    stats = ((0.4, 0.6), (0.2, 0.3))
    state = create_train_state(Net(), optax.sgd(0.1), jax.random.PRNGKey(0),
                               jnp.ones((1, 3, 3, 2)))
    on_device, m1 = jax.jit(make_train_step(input_normalization=stats))(
        state, {"image": images, "label": labels})
    on_host, m2 = jax.jit(make_train_step())(
        state, {"image": normalize(images, *stats), "label": labels})
    np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(on_device.params), jax.tree.leaves(on_host.params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # float images are taken as already normalised
    same, _ = jax.jit(make_train_step(input_normalization=stats))(
        state, {"image": normalize(images, *stats), "label": labels})
    np.testing.assert_allclose(jax.tree.leaves(same.params)[0],
                               jax.tree.leaves(on_host.params)[0], rtol=1e-6)
    with pytest.raises(ValueError, match="std"):
        make_train_step(input_normalization=((0.5,), (0.0,)))
