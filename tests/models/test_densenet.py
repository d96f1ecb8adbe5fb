"""DenseNet: torchvision / hand-derived parameter counts, shapes, BN modes, one SGD step."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn
from jaxcnn import layers as L
from jaxcnn.models import create, list_models
from jaxcnn.models.densenet import DenseNet, densenet_bc_cifar
from tests.models import _numpy_reference as ref
from tests.models._zoo1_helpers import numpy_variables, quick_jit

NATIVE = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
CIFAR = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
KEY = jax.random.key(0)


def numpy_init(module, x, seed=0):
    """Parameters drawn in numpy: a real ``init`` mostly compiles random initializers on CPU."""
    return numpy_variables(module, x, seed)


def small_model(**kwargs):
    return DenseNet(block_config=(2, 2), growth_rate=4, num_init_features=8, num_classes=5,
                    cifar_stem=True, **kwargs)


def small_batch(n=4, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, size, size, 3)).astype(np.float32), rng.integers(0, 5, n)


def hand_count_bc(depth, k, num_classes):
    """DenseNet-BC parameter count from the paper's description (Sec. 3-4), no conv biases."""
    n = (depth - 4) // 6
    channels = 2 * k
    total = 3 * 3 * 3 * channels                                     # stem conv
    for block in range(3):
        for _ in range(n):                                           # BN, 1x1 to 4k, BN, 3x3 to k
            total += 2 * channels + channels * 4 * k + 2 * 4 * k + 9 * 4 * k * k
            channels += k
        if block < 2:                                                # BN, 1x1 to floor(c / 2)
            total += 2 * channels + channels * (channels // 2)
            channels //= 2
    return total + 2 * channels + channels * num_classes + num_classes


# ------------------------------------------------------------------ counts and shapes


@pytest.mark.parametrize(("name", "count"), [
    ("densenet121", 7_978_856),
    ("densenet161", 28_681_000),
    ("densenet169", 14_149_480),
    ("densenet201", 20_013_928),
])
def test_torchvision_parameter_counts_and_native_output(name, count):
    logits, variables = jax.eval_shape(create(name).init_with_output, KEY, NATIVE)
    assert logits.shape == (1, 1000)
    assert jaxcnn.count_params(variables["params"]) == count


def test_densenet_bc_100_12_hand_count():
    assert hand_count_bc(100, 12, 10) == 769_162                    # docstring arithmetic
    logits, variables = jax.eval_shape(densenet_bc_cifar().init_with_output, KEY, CIFAR)
    assert logits.shape == (1, 10)
    assert jaxcnn.count_params(variables["params"]) == 769_162


@pytest.mark.parametrize(("depth", "k", "paper_millions"), [(250, 24, 15.3), (190, 40, 25.6)])
def test_densenet_bc_large_counts_match_paper_table(depth, k, paper_millions):
    variables = jax.eval_shape(densenet_bc_cifar(depth, k).init, KEY, CIFAR)
    count = jaxcnn.count_params(variables["params"])
    assert count == hand_count_bc(depth, k, 10)
    assert round(count / 1e6, 1) == paper_millions                  # Table 2 of the paper


def test_native_feature_maps():
    model = create("densenet121")
    _, variables = jax.eval_shape(partial(model.init_with_output, capture_intermediates=True),
                                  KEY, NATIVE)
    shapes = {k: v["__call__"][0].shape[1:] for k, v in variables["intermediates"].items()
              if "__call__" in v}
    assert shapes["conv0"] == (112, 112, 64)
    assert shapes["pool0"] == (56, 56, 64)
    assert shapes["denseblock1"] == (56, 56, 64 + 6 * 32)
    assert shapes["transition1"] == (28, 28, 128)
    assert shapes["denseblock2"] == (28, 28, 128 + 12 * 32)
    assert shapes["transition3"] == (7, 7, 512)
    assert shapes["denseblock4"] == (7, 7, 1024)
    assert shapes["global_pool"] == (1024,)
    cifar = densenet_bc_cifar()
    _, variables = jax.eval_shape(partial(cifar.init_with_output, capture_intermediates=True),
                                  KEY, CIFAR)
    inter = variables["intermediates"]
    assert inter["denseblock1"]["__call__"][0].shape == (1, 32, 32, 216)
    assert inter["denseblock3"]["__call__"][0].shape == (1, 8, 8, 342)
    assert "pool0" not in inter and "norm0" not in variables["params"]


def test_registered_names_and_options():
    assert {"densenet121", "densenet161", "densenet169", "densenet201",
            "densenet_bc_cifar"} <= set(list_models())
    model = create("densenet121", num_classes=10, growth_rate=8, block_config=(1, 1))
    assert (model.num_classes, model.growth_rate, model.block_config) == (10, 8, (1, 1))
    model = create("densenet_bc_cifar", num_classes=100, depth=40, growth_rate=12)
    assert model.block_config == (6, 6, 6) and model.num_init_features == 24


# ------------------------------------------------------------------ small real networks


def test_batchnorm_train_vs_eval_and_stat_updates():
    model = small_model()
    x, _ = small_batch()
    x = 1.5 + x
    variables = numpy_init(model, x)
    y_eval = jax.jit(model.apply)(variables, x)
    y_train, state = jax.jit(partial(model.apply, train=True, capture_intermediates=True,
                                     mutable=["batch_stats", "intermediates"]))(variables, x)
    assert y_eval.shape == y_train.shape == (4, 5)
    assert not np.allclose(y_eval, y_train)
    # running mean <- 0.9 * old + 0.1 * batch mean of what the first dense layer reads
    conv0 = state["intermediates"]["conv0"]["__call__"][0]
    old = variables["batch_stats"]["denseblock1"]["denselayer1"]["norm1"]["mean"]
    np.testing.assert_allclose(
        state["batch_stats"]["denseblock1"]["denselayer1"]["norm1"]["mean"],
        0.9 * old + 0.1 * conv0.mean(axis=(0, 1, 2)), atol=1e-5)
    assert not np.allclose(state["batch_stats"]["norm5"]["mean"],
                           variables["batch_stats"]["norm5"]["mean"])
    # eval uses running statistics: independent of the rest of the batch
    np.testing.assert_allclose(jax.jit(model.apply)(variables, x[:1]), y_eval[:1], atol=1e-5)


def test_densenet_bc_matches_numpy_reference():
    # DenseNet-BC-16 (k = 4; dropout, off in eval); 10x10 -> 5 -> 2: the second transition
    # floors an odd size. Random running statistics; the ImageNet stem is checked against
    # torchvision's layout in tests/weights/test_torchvision.py.
    model = densenet_bc_cifar(depth=16, growth_rate=4, num_classes=5, drop_rate=0.2)
    config = dict(block_config=(2, 2, 2), growth_rate=4, cifar_stem=True)
    x, _ = small_batch(n=2, size=10, seed=3)
    variables = numpy_init(model, x, seed=4)
    got = quick_jit(model.apply)(variables, x)
    ref.assert_close(got, ref.densenet(variables, x, **config))
    # the comparison would catch epsilon added to the std
    assert ref.differs(got, ref.densenet(variables, x, norm=ref.batch_norm_eps_outside,
                                         **config))


def test_one_sgd_step_reduces_the_loss_with_dropout():
    model = small_model(drop_rate=0.2)
    x, labels = small_batch(seed=1)
    variables = numpy_init(model, x, seed=1)
    rngs = {"dropout": jax.random.key(1)}

    def loss_fn(params, batch_stats):
        logits, state = model.apply({"params": params, "batch_stats": batch_stats}, x,
                                    train=True, mutable=["batch_stats"], rngs=rngs)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), state

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    (loss0, state), grads = grad_fn(variables["params"], variables["batch_stats"])
    params = jax.tree.map(lambda p, g: p - 0.1 * g, variables["params"], grads)
    (loss1, _), _ = grad_fn(params, state["batch_stats"])
    assert np.isfinite(loss0) and loss1 < loss0
    assert float(jnp.abs(grads["conv0"]["kernel"]).sum()) > 0


