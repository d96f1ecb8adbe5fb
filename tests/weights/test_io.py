"""``jaxcnn.weights.io`` and ``_layout``: safe readers, the .safetensors round trip, layouts."""

from __future__ import annotations

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models
from jaxcnn.weights import (
    _layout,
    load_safetensors,
    read_keras_h5,
    read_state_dict,
    to_safetensors,
)


def _random_variables(model, shape, seed=0):
    """``model.init``'s tree filled from numpy (no init compilation), every leaf random."""
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.ones(shape))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), abstract)


@pytest.mark.parametrize("name, shape", [("lenet5", (1, 32, 32, 1)),
                                         ("resnet18", (1, 32, 32, 3))])
def test_safetensors_round_trip_is_bit_exact(name, shape, tmp_path):
    model = models.create(name, num_classes=10)
    variables = _random_variables(model, shape)
    path = tmp_path / f"{name}.safetensors"
    to_safetensors(variables, path)
    restored = load_safetensors(path)
    assert jax.tree.structure(restored) == jax.tree.structure(variables)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(restored), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))


def test_safetensors_keys_are_slash_joined(tmp_path):
    variables = {"params": {"stage1_block1": {"conv1": {"kernel": np.ones((3, 3, 2, 4),
                                                                            np.float32)}}},
                 "batch_stats": {"stem_bn": {"var": np.ones(4, np.float32)}}}
    path = tmp_path / "v.safetensors"
    to_safetensors(variables, path)
    assert sorted(read_state_dict(path)) == ["batch_stats/stem_bn/var",
                                             "params/stage1_block1/conv1/kernel"]


@pytest.mark.parametrize("variables, error, match", [
    ({"params": {"w": [1.0, 2.0]}}, TypeError, "leaf 'params/w' is a list, not an array"),
    ({"params": {"a/b": np.ones(2)}}, ValueError, "contains '/'"),
    ({"params": {}}, ValueError, "no arrays"),
    ({"params": {"w": jnp.ones(2, jnp.bfloat16)}}, TypeError, "bfloat16; cast first"),
    ({"params": {"w": np.array(["x"])}}, ValueError, "not a numeric tensor"),
    ([np.ones(2)], TypeError, "nested mapping"),
])
def test_to_safetensors_rejects_bad_trees(variables, error, match, tmp_path):
    with pytest.raises(error, match=match):
        to_safetensors(variables, tmp_path / "bad.safetensors")


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, ok=np.ones(2, np.float32), bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="tensor 'bad' .* cannot be read without pickle"):
        read_state_dict(path)


def test_pickled_npz_is_rejected(tmp_path):
    path = tmp_path / "pickled.npz"
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "x.npy").rename(path)
    with pytest.raises(ValueError, match="without pickle"):
        read_state_dict(path)


def test_corrupt_and_missing_files(tmp_path):
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="cannot read .* as .safetensors"):
        read_state_dict(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_state_dict(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="must end with one of"):
        read_state_dict(tmp_path / "weights.json")
    not_h5 = tmp_path / "not.h5"
    not_h5.write_bytes(b"plain text")
    with pytest.raises(ValueError, match="cannot open .* as an HDF5 file"):
        read_keras_h5(not_h5)


def test_h5_in_neither_keras_layout(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.ones(3)
    with pytest.raises(ValueError, match="neither a Keras 3 .weights.h5 file"):
        read_keras_h5(path)


def test_legacy_h5_rejects_non_numeric_datasets(tmp_path):
    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("fc/fc/kernel:0", data=np.array([b"exec"], dtype=object),
                         dtype=h5py.string_dtype())
        f["fc"].attrs["weight_names"] = [b"fc/kernel:0"]
        f.attrs["layer_names"] = [b"fc"]
    with pytest.raises(ValueError, match=r"dataset '/fc/fc/kernel:0'.*not a numeric tensor"):
        read_keras_h5(path)


def test_conv_kernel_from_torch_matches_the_convolution():
    """OIHW -> HWIO gives the same convolution (against torch-free numpy correlation)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 6, 3)).astype(np.float32)
    oihw = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    ours = jax.lax.conv_general_dilated(x, _layout.conv_kernel_from_torch(oihw), (1, 1),
                                        "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 2), axis=(1, 2))
    expected = np.einsum("nhwcij,ocij->nhwo", windows, oihw)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_nchw_flatten_permutation_matches_pytorch_flatten():
    rng = np.random.default_rng(0)
    feature = rng.standard_normal((2, 3, 3, 5))        # NHWC, C = 5
    weight = rng.standard_normal((4, 5 * 3 * 3))       # torch Linear on flatten(NCHW)
    expected = feature.transpose(0, 3, 1, 2).reshape(2, -1) @ weight.T
    got = feature.reshape(2, -1) @ _layout.dense_kernel_from_torch_nchw(weight, channels=5)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="square 4-channel"):
        _layout.dense_kernel_from_torch_nchw(weight, channels=4)


def test_keras_depthwise_kernel_channel_order():
    kernel = np.arange(3 * 3 * 4 * 2, dtype=np.float32).reshape(3, 3, 4, 2)   # C=4, M=2
    ours = _layout.depthwise_kernel_from_keras(kernel)
    assert ours.shape == (3, 3, 1, 8)
    np.testing.assert_array_equal(ours[..., 0, 2 * 3 + 1], kernel[..., 3, 1])   # c*M + m
