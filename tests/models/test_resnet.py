"""ResNets: published parameter counts, layer names, BatchNorm modes, gradients, training.

Full-size networks are only traced (``jax.eval_shape``); real forward and backward passes use
``num_filters=8`` and small inputs, with parameters drawn in numpy (LeCun-normal scale, as
the default initializer) so no initializer has to be compiled.
"""

import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn
from jaxcnn import layers as L
from jaxcnn.blocks import BasicBlock, PreActBlock
from jaxcnn.models import create, list_models
from jaxcnn.models.resnet import ResNet, wide_resnet
from tests.models import _numpy_reference as ref
from tests.models._zoo1_helpers import numpy_variables, quick_jit

# torchvision's counts for v1; v2 = v1 minus the norm difference derived in the module
# docstring (basic blocks: 3 * (128 + 256 + 512) + 128 - 1,024 = 1,792; bottlenecks:
# 2 * (448 + 768 + 1,536 + 3,072) + 128 - 4,096 = 7,680).
COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnet18_v2": 11_689_512 - (3 * (128 + 256 + 512) + 128 - 1_024),
    "resnet34_v2": 21_797_672 - (3 * (128 + 256 + 512) + 128 - 1_024),
    "resnet50_v2": 25_557_032 - (2 * (448 + 768 + 1_536 + 3_072) + 128 - 4_096),
    "resnet101_v2": 44_549_160 - (2 * (448 + 768 + 1_536 + 3_072) + 128 - 4_096),
    "resnet152_v2": 60_192_808 - (2 * (448 + 768 + 1_536 + 3_072) + 128 - 4_096),
}


@functools.cache
def traced(name, shape=(1, 224, 224, 3), **options):
    """``(logits, variables)`` as ShapeDtypeStructs: no memory, no compilation."""
    model = create(name, **options)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.eval_shape(model.init_with_output, jax.random.key(0), x)


