"""Augmentation inside the train step runs on [0, 1] pixels, then the step normalises.

``jaxcnn.augment``'s colour functions expect RGB in ``[0, 1]`` and its fills are pixel
values, so a step that gets uint8 batches must scale them to ``[0, 1]``, augment, and only
then apply the dataset's ``(x - mean) / std``. A probe model stores the image it is given in
its ``batch_stats``, so the tests read exactly what the network saw.
"""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import default, resnet18_cifar10
from jaxcnn.augment import AUGMENTATIONS, compose
from jaxcnn.training import create_train_state, make_train_step
from jaxcnn.training.loop import train

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
N, H, W, K = 6, 12, 12, 5


class Probe(nn.Module):
    """A linear classifier that records its input (``batch_stats["seen"]``) in training."""

    num_classes: int = K

    @nn.compact
    def __call__(self, x, train=False):
        seen = self.variable("batch_stats", "seen", jnp.zeros, x.shape, jnp.float32)
        if train and not self.is_initializing():
            seen.value = x.astype(jnp.float32)
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


def _normalize(x01):
    return (x01 - jnp.asarray(MEAN)) / jnp.asarray(STD)


def _uint8_batch(seed=0, value=None):
    rng = np.random.default_rng(seed)
    image = (np.full((N, H, W, 3), value, np.uint8) if value is not None
             else rng.integers(0, 256, (N, H, W, 3)).astype(np.uint8))
    return {"image": image, "label": (np.arange(N) % K).astype(np.int32)}


def _step(config, batch, out_shape=None):
    """One train step with ``augment=compose(config)`` on uint8 ``batch``: (state, what the
    network saw, metrics)."""
    labels = any((e if isinstance(e, str) else e[0]) == "mixup" for e in config)
    sample = jnp.zeros(out_shape or batch["image"].shape, jnp.float32)
    state = create_train_state(Probe(), optax.sgd(0.0), jax.random.PRNGKey(0), sample)
    step = jax.jit(make_train_step(augment=compose(config), augment_labels=labels,
                                   num_classes=K, input_normalization=(MEAN, STD)))
    new_state, metrics = step(state, batch)
    return state, new_state.batch_stats["seen"], metrics


def _augment_key(state):
    # The step's documented key derivation: fold_in(rng, step), split into (dropout, augment).
    return jax.random.split(jax.random.fold_in(state.rng, state.step))[1]


def test_random_crop_pads_with_normalised_black():
    state, seen, _ = _step([("random_crop", {"padding": 4})], _uint8_batch(value=255))
    white = (1.0 - np.asarray(MEAN)) / np.asarray(STD)
    black = (0.0 - np.asarray(MEAN)) / np.asarray(STD)
    is_white = np.isclose(seen, white, atol=1e-6).all(-1)
    is_black = np.isclose(seen, black, atol=1e-6).all(-1)
    assert (is_white | is_black).all()  # every pixel is image or padding, nothing else
    assert is_black.any() and is_white.any()


def test_brightness_scales_pixels_in_0_1_then_normalises():
    _, seen, _ = _step([("adjust_brightness", {"factor": 2.0})],
                       _uint8_batch(value=100))
    expected = _normalize(jnp.full((N, H, W, 3), min(2 * 100 / 255, 1.0)))
    np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-5)
    _, seen, _ = _step([("adjust_brightness", {"factor": 3.0})], _uint8_batch(value=200))
    np.testing.assert_allclose(seen, _normalize(jnp.ones((N, H, W, 3))), atol=1e-5)  # clipped


def test_color_jitter_clips_in_pixel_space():
    # brightness exactly 4: values above 1/4 are white, the rest scaled by 4.
    batch = _uint8_batch(seed=1)
    _, seen, _ = _step([("color_jitter", {"brightness": (4.0, 4.0)})], batch)
    expected = _normalize(np.minimum(4 * batch["image"].astype(np.float32) / 255, 1.0))
    np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-5)


