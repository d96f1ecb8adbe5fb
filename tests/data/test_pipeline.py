"""normalize, one_hot, prefetch_to_device."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcnn.data import SPECS, normalize, one_hot, prefetch_to_device

MEAN, STD = SPECS["cifar10"].mean, SPECS["cifar10"].std


def _images(seed=0, shape=(4, 5, 6, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _reference(x, mean, std, max_value=255.0):
    out = np.empty(x.shape, np.float64)
    for c in range(x.shape[-1]):
        out[..., c] = (x[..., c].astype(np.float64) / max_value - mean[c]) / std[c]
    return out


def test_normalize_uint8_numpy_matches_reference():
    x = _images()
    y = normalize(x, MEAN, STD)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_allclose(y, _reference(x, MEAN, STD), atol=1e-5)


@pytest.mark.parametrize("dtype,atol", [(jnp.float32, 1e-5), (jnp.bfloat16, 3e-2)])
def test_normalize_float_jax_keeps_dtype_under_jit(dtype, atol):
    x = np.random.default_rng(1).uniform(0, 1, (2, 3, 3, 3))
    y = jax.jit(lambda v: normalize(v, MEAN, STD, max_value=1.0))(jnp.asarray(x, dtype))
    assert y.dtype == dtype
    np.testing.assert_allclose(np.asarray(y, np.float32), _reference(x, MEAN, STD, 1.0),
                               atol=atol, rtol=atol)


def test_normalize_vmap_and_grad():
    x = jnp.asarray(np.random.default_rng(2).uniform(0, 255, (3, 2, 2, 3)), jnp.float32)
    batched = jax.vmap(lambda v: normalize(v, MEAN, STD))(x)
    np.testing.assert_allclose(batched, normalize(x, MEAN, STD), atol=1e-6)
    grad = jax.grad(lambda v: normalize(v, MEAN, STD).sum())(x)
    expected = np.broadcast_to(1 / (255 * np.asarray(STD)), x.shape)
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_normalize_explicit_dtype_for_integers():
    assert normalize(_images(), MEAN, STD, dtype=jnp.bfloat16).dtype == jnp.bfloat16


def test_normalize_bad_inputs():
    with pytest.raises(ValueError, match="channel mismatch: `images` has 3 channels"):
        normalize(_images(), (0.5,), (0.5,))
    with pytest.raises(ValueError, match="`std` must be > 0"):
        normalize(_images(), MEAN, (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="`mean` has 2 entries but `std` has 3"):
        normalize(_images(), (0.1, 0.2), STD)
    with pytest.raises(TypeError, match="dtype"):
        normalize(_images(), MEAN, STD, dtype=np.int32)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_one_hot_matches_eye(dtype):
    labels = np.random.default_rng(3).integers(0, 7, (5, 2))
    y = jax.jit(lambda v: one_hot(v, 7, dtype=dtype))(labels)
    assert y.shape == (5, 2, 7) and y.dtype == dtype
    np.testing.assert_array_equal(np.asarray(y, np.float32), np.eye(7)[labels])


def test_one_hot_bad_inputs():
    with pytest.raises(TypeError, match="labels"):
        one_hot(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="num_classes"):
        one_hot(np.array([0, 1]), 0)


class _Counting:
    """An iterator that records how many batches were taken from it."""

    def __init__(self, n):
        self.taken, self.n = 0, n

    def __iter__(self):
        return self

    def __next__(self):
        if self.taken == self.n:
            raise StopIteration
        self.taken += 1
        return {"x": np.full((8, 2), self.taken, np.float32), "y": np.arange(8) + self.taken}


@pytest.mark.parametrize("size", [1, 2, 3])
def test_prefetch_runs_ahead_by_size(size):
    source = _Counting(5)
    out = prefetch_to_device(source, size=size)
    first = next(out)
    assert source.taken == size  # `size` batches on the device before the first step
    assert isinstance(first["x"], jax.Array) and float(first["x"][0, 0]) == 1
    rest = list(out)
    assert [int(b["y"][0]) for b in rest] == [2, 3, 4, 5]


def test_prefetch_with_sharding_splits_the_batch_over_devices():
    devices = np.array(jax.devices())
    sharding = NamedSharding(Mesh(devices, ("data",)), PartitionSpec("data"))
    batches = [{"x": np.random.default_rng(i).normal(size=(len(devices) * 2, 3))
                .astype(np.float32)} for i in range(3)]
    for host, dev in zip(batches, prefetch_to_device(iter(batches), sharding=sharding),
                         strict=True):
        assert dev["x"].sharding == sharding
        assert len(dev["x"].addressable_shards) == len(devices)
        np.testing.assert_array_equal(np.asarray(dev["x"]), host["x"])


def test_prefetch_bad_size():
    with pytest.raises(ValueError, match="size"):
        prefetch_to_device(iter([]), size=0)  # raised at the call, not at the first next()