def intermediates(model, shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    _, state = jax.eval_shape(partial(model.apply, capture_intermediates=True,
                                      mutable=["intermediates"]), variables, x)
    return {k: v["__call__"][0] for k, v in state["intermediates"].items() if k != "__call__"}


def fill(tree, seed):
    """Concrete variables for abstract ones: kernels ~ N(0, 1 / fan_in), norms at identity."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name == "kernel":
            std = 1 / np.sqrt(np.prod(leaf.shape[:-1]))
            return jnp.asarray(std * rng.standard_normal(leaf.shape), leaf.dtype)
        return (jnp.ones if name in ("scale", "var") else jnp.zeros)(leaf.shape, leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, tree)


def batch(shape, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.standard_normal(shape), jnp.float32),
            jnp.asarray(rng.integers(0, num_classes, shape[0])))


def sgd_run(model, x, labels, lr, dropout=False):
    """Loss, gradients, and loss after one SGD step on the same batch (one compilation)."""
    variables = fill(jax.eval_shape(model.init, jax.random.key(0), x), seed=1)

    @jax.jit
    def loss_and_grad(params, batch_stats, key):
        def loss_fn(params):
            rngs = {"dropout": key} if dropout else None
            logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, x,
                                          train=True, mutable=["batch_stats"], rngs=rngs)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, (logits, updates)
        return jax.value_and_grad(loss_fn, has_aux=True)(params)

    key = jax.random.key(2)
    (loss, (logits, updates)), grads = loss_and_grad(variables["params"],
                                                      variables["batch_stats"], key)
    new_params = jax.tree.map(lambda p, g: p - lr * g, variables["params"], grads)
    (new_loss, _), _ = loss_and_grad(new_params, updates["batch_stats"], key)
    return dict(variables=variables, loss=loss, logits=logits, updates=updates, grads=grads,
                new_loss=new_loss, fn=loss_and_grad, key=key)


# ------------------------------------------------------------------- counts and shapes


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_count_and_native_shape(name):
    logits, variables = traced(name)
    assert logits.shape == (1, 1000)
    assert jaxcnn.count_params(variables["params"]) == COUNTS[name]
    assert "batch_stats" in variables                       # state, not parameters


def test_wide_resnet28_10_count():
    # hand derivation in wide_resnet28_10's docstring; 36,479,194 in the authors' code
    logits, variables = traced("wide_resnet28_10", (1, 32, 32, 3), num_classes=10)
    assert logits.shape == (1, 10)
    assert jaxcnn.count_params(variables["params"]) == 36_479_194


@pytest.mark.parametrize(("depth", "k", "millions"), [
    (16, 4, 2.7), (16, 8, 11.0), (22, 8, 17.2), (40, 4, 8.9),   # Zagoruyko & Komodakis, Table
])
def test_wide_resnet_counts_match_paper_table(depth, k, millions):
    model = wide_resnet(depth=depth, widen_factor=k)
    variables = jax.eval_shape(model.init, jax.random.key(0),
                               jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
    assert round(jaxcnn.count_params(variables["params"]) / 1e6, 1) == millions


@pytest.mark.parametrize(("v1", "v2", "norms_v1", "norms_v2"), [
    # resnet18 v1: 2 * (64 + 2*2*64 + (2*2*128 + 128) + (2*2*256 + 256) + (2*2*512 + 512));
    # v2: 2 * (2*2*64 + (64 + 3*128) + (128 + 3*256) + (256 + 3*512) + 512)
    ("resnet18", "resnet18_v2", 2 * (64 + 256 + 640 + 1_280 + 2_560),
     2 * (256 + 448 + 896 + 1_792 + 512)),
    # resnet50 v1: 53,120, Keras ResNet50's non-trainable count (BN moving stats, one per
    # BN parameter); v2: 2 * (960 + 2,816 + 8,704 + 8,192 + 2,048)
    ("resnet50", "resnet50_v2", 53_120, 2 * (960 + 2_816 + 8_704 + 8_192 + 2_048)),
])
def test_v2_differs_from_v1_only_in_norms(v1, v2, norms_v1, norms_v2):
    def split(name):
        params = traced(name)[1]["params"]
        leaves = jax.tree_util.tree_leaves_with_path(params)
        is_norm = lambda path: any("bn" in str(p.key) for p in path)
        norm = sum(int(np.prod(v.shape)) for p, v in leaves if is_norm(p))
        other = sorted((jax.tree_util.keystr(p), v.shape) for p, v in leaves if not is_norm(p))
        return norm, other

    (n1, rest1), (n2, rest2) = split(v1), split(v2)
    assert (n1, n2) == (norms_v1, norms_v2)
    assert rest1 == rest2                    # same convolutions (no biases) and head


def test_layer_names_and_shapes():
    v1 = intermediates(ResNet(stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock), (1, 224, 224, 3))
    assert set(v1) == {"stem_conv", "stem_bn", "stem_pool",
                       *(f"stage{i}_block{j}" for i in range(1, 5) for j in (1, 2)),
                       "global_pool", "head"}
    assert v1["stem_conv"].shape == (1, 112, 112, 64)
    assert v1["stem_pool"].shape == (1, 56, 56, 64)
    assert [v1[f"stage{i}_block2"].shape[1:] for i in range(1, 5)] == \
        [(56, 56, 64), (28, 28, 128), (14, 14, 256), (7, 7, 512)]
    assert (v1["global_pool"].shape, v1["head"].shape) == ((1, 512), (1, 1000))

    v2 = intermediates(ResNet(stage_sizes=(1, 1), block_cls=PreActBlock, num_filters=8,
                              cifar_stem=True), (2, 32, 32, 3))
    assert set(v2) == {"stem_conv", "stage1_block1", "stage2_block1", "post_bn",
                       "global_pool", "head"}
    assert v2["stem_conv"].shape == (2, 32, 32, 8)
    assert v2["post_bn"].shape == (2, 16, 16, 16)


@pytest.mark.parametrize(("stride_on", "conv1_hw"), [("3x3", 56), ("1x1", 28), (None, 56)])
def test_stride_placement_v1_vs_v15(stride_on, conv1_hw):
    model = create("resnet50", **({} if stride_on is None else {"stride_on": stride_on}))
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    _, state = jax.eval_shape(partial(model.apply, capture_intermediates=True,
                                      mutable=["intermediates"]), variables, x)
    block = state["intermediates"]["stage2_block1"]
    assert block["conv1"]["__call__"][0].shape == (1, conv1_hw, conv1_hw, 128)
    assert block["conv2"]["__call__"][0].shape == (1, 28, 28, 128)
    assert block["__call__"][0].shape == (1, 28, 28, 512)


def test_small_inputs_and_options_trace():
    # every depth at a small input; the global pool makes the count input-independent
    for name in COUNTS:
        logits, variables = traced(name, (2, 32, 32, 3), num_classes=10, num_filters=8)
        assert logits.shape == (2, 10)
    # GroupNorm in place of BatchNorm: same parameter count, no running statistics
    _, variables = traced("resnet18", (1, 64, 64, 3), norm=partial(L.GroupNorm, num_groups=8))
    assert "batch_stats" not in variables
    assert jaxcnn.count_params(variables["params"]) == COUNTS["resnet18"]
    # bfloat16 compute, float32 parameters
    logits, variables = traced("resnet50_v2", (2, 32, 32, 3), dtype=jnp.bfloat16,
                               cifar_stem=True)
    assert logits.dtype == jnp.bfloat16
    assert {p.dtype for p in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}


def test_registry():
    names = list_models()
    assert set(COUNTS) | {"wide_resnet28_10"} <= set(names)
    logits, variables = traced("resnet50", (2, 32, 32, 3), num_classes=7)
    assert logits.shape == (2, 7)
    assert variables["params"]["head"]["kernel"].shape == (2048, 7)
    with pytest.raises(ValueError, match="resnet50"):
        create("resnet05")


# ------------------------------------------------------- values against a numpy reference

# name -> (stage sizes, bottleneck), from He et al. 2016, Table 1
V2_STAGES = {
    "resnet18_v2": ((2, 2, 2, 2), False), "resnet34_v2": ((3, 4, 6, 3), False),
    "resnet50_v2": ((3, 4, 6, 3), True), "resnet101_v2": ((3, 4, 23, 3), True),
    "resnet152_v2": ((3, 8, 36, 3), True),
}


@pytest.mark.parametrize(("name", "stage_sizes"), [
    pytest.param("resnet18_v2", None, id="resnet18_v2"),
    # bottlenecks: identity and projection blocks, every stride; full depth in the slow set
    pytest.param("resnet50_v2", (2, 1, 1, 1), id="resnet50_v2-stages2111"),
    *(pytest.param(name, None, marks=pytest.mark.slow, id=name) for name in V2_STAGES
      if name != "resnet18_v2"),
])
def test_v2_matches_numpy_reference(name, stage_sizes):
    # 32x32: every stride-2 convolution (stem, pool, stages 2-4) reads an even size, where
    # torchvision's padding=1 and "SAME" differ. Random biases and running statistics.
    options = {} if stage_sizes is None else {"stage_sizes": stage_sizes}
    model = create(name, num_classes=7, num_filters=4, **options)
    x, _ = batch((2, 32, 32, 3), 7, seed=11)
    variables = numpy_variables(model, x, seed=12)
    got = quick_jit(model.apply)(variables, x)
    default_stages, bottleneck = V2_STAGES[name]
    expected = ref.resnet(variables, x, stage_sizes=stage_sizes or default_stages,
                          preact=True, bottleneck=bottleneck, cifar_stem=False)
    ref.assert_close(got, expected)


def test_wide_resnet_matches_numpy_reference_and_the_check_has_teeth():
    # WRN-16-2: projections for the width (stage 1) and the stride (2, 3), identity blocks,
    # dropout (off in eval), a 16-channel stem; 8x8 input, so strided convs read even sizes.
    model = wide_resnet(depth=16, widen_factor=2, num_classes=7, dropout_rate=0.3)
    x, _ = batch((2, 8, 8, 3), 7, seed=13)
    variables = numpy_variables(model, x, seed=14)
    assert variables["params"]["stem_conv"]["kernel"].shape == (3, 3, 3, 16)
    got = quick_jit(model.apply)(variables, x)
    options = dict(stage_sizes=(2, 2, 2), preact=True, bottleneck=False, cifar_stem=True)
    ref.assert_close(got, ref.resnet(variables, x, **options))
    # the comparison would catch epsilon added to the std, and "SAME" padding of the
    # stride-2 3x3 convolutions ((0, 1) on even inputs: torchvision pads (1, 1))
    assert ref.differs(got, ref.resnet(variables, x, norm=ref.batch_norm_eps_outside,
                                       **options))
    assert ref.differs(got, ref.resnet(variables, x, strided_pad=(0, 1), **options))


# ----------------------------------------------------------------- real computations


@pytest.fixture(scope="module")
def resnet50_run():
    x, labels = batch((4, 64, 64, 3), 10)
    return sgd_run(create("resnet50", num_classes=10, num_filters=8), x, labels, lr=0.05)


def test_gradients_reach_the_first_layer_of_resnet50(resnet50_run):
    grads = resnet50_run["grads"]
    first = np.linalg.norm(np.asarray(grads["stem_conv"]["kernel"]))
    last = np.linalg.norm(np.asarray(grads["head"]["kernel"]))
    assert np.isfinite(first) and np.isfinite(last) and last > 0
    assert first / last > 1e-3
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_sgd_step_reduces_loss_resnet50(resnet50_run):
    assert resnet50_run["logits"].shape == (4, 10)
    assert float(resnet50_run["new_loss"]) < float(resnet50_run["loss"])


@pytest.mark.parametrize(("model", "dropout"), [
    (create("resnet18_v2", num_classes=10, num_filters=8, cifar_stem=True), False),
    (wide_resnet(depth=10, widen_factor=1, dropout_rate=0.3), True),
], ids=["resnet18_v2", "wrn10_1_dropout"])
def test_sgd_step_reduces_loss(model, dropout):
    x, labels = batch((8, 16, 16, 3), 10, seed=3)
    run = sgd_run(model, x, labels, lr=0.05, dropout=dropout)
    assert np.isfinite(float(run["loss"]))
    assert float(run["new_loss"]) < float(run["loss"])
    if dropout:   # another dropout key, another output; the same key, the same output
        (_, (other, _)), _ = run["fn"](run["variables"]["params"],
                                       run["variables"]["batch_stats"], jax.random.key(9))
        assert not np.allclose(other, run["logits"])
        (_, (same, _)), _ = run["fn"](run["variables"]["params"],
                                      run["variables"]["batch_stats"], run["key"])
        np.testing.assert_array_equal(same, run["logits"])


def test_batchnorm_train_vs_eval():
    model = create("resnet18", num_classes=10, num_filters=8, cifar_stem=True)
    x, _ = batch((4, 16, 16, 3), 10, seed=4)
    x = 3.0 + 2.0 * x                                    # away from the initial statistics
    variables = fill(jax.eval_shape(model.init, jax.random.key(0), x), seed=5)
    apply = jax.jit(model.apply, static_argnames=("train", "mutable"))
    y_eval, state = apply(variables, x, train=False, mutable=("batch_stats",))
    assert jax.tree.all(jax.tree.map(jnp.array_equal, state["batch_stats"],
                                     variables["batch_stats"]))
    y_train, state = apply(variables, x, train=True, mutable=("batch_stats",))
    assert not np.allclose(y_eval, y_train)
    stem = state["batch_stats"]["stem_bn"]
    assert not np.allclose(stem["mean"], 0) and not np.allclose(stem["var"], 1)
    # eval mode: each example independent of the rest of the batch
    y_eval2, _ = apply(variables, x[::-1], train=False, mutable=("batch_stats",))
    np.testing.assert_allclose(y_eval2[::-1], y_eval, atol=1e-5, rtol=1e-5)
    # train mode: batch statistics couple the examples
    y_train2, _ = apply(variables, x[::-1] * jnp.array([1, 1, 1, 2.0])[:, None, None, None],
                        train=True, mutable=("batch_stats",))
    assert not np.allclose(y_train2[::-1][1:], y_train[1:], atol=1e-4)


def test_zero_init_residual_and_eager_init():
    model = ResNet(stage_sizes=(2,), block_cls=BasicBlock, num_classes=3, num_filters=4,
                   cifar_stem=True, zero_init_residual=True)
    x, _ = batch((2, 8, 8, 3), 3, seed=6)
    variables = model.init(jax.random.key(0), x)
    for block in ("stage1_block1", "stage1_block2"):
        np.testing.assert_array_equal(variables["params"][block]["bn2"]["scale"], 0)
        np.testing.assert_array_equal(variables["params"][block]["bn1"]["scale"], 1)
    # running statistics untouched by init, even with train=True
    stats = model.init(jax.random.key(0), x, train=True)["batch_stats"]
    np.testing.assert_array_equal(stats["stem_bn"]["mean"], 0)
    assert model.apply(variables, x).shape == (2, 3)


def test_bad_inputs():
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    trace = lambda model, x=x: jax.eval_shape(model.init, jax.random.key(0), x)
    with pytest.raises(ValueError, match="stage_sizes"):
        trace(ResNet(stage_sizes=(), block_cls=BasicBlock))
    with pytest.raises(ValueError, match="stage_sizes"):
        trace(ResNet(stage_sizes=(2, 0), block_cls=BasicBlock))
    with pytest.raises(ValueError, match="num_filters"):
        trace(ResNet(stage_sizes=(1,), block_cls=BasicBlock, num_filters=0))
    with pytest.raises(ValueError, match=r"`x` must have rank .*\(32, 3\)"):
        trace(create("resnet18"), jax.ShapeDtypeStruct((32, 3), jnp.float32))
    with pytest.raises(TypeError, match="x"):
        trace(create("resnet18"), jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.uint8))
    with pytest.raises(ValueError, match="stride_on"):
        create("resnet18", stride_on="1x1")
    with pytest.raises(ValueError, match="stride_on"):
        trace(create("resnet50", stride_on="2x2"))
    with pytest.raises(ValueError, match="dropout_rate"):
        create("resnet50", dropout_rate=0.2)
    with pytest.raises(ValueError, match="depth"):
        wide_resnet(depth=27)
    with pytest.raises(ValueError, match="widen_factor"):
        wide_resnet(depth=16, widen_factor=0)