# Every name usable in config.augment, with arguments; shape-changing ones give (16, 16).
ENTRIES = {
    "random_crop": {"padding": 4},
    "random_flip": {"vertical": True},
    "random_translate": {"max_shift": 4},
    "random_rotate": {"degrees": (20.0, 40.0)},
    "random_zoom": {"scale_range": (0.5, 0.7)},
    "color_jitter": {"brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2},
    "cutout": {"size": 6},
    "random_resized_crop": {"size": 16},
    "flip_left_right": {},
    "flip_up_down": {},
    "translate": {"dy": 3, "dx": -2},
    "rotate": {"angle_degrees": 30.0},
    "zoom": {"scale": 0.6},
    "adjust_brightness": {"factor": 1.7},
    "adjust_contrast": {"factor": 1.8},
    "adjust_saturation": {"factor": 2.5},
    "adjust_hue": {"delta": 0.3},
    "center_crop": {"size": 16},
    "resized_crop": {"top": 1.0, "left": 2.0, "height": 8.0, "width": 9.0, "size": 16},
    "mixup": {"alpha": 1.0},
}


def test_every_config_usable_augmentation_is_covered():
    assert set(ENTRIES) == set(AUGMENTATIONS)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_step_sees_augmentation_of_0_1_pixels_then_normalisation(name):
    config = [(name, ENTRIES[name])]
    batch = _uint8_batch(seed=2)
    x01 = jnp.asarray(batch["image"], jnp.float32) / 255
    augment = compose(config)
    if name == "mixup":
        # Shapes only here; the key is the step's, taken from the initial state below.
        out_shape = x01.shape
    else:
        out_shape = augment(jax.random.key(0), x01).shape
    state, seen, metrics = _step(config, batch, out_shape)
    key = _augment_key(state)
    if name == "mixup":
        mixed, soft = augment(key, x01, jax.nn.one_hot(batch["label"], K))
        # The loss is the cross-entropy against the mixed (soft) labels.
        logits = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                                _normalize(mixed))
        expected_loss = optax.softmax_cross_entropy(logits, soft).mean()
        np.testing.assert_allclose(metrics["loss"], expected_loss, rtol=1e-5)
        expected = _normalize(mixed)
    else:
        expected = _normalize(augment(key, x01))
    np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=2e-5)


def test_float_batches_are_augmented_as_given():
    """Already-normalised float batches (the synthetic datasets) are not touched otherwise."""
    batch = {**_uint8_batch(), "image": np.ones((N, H, W, 3), np.float32) * 7.0}
    _, seen, _ = _step([("random_crop", {"padding": 4})], batch)
    assert set(np.unique(np.asarray(seen))) <= {0.0, 7.0}


def _short_run(config, workdir):
    config.num_steps, config.batch_size, config.eval_batch_size = 2, 8, 8
    config.log_every_steps, config.eval_every_steps = 1, 100
    final = train(config, workdir)
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert final["steps"] == 2 and len(losses) == 2 and np.isfinite(losses).all()
    return final


def test_resnet18_cifar10_augmentation_trains_on_fake_data(tmp_path):
    config = resnet18_cifar10.get_config()
    assert [name for name, _ in config.augment] == ["random_crop", "random_flip"]
    config.dataset = "fake_cifar10"
    config.model, config.model_options = "lenet5", {}  # the config's augmentation, a small net
    _short_run(config, tmp_path)


@pytest.mark.slow  # a second training run; the step-level tests above cover the values
def test_mixup_and_cutout_from_a_config_train_on_uint8_data(tmp_path):
    """digits: uint8 batches normalised in the step; mixup's soft labels reach the loss."""
    config = default.get_config()
    config.data_dir = str(tmp_path / "data")
    config.augment = (("random_crop", {"padding": 2}), ("cutout", {"size": 8}),
                      ("mixup", {"alpha": 1.0}))
    _short_run(config, tmp_path / "run")