def test_imagenet_stem_small_input_forward():
    model = DenseNet(block_config=(1, 1), growth_rate=4, num_init_features=8, num_classes=3)
    x, _ = small_batch(n=2, size=16, seed=2)
    variables = numpy_init(model, x, seed=2)
    assert jax.jit(model.apply)(variables, x).shape == (2, 3)
    assert sorted(variables["params"]) == ["conv0", "denseblock1", "denseblock2", "head",
                                           "norm0", "norm5", "transition1"]


def test_bfloat16_and_groupnorm():
    x = jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32)
    y, variables = jax.eval_shape(small_model(dtype=jnp.bfloat16).init_with_output, KEY, x)
    assert y.dtype == jnp.bfloat16
    assert jax.tree.all(jax.tree.map(lambda p: p.dtype == jnp.float32, variables["params"]))
    gn = small_model(norm=partial(L.GroupNorm, num_groups=4))
    assert "batch_stats" not in jax.eval_shape(gn.init, KEY, x)


def test_bad_inputs():
    trace = lambda model, x: jax.eval_shape(model.init, KEY, x)
    with pytest.raises(ValueError, match="depth"):
        densenet_bc_cifar(depth=99)
    with pytest.raises(ValueError, match="growth_rate"):
        densenet_bc_cifar(growth_rate=0)
    with pytest.raises(ValueError, match="block_config"):
        trace(DenseNet(block_config=()), CIFAR)
    with pytest.raises(ValueError, match="block_config"):
        trace(DenseNet(block_config=(2, 0)), CIFAR)
    with pytest.raises(ValueError, match="compression"):
        trace(small_model(compression=0.0), CIFAR)
    with pytest.raises(ValueError, match=r"`x` must have rank 4 .*\(32, 32, 3\)"):
        trace(small_model(), jnp.ones((32, 32, 3)))
    with pytest.raises(TypeError, match="x"):
        trace(small_model(), jnp.ones((1, 32, 32, 3), jnp.int32))
