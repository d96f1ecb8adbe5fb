"""``jaxcnn.weights.from_torchvision``: parity with torchvision-layout PyTorch models.

torchvision itself cannot be installed beside the pinned torch, so the references are
pure-PyTorch replicas with torchvision's module names (:mod:`tests.weights._torch_models`),
small widths but torchvision's depths (every supported model name), random weights and
calibrated BatchNorm statistics; their ``state_dict`` is saved as ``.safetensors`` or ``.npz``
(DenseNet's with the pre-0.3 ``norm.1`` keys), imported, and the logits compared on random
images to 1e-4 (in float64, to 1e-9 relative, where float32 rounding through a deep network
alone approaches 1e-4). ``benchmarks/torchvision_parity.py`` runs the same check against real
torchvision models at full size. The deepest cases, and those repeating a layout another
case checks, are marked slow.
"""

from __future__ import annotations

import re
from functools import partial

import jax
import numpy as np
import pytest

from jaxcnn import layers as L
from jaxcnn.weights import from_torchvision, read_state_dict, torchvision_model

torch = pytest.importorskip("torch", reason="torch (the bench extra) builds the references")
from safetensors.torch import save_file  # noqa: E402

from tests.models._zoo1_helpers import quick_jit  # noqa: E402
from tests.weights import _torch_models as tm  # noqa: E402

NUM_CLASSES = 10
TOL = 1e-4

# id -> (model name, torch replica, jaxcnn options giving the same widths, input size).
# Reduced widths, torchvision's depths: the layer counts (and so the state_dict keys, e.g.
# ``layer3.35.conv2.weight``, ``features.denseblock3.denselayer48.norm1.weight``) come from
# each side's own table. ResNets run at even sizes (32x32, and 64x64 for ResNet-50), where
# every strided 3x3 convolution pads (1, 1) in torchvision but would pad (0, 1) with "SAME".
VGG = {"width": 8, "fc_features": 32}
CASES = {
    "alexnet_torchvision": ("alexnet_torchvision",
                            partial(tm.alexnet, (16, 24, 32, 24, 16), fc=32),
                            {"features": (16, 24, 32, 24, 16), "fc_features": 32}, 96),
    **{f"vgg{d}{'_bn' if bn else ''}": (f"vgg{d}{'_bn' if bn else ''}",
                                       partial(tm.vgg, d, bn, width=8, fc=32), VGG, 64)
       for d in (11, 13, 16, 19) for bn in (False, True)},
    **{f"resnet{d}-{size}": (f"resnet{d}", partial(tm.ResNet, d, width=8), {"num_filters": 8},
                             size)
       for d, size in ((18, 32), (34, 32), (50, 64), (50, 32), (101, 32), (152, 32))},
    **{f"densenet{d}": (f"densenet{d}",
                        partial(tm.densenet, tm.DENSENET_CONFIGS[d][0],
                                growth_rate=tm.DENSENET_CONFIGS[d][1] // 8,
                                num_init_features=tm.DENSENET_CONFIGS[d][2] // 8),
                        {"growth_rate": tm.DENSENET_CONFIGS[d][1] // 8,
                         "num_init_features": tm.DENSENET_CONFIGS[d][2] // 8}, 32)
       for d in (121, 161, 169, 201)},
    "googlenet": ("googlenet", partial(tm.GoogLeNet, width=1 / 8, transform_input=True),
                  {"width": 1 / 8, "aux_logits": True, "transform_input": True}, 64),
}
# Compiling dominates; these are the deepest or repeat a layout another case runs by default.
SLOW = {"vgg11", "vgg13_bn", "vgg16_bn", "vgg19", "resnet50-32", "resnet152-32",
        "densenet161", "densenet169", "densenet201"}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The references are tiny: torch's thread pool only adds synchronisation, which costs
    # seconds per model on a busy 2-core machine (pytest -n 2 runs two such processes).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _old_densenet_keys(state: dict) -> dict:
    # torchvision's pre-0.3 checkpoints: ``denselayer1.norm.1.weight`` for ``norm1.weight``.
    return {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v
            for k, v in state.items()}


def _save(name: str, model, directory) -> str:
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if name.startswith("densenet"):
        state = _old_densenet_keys(state)
        assert "features.denseblock1.denselayer1.norm.1.weight" in state
    if name in ("vgg16", "resnet18", "googlenet"):
        path = str(directory / f"{name}.npz")
        np.savez(path, **{k: v.numpy() for k, v in state.items()})
    else:
        path = str(directory / f"{name}.safetensors")
        save_file(state, path)
    return path


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c
                                  for c in CASES])
def test_parity_with_torchvision_layout(case, tmp_path):
    name, replica, options, size = CASES[case]
    torch.manual_seed(0)
    model = replica(num_classes=NUM_CLASSES)
    rng = np.random.default_rng(1)
    calibration = torch.as_tensor(rng.standard_normal((8, 3, size, size)), dtype=torch.float32)
    tm.randomize(model, calibration, seed=2)
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.as_tensor(x)).numpy()

    path = _save(name, model, tmp_path)
    variables = from_torchvision(name, path, input_shape=(size, size, 3), **options)
    ours = torchvision_model(name, num_classes=NUM_CLASSES, **options)
    scale = np.abs(expected).max()
    assert 1e-2 < scale < 1e3, f"reference scale {scale} makes the check vacuous"

    with torch.no_grad():
        exact = model.double()(torch.as_tensor(x, dtype=torch.float64)).numpy()
    rounding = np.abs(expected - exact).max()     # torch's own float32 error
    if rounding < TOL / 4:
        got = np.asarray(quick_jit(ours.apply)(variables, x.transpose(0, 2, 3, 1)))
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    else:   # deep networks: float32 rounding alone nears TOL; compare in float64 instead
        with jax.enable_x64(True):
            variables64 = jax.tree.map(lambda a: np.asarray(a, np.float64), variables)
            got = np.asarray(quick_jit(ours.apply)(variables64,
                                                   x.transpose(0, 2, 3, 1).astype(np.float64)))
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, exact, rtol=0, atol=1e-9 * scale)
        expected = exact
    print(f"{case}: scale {scale:.3g}, float32 rounding {rounding:.1e}, max abs diff "
          f"{np.abs(got - expected).max():.2e}")
    if name == "googlenet":   # aux heads run in training only: check their weights directly
        state = read_state_dict(path)
        aux = variables["params"]["aux2"]
        np.testing.assert_array_equal(aux["fc1"]["kernel"], state["aux2.fc1.weight"].T)
        np.testing.assert_array_equal(aux["conv"]["conv"]["kernel"],
                                      state["aux2.conv.conv.weight"].transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(variables["batch_stats"]["aux1"]["conv"]["bn"]["var"],
                                      state["aux1.conv.bn.running_var"])


def test_googlenet_drops_aux_heads_unless_asked(tmp_path):
    model = tm.GoogLeNet(width=1 / 16, num_classes=NUM_CLASSES)
    path = str(tmp_path / "googlenet.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    variables = from_torchvision("googlenet", path, width=1 / 16)
    assert "aux1" not in variables["params"] and "head" in variables["params"]


# ---------------------------------------------------------------- errors


@pytest.fixture
def resnet18_state():
    torch.manual_seed(0)
    return {k: v.numpy() for k, v in tm.ResNet(18, width=8, num_classes=NUM_CLASSES)
            .state_dict().items()}


def _import(state, tmp_path, **options):
    path = tmp_path / "resnet18.npz"
    np.savez(path, **state)
    return from_torchvision("resnet18", path, num_filters=8, **options)


def test_state_dict_round_trip_is_exact(resnet18_state, tmp_path):
    variables = _import(resnet18_state, tmp_path)
    np.testing.assert_array_equal(variables["params"]["stage2_block1"]["downsample_conv"]
                                  ["kernel"][0, 0],
                                  resnet18_state["layer2.0.downsample.0.weight"][:, :, 0, 0].T)
    np.testing.assert_array_equal(variables["batch_stats"]["stem_bn"]["var"],
                                  resnet18_state["bn1.running_var"])
    np.testing.assert_array_equal(variables["params"]["head"]["kernel"],
                                  resnet18_state["fc.weight"].T)


def test_missing_tensor_names_key_path_and_shape(resnet18_state, tmp_path):
    del resnet18_state["layer1.0.bn1.running_var"]
    with pytest.raises(ValueError) as err:
        _import(resnet18_state, tmp_path)
    assert "1 problem(s)" in str(err.value)
    assert ("missing: torchvision 'layer1.0.bn1.running_var' for "
            "batch_stats/stage1_block1/bn1/var (8,)") in str(err.value)


def test_unexpected_tensor_is_an_error(resnet18_state, tmp_path):
    resnet18_state["fc2.weight"] = np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"unexpected: torchvision 'fc2.weight' \(3, 3\) is not "
                                         r"used by the model"):
        _import(resnet18_state, tmp_path)


def test_wrong_shape_names_both_shapes(resnet18_state, tmp_path):
    resnet18_state["conv1.weight"] = np.ones((8, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"wrong shape: torchvision 'conv1.weight' \(8, 3, 5, 5\) "
                                         r"-> \(5, 5, 3, 8\) for params/stem_conv/kernel "
                                         r"\(7, 7, 3, 8\)"):
        _import(resnet18_state, tmp_path)


def test_integer_weight_is_an_error(resnet18_state, tmp_path):
    resnet18_state["fc.bias"] = np.arange(NUM_CLASSES)
    with pytest.raises(ValueError, match=r"wrong dtype: torchvision 'fc.bias' is int64"):
        _import(resnet18_state, tmp_path)


def test_object_array_in_npz_is_rejected_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"fc.weight": np.array([{"payload": 1}], dtype=object)})
    with pytest.raises(ValueError, match=r"tensor 'fc.weight' .* cannot be read without pickle"):
        from_torchvision("resnet18", path)


