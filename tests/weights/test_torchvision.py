"""``jaxcnn.weights.from_torchvision``: parity with torchvision-layout PyTorch models.

torchvision itself cannot be installed beside the pinned torch, so the references are
pure-PyTorch replicas with torchvision's module names (:mod:`tests.weights._torch_models`),
small widths, random weights and calibrated BatchNorm statistics; their ``state_dict`` is
saved as ``.safetensors`` or ``.npz`` (DenseNet's with the pre-0.3 ``norm.1`` keys), imported,
and the logits compared on random images to 1e-4. ``benchmarks/torchvision_parity.py`` runs
the same check against real torchvision models at full size.
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

from tests.weights import _torch_models as tm  # noqa: E402

NUM_CLASSES = 10
TOL = 1e-4

# name -> (torch replica, jaxcnn options giving the same widths, input size)
CASES = {
    "alexnet_torchvision": (partial(tm.alexnet, (16, 24, 32, 24, 16), fc=32),
                            {"features": (16, 24, 32, 24, 16), "fc_features": 32}, 96),
    "vgg16": (partial(tm.vgg, 16, False, width=8, fc=32), {"width": 8, "fc_features": 32}, 64),
    "vgg11_bn": (partial(tm.vgg, 11, True, width=8, fc=32), {"width": 8, "fc_features": 32},
                 64),
    "resnet18": (partial(tm.ResNet, 18, width=8), {"num_filters": 8}, 64),
    "resnet50": (partial(tm.ResNet, 50, width=8), {"num_filters": 8}, 64),
    # Fewer layers per block than DenseNet-121 (the names follow one rule; compiling 58
    # dense layers would dominate the file's time): every kind of key is still there.
    "densenet121": (partial(tm.densenet, (2, 3, 2, 2), growth_rate=4, num_init_features=8),
                    {"block_config": (2, 3, 2, 2), "growth_rate": 4, "num_init_features": 8},
                    64),
    "googlenet": (partial(tm.GoogLeNet, width=1 / 8, transform_input=True),
                  {"width": 1 / 8, "aux_logits": True, "transform_input": True}, 64),
}


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


@pytest.mark.parametrize("name", list(CASES))
def test_parity_with_torchvision_layout(name, tmp_path):
    replica, options, size = CASES[name]
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
    got = np.asarray(jax.jit(ours.apply)(variables, x.transpose(0, 2, 3, 1)))

    scale = np.abs(expected).max()
    assert 1e-2 < scale < 1e3, f"reference scale {scale} makes the check vacuous"
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    print(f"{name}: scale {scale:.3g} max abs diff {np.abs(got - expected).max():.2e}")
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