def test_string_array_in_npz_is_rejected(tmp_path):
    path = tmp_path / "strings.npz"
    np.savez(path, **{"fc.weight": np.array(["a", "b"])})
    with pytest.raises(ValueError, match=r"tensor 'fc.weight' .* dtype <U1, not a numeric"):
        from_torchvision("resnet18", path)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt"])
def test_pickle_files_are_refused(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"not opened")
    with pytest.raises(ValueError, match="refusing to read .*pickles.*safetensors"):
        from_torchvision("resnet18", path)


def test_batch_norm_epsilon_must_match(tmp_path):
    model = tm.GoogLeNet(width=1 / 16, num_classes=NUM_CLASSES)
    path = str(tmp_path / "googlenet.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    with pytest.raises(ValueError, match="has epsilon 1e-05 but torchvision's googlenet uses "
                                         "0.001"):
        from_torchvision("googlenet", path, width=1 / 16, norm=L.BatchNorm)


def test_googlenet_transform_input_needs_rgb():
    model = torchvision_model("googlenet", width=1 / 16, transform_input=True)
    with pytest.raises(ValueError, match="transform_input=True.* 3 channels"):
        jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 64, 64, 1),
                                                                            np.float32))


def test_unknown_model_lists_supported(tmp_path):
    with pytest.raises(ValueError, match=r"no torchvision import for model 'xception'; "
                                         r"supported: alexnet_torchvision, densenet121"):
        from_torchvision("xception", tmp_path / "x.safetensors")
