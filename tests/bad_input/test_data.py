"""Bad input to :mod:`jaxcnn.data` and :mod:`jaxcnn.augment`.

Dataset rows share one prepared copy of the offline ``digits`` dataset (prepared once per
module, about 2 s); every path passed is under pytest's tmp folders.
"""

from __future__ import annotations

import functools
from pathlib import Path
from unittest import mock

import jax
import numpy as np
import pytest

from jaxcnn import augment as A
from jaxcnn import data
from jaxcnn.data import dataset as dataset_module
from jaxcnn.data._builders import encode_png
from jaxcnn.data.fake import load_fake
from jaxcnn.data.prepare import prepare
from tests.bad_input._census import Case, check, params, rand

_DIRS: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def _digits_dir(tmp_path_factory):
    _DIRS["digits"] = tmp_path_factory.mktemp("digits")
    _DIRS["empty"] = tmp_path_factory.mktemp("empty")
    data.load("digits", "test", data_dir=_DIRS["digits"])
    yield
    _DIRS.clear()


@functools.cache
def _test_split() -> data.Dataset:
    return data.load("digits", "test", data_dir=_DIRS["digits"])


def _with_stored_labels(labels):
    """A digits split whose stored labels are ``labels`` (as if its files were wrong)."""
    images = np.zeros((len(labels), 8, 8, 1), np.uint8)
    fake_read = mock.patch.object(dataset_module, "_read_split",
                                  lambda source, split=None: (images, np.asarray(labels)))
    with fake_read:
        return data.load("digits", "test", data_dir=_DIRS["digits"]).labels


IMG = rand(8, 8, 3)
IMGS = rand(2, 8, 8, 3)
U8 = rand(8, 8, 3, dtype=np.uint8)
KEY = jax.random.key(0)
BATCH = {"image": IMGS, "label": np.array([0, 9])}


def _d(name, what, call, exc, match):
    return Case(f"data.{name}", what, call, exc, match)


DATA = [
    _d("load", "unknown name", lambda: data.load("mnsit", data_dir=_DIRS["digits"]),
       ValueError, r"unknown dataset `name`='mnsit'. Did you mean 'mnist'"),
    _d("load", "unknown split", lambda: data.load("digits", "tets", data_dir=_DIRS["digits"]),
       ValueError, r"unknown `split`='tets' for digits; available: train, test"),
    _d("load", "empty split", lambda: data.load("digits", "train[:0]",
                                                data_dir=_DIRS["digits"]),
       ValueError, r"`split`='train\[:0\]' of digits holds no examples; choose a non-empty"),
    _d("load", "missing data_dir", lambda: data.load("mnist", data_dir=_DIRS["empty"] / "no"),
       FileNotFoundError, r"`data_dir`=.*a folder that does not exist.*python -m "
                          r"jaxcnn.data.prepare mnist --from DIR"),
    _d("load", "data_dir without the dataset", lambda: data.load("mnist",
                                                                 data_dir=_DIRS["empty"]),
       FileNotFoundError, r"not prepared in `data_dir`=.*Pass the `data_dir` that holds it"),
    _d("load", "image_size too small",
       lambda: data.load("digits", "test", data_dir=_DIRS["digits"], image_size=4),
       ValueError, r"`image_size` must be an int >= 8 for digits.*got 4"),
    _d("Dataset", "batch larger than the split",
       lambda: _test_split().batches(1000, seed=0), ValueError,
       r"`batch_size`=1000 is larger than the 360 examples of digits/test.*drop_remainder=False"),
    _d("Dataset", "batch larger than this process's shard",
       lambda: _test_split().batches(200, seed=0, process_count=2), ValueError,
       r"`batch_size`=200 is larger than the 180 examples of digits/test \(this process's "
       r"shard of 2\)"),
    _d("Dataset", "more processes than examples",
       lambda: _test_split().batches(1, shuffle=False, process_count=400, process_index=399,
                                     drop_remainder=False),
       ValueError, r"digits/test \(this process's shard of 400\) has no examples to batch"),
    _d("Dataset", "batch_size 0", lambda: _test_split().batches(0, seed=0), ValueError,
       r"`batch_size` must be an int >= 1"),
    _d("Dataset", "shuffle without seed", lambda: _test_split().batches(8), ValueError,
       r"`seed` is required when shuffle=True"),
    _d("Dataset", "process_index out of range",
       lambda: _test_split().indices(seed=0, process_index=2, process_count=2), ValueError,
       r"`process_index`=2 must be < `process_count`=2"),
    _d("Dataset", "backend", lambda: _test_split().batches(8, seed=0, backend="tf"),
       ValueError, r"`backend` must be 'memory' or 'grain', got 'tf'"),
    _d("Dataset", "stored labels outside the classes", lambda: _with_stored_labels([3, 10]),
       ValueError, r"`labels of digits/test` must lie in \[0, num_classes\) = \[0, 10\), got 1 "
                   r"value\(s\) outside, e.g. \[10\]; .*prepare them again"),
    _d("Dataset", "streamed label outside the classes",  # the grain path, record by record
       lambda: dataset_module._Preprocess("digits", 1, 32, num_classes=10)(
           {"image": encode_png(np.zeros((8, 8, 1), np.uint8)), "label": 12}), ValueError,
       r"`label of digits` must lie in \[0, num_classes\) = \[0, 10\).*prepare them again"),
    _d("load_fake", "unknown name", lambda: load_fake("fake_cifar"), ValueError,
       r"unknown fake dataset `name`='fake_cifar'. Did you mean 'fake_cifar10'"),
    _d("load_fake", "batch larger than the split",
       lambda: load_fake("fake_mnist", "test").batches(2000, seed=0), ValueError,
       r"`batch_size`=2000 is larger than the 1000 examples of fake_mnist/test"),
    _d("load_fake", "unknown split", lambda: load_fake("fake_mnist", "validation"), ValueError,
       r"unknown `split`='validation' for fake_mnist; choose one of \['test', 'train'\]"),
    _d("prepare", "unknown name", lambda: prepare("cifar", data_dir=_DIRS["empty"]),
       ValueError, r"unknown dataset `name`='cifar'. Did you mean 'cifar10'"),
    _d("prepare", "not preparable here", lambda: prepare("imagenet2012",
                                                         data_dir=_DIRS["empty"]),
       ValueError, r"imagenet2012 cannot be prepared by jaxcnn; use TFDS"),
    _d("prepare", "no source_dir", lambda: prepare("mnist", data_dir=_DIRS["empty"]),
       ValueError, r"`source_dir` \(--from DIR\) is required for mnist"),
    _d("prepare", "missing source_dir",
       lambda: prepare("mnist", _DIRS["empty"] / "no", data_dir=_DIRS["empty"]),
       FileNotFoundError, r"`source_dir` \(--from\) .* is not a directory; expected a folder"),
    _d("prepare", "source_dir without the files",
       lambda: prepare("mnist", _DIRS["empty"], data_dir=_DIRS["empty"]),
       FileNotFoundError, r"train-images-idx3-ubyte"),
    _d("normalize", "channels", lambda: data.normalize(IMGS, (0.5,), (0.2,)), ValueError,
       r"channel mismatch: `images` has 3 channels.*len\(mean\) is 1"),
    _d("normalize", "std 0", lambda: data.normalize(IMGS, (0.5,) * 3, (0.2, 0.0, 0.2)),
       ValueError, r"`std` must be > 0 for every channel"),
    _d("normalize", "mean and std lengths", lambda: data.normalize(IMGS, (0.5,) * 3, (0.2,)),
       ValueError, r"`mean` has 3 entries but `std` has 1.*must"),
    _d("normalize", "integer dtype", lambda: data.normalize(IMGS, (0.5,) * 3, (0.2,) * 3,
                                                             dtype=np.int32),
       TypeError, r"`dtype` must be a floating dtype"),
    _d("normalize", "scalar images", lambda: data.normalize(np.float32(1.0), (0.5,), (0.2,)),
       ValueError, r"`images` must have a channel axis"),
    _d("one_hot", "float labels", lambda: data.one_hot(np.array([0.0, 1.0]), 3), TypeError,
       r"`labels` must be integer class indices.*astype\(jnp.int32\)"),
    _d("one_hot", "labels outside the classes", lambda: data.one_hot(np.array([0, 3]), 3),
       ValueError, r"`labels` must lie in \[0, num_classes\) = \[0, 3\).*e.g. \[3\]"),
    _d("one_hot", "negative label", lambda: data.one_hot(np.array([-1, 2]), 3), ValueError,
       r"`labels` must lie in \[0, num_classes\).*e.g. \[-1\]"),
    _d("one_hot", "num_classes 0", lambda: data.one_hot(np.array([0]), 0), ValueError,
       r"`num_classes` must be a positive int"),
    _d("check_batch", "NaN image", lambda: data.check_batch(
        {"image": np.where(np.arange(2)[:, None, None, None] == 1, np.nan, IMGS),
         "label": BATCH["label"]}, 10, finite=True),
       ValueError, r"`batch\['image'\]` must be finite \(finite=True\) but holds 192 NaN/Inf "
                   r"value\(s\), in example\(s\) \[1\]"),
    _d("check_batch", "Inf image", lambda: data.check_batch(
        {"image": np.full_like(IMGS, np.inf), "label": BATCH["label"]}, 10, finite=True),
       ValueError, r"`batch\['image'\]` must be finite.*example\(s\) \[0, 1\]"),
    _d("check_batch", "label outside the classes",
       lambda: data.check_batch({"image": IMGS, "label": np.array([0, 10])}, 10), ValueError,
       r"`batch\['label'\]` must lie in \[0, num_classes\) = \[0, 10\)"),
    _d("check_batch", "float labels",
       lambda: data.check_batch({"image": IMGS, "label": np.array([0.0, 1.0])}, 10),
       TypeError, r"`batch\['label'\]` must be integer class indices"),
    _d("check_batch", "one label per image",
       lambda: data.check_batch({"image": IMGS, "label": np.array([0, 1, 2])}, 10),
       ValueError, r"`batch\['label'\]` must have shape \(N,\) = \(2,\)"),
    _d("check_batch", "uint8 images",
       lambda: data.check_batch({"image": IMGS.astype(np.uint8), "label": BATCH["label"]}, 10),
       TypeError, r"`batch\['image'\]` must be a floating-point.*divide by 255"),
    _d("check_batch", "image without batch axis",
       lambda: data.check_batch({"image": IMG, "label": BATCH["label"]}, 10), ValueError,
       r"`batch\['image'\]` must have rank 4"),
    _d("check_batch", "missing label", lambda: data.check_batch({"image": IMGS}, 10),
       ValueError, r"`batch` must have 'image' and 'label' entries"),
    _d("prefetch_to_device", "size 0", lambda: data.prefetch_to_device(iter([]), 0),
       ValueError, r"`size` must be an int >= 1"),
    _d("prefetch_to_device", "sharding and put", lambda: data.prefetch_to_device(
        iter([]), 2, sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0]),
        put=jax.device_put), ValueError, r"pass either `sharding` or `put`"),
    _d("center_pad", "smaller than the images",
       lambda: data.center_pad(rand(1, 28, 28, 1, dtype=np.uint8), 20), ValueError,
       r"`image_size`=20 is smaller than the 28x28 images; padding cannot shrink them"),
    _d("upsample_pad", "image_size below 8",
       lambda: data.upsample_pad(rand(1, 8, 8, 1, dtype=np.uint8), 4), ValueError,
       r"`image_size` must be an int >= 8"),
    _d("resize_center_crop", "image_size 0",
       lambda: data.resize_center_crop(rand(10, 12, 3, dtype=np.uint8), 0), ValueError,
       r"`image_size` must be an int >= 1"),
    _d("resize_center_crop", "batch instead of one image",
       lambda: data.resize_center_crop(rand(2, 10, 12, 3, dtype=np.uint8), 8), ValueError,
       r"`image` must have rank 2 or 3"),
]

_IMAGE = r"`image` must have rank 3 laid out as \(H, W, C\) \(one image; vmap over a batch\)"
_FLOAT = r"`image` must be a floating-point.*divide by 255"
_KEY = r"`key` must be a jax.random key, e.g. `jax.random.key\(seed\)`"


def _a(name, what, call, exc, match):
    return Case(f"augment.{name}", what, call, exc, match)


def _image_rows(name, fn, *, key=False):
    """Per-image functions: a batch where one image belongs, a uint8 image, an int key."""
    call = (lambda x, k=KEY: fn(k, x)) if key else fn
    rows = [_a(name, "batch instead of one image", lambda: call(IMGS), ValueError, _IMAGE),
            _a(name, "uint8 image", lambda: call(U8), TypeError, _FLOAT)]
    if key:
        rows.append(_a(name, "seed instead of key", lambda: call(IMG, 0), TypeError, _KEY))
    return rows


AUGMENT = [
    *_image_rows("flip_left_right", A.flip_left_right),
    *_image_rows("flip_up_down", A.flip_up_down),
    *_image_rows("random_flip", A.random_flip, key=True),
    _a("random_flip", "p 2", lambda: A.random_flip(KEY, IMG, p=2.0), ValueError,
       r"`p` must be a probability in \[0, 1\]"),
    *_image_rows("random_crop", A.random_crop, key=True),
    _a("random_crop", "padding_mode", lambda: A.random_crop(KEY, IMG, padding_mode="mirror"),
       ValueError, r"`padding_mode` must be one of"),
    _a("random_crop", "size larger than padded image",
       lambda: A.random_crop(KEY, IMG, 20, padding=0), ValueError,
       r"crop `size` \(20, 20\) is larger than the padded image.*use a smaller size"),
    *_image_rows("translate", lambda x: A.translate(x, 1, 1)),
    _a("translate", "fractional shift", lambda: A.translate(IMG, 1.5, 0), TypeError,
       r"`dy` must be an integer scalar \(pixels\)"),
    *_image_rows("random_translate", lambda k, x: A.random_translate(k, x, 2), key=True),
    _a("random_translate", "negative max_shift", lambda: A.random_translate(KEY, IMG, -1),
       ValueError, r"`max_shift` must be >= 0"),
    *_image_rows("rotate", lambda x: A.rotate(x, 10.0)),
    *_image_rows("random_rotate", A.random_rotate, key=True),
    _a("random_rotate", "degrees reversed", lambda: A.random_rotate(KEY, IMG, (10, 5)),
       ValueError, r"`degrees` must be a \(min, max\) pair with min <= max"),
    *_image_rows("zoom", lambda x: A.zoom(x, 1.2)),
    _a("zoom", "scale 0", lambda: A.zoom(IMG, 0.0), ValueError, r"`scale` must be > 0"),
    *_image_rows("random_zoom", A.random_zoom, key=True),
    _a("random_zoom", "scale_range from 0", lambda: A.random_zoom(KEY, IMG, (0.0, 1.0)),
       ValueError, r"`scale_range` must be positive"),
    *_image_rows("cutout", lambda k, x: A.cutout(k, x, 2), key=True),
    _a("cutout", "size larger than image", lambda: A.cutout(KEY, IMG, 9), ValueError,
       r"cutout `size` \(9, 9\) is larger than the image \(8, 8\)"),
    _a("mixup", "integer labels", lambda: A.mixup(KEY, IMGS, np.array([0, 1])), ValueError,
       r"`labels` must have rank 2 laid out as \(N, K\) one-hot"),
    _a("mixup", "integer one-hot labels", lambda: A.mixup(KEY, IMGS, np.eye(2, dtype=int)),
       TypeError, r"`labels` must be float one-hot/soft labels"),
    _a("mixup", "batch sizes", lambda: A.mixup(KEY, IMGS, np.eye(3)), ValueError,
       r"`images` and `labels` must have the same batch size"),
    _a("mixup", "alpha 0", lambda: A.mixup(KEY, IMGS, np.eye(2), alpha=0.0), ValueError,
       r"`alpha` must be > 0"),
    _a("mixup", "uint8 images", lambda: A.mixup(KEY, IMGS.astype(np.uint8), np.eye(2)),
       TypeError, r"`images` must be a floating-point"),
    _a("mixup", "seed instead of key", lambda: A.mixup(7, IMGS, np.eye(2)), TypeError, _KEY),
    _a("rgb_to_grayscale", "two channels", lambda: A.rgb_to_grayscale(IMG[..., :2]),
       ValueError, r"channel mismatch: `image` has 2 channels.*RGB channel count is 3"),
    _a("rgb_to_grayscale", "uint8 image", lambda: A.rgb_to_grayscale(U8), TypeError, _FLOAT),
    _a("rgb_to_hsv", "two channels", lambda: A.rgb_to_hsv(IMG[..., :2]), ValueError,
       r"channel mismatch: `image` has 2 channels.*RGB channel count is 3"),
    _a("rgb_to_hsv", "uint8 image", lambda: A.rgb_to_hsv(U8), TypeError, _FLOAT),
    _a("hsv_to_rgb", "two channels", lambda: A.hsv_to_rgb(IMG[..., :2]), ValueError,
       r"channel mismatch: `image` has 2 channels.*HSV channel count is 3"),
    _a("hsv_to_rgb", "uint8 image", lambda: A.hsv_to_rgb(U8), TypeError, _FLOAT),
    *_image_rows("adjust_brightness", lambda x: A.adjust_brightness(x, 1.2)),
    _a("adjust_brightness", "negative factor", lambda: A.adjust_brightness(IMG, -1.0),
       ValueError, r"`factor` must be non-negative"),
    *_image_rows("adjust_contrast", lambda x: A.adjust_contrast(x, 1.2)),
    _a("adjust_contrast", "two channels", lambda: A.adjust_contrast(IMG[..., :2], 1.2),
       ValueError, r"channel mismatch: `image` has 2 channels.*\(or 1 for greyscale\)"),
    *_image_rows("adjust_saturation", lambda x: A.adjust_saturation(x, 1.2)),
    _a("adjust_saturation", "negative factor", lambda: A.adjust_saturation(IMG, -2.0),
       ValueError, r"`factor` must be non-negative"),
    *_image_rows("adjust_hue", lambda x: A.adjust_hue(x, 0.1)),
    _a("adjust_hue", "delta above 0.5", lambda: A.adjust_hue(IMG, 0.7), ValueError,
       r"`delta` \(hue shift\) must be in \[-0.5, 0.5\]"),
    *_image_rows("color_jitter", lambda k, x: A.color_jitter(k, x, brightness=0.2), key=True),
    _a("color_jitter", "negative brightness",
       lambda: A.color_jitter(KEY, IMG, brightness=-1.0), ValueError,
       r"`brightness` must be non-negative"),
    _a("color_jitter", "hue range", lambda: A.color_jitter(KEY, IMG, hue=(0.0, 0.9)),
       ValueError, r"`hue` must be a \(min, max\) pair with min <= max within \[-0.5, 0.5\]"),
    *_image_rows("resized_crop", lambda x: A.resized_crop(x, 0, 0, 4, 4, 6)),
    _a("resized_crop", "box outside", lambda: A.resized_crop(IMG, 6, 0, 4, 4, 6), ValueError,
       r"crop box .* is not inside the image of size \(8, 8\)"),
    _a("resized_crop", "size 0", lambda: A.resized_crop(IMG, 0, 0, 4, 4, 0), ValueError,
       r"`size` must be >= 1"),
    _a("random_resized_crop_params", "height 0",
       lambda: A.random_resized_crop_params(KEY, 0, 8), ValueError,
       r"`\(height, width\)` must be >= 1"),
    _a("random_resized_crop_params", "negative scale",
       lambda: A.random_resized_crop_params(KEY, 8, 8, scale=(-0.1, 1.0)), ValueError,
       r"`scale` must be a \(min, max\) pair with min <= max within \[0.0"),
    _a("random_resized_crop_params", "seed instead of key",
       lambda: A.random_resized_crop_params(3, 8, 8), TypeError, _KEY),
    *_image_rows("random_resized_crop", lambda k, x: A.random_resized_crop(k, x, 6), key=True),
    *_image_rows("center_crop", lambda x: A.center_crop(x, 6)),
    _a("center_crop", "crop_fraction 0", lambda: A.center_crop(IMG, 6, crop_fraction=0.0),
       ValueError, r"`crop_fraction` must be in \(0, 1\]"),
    _a("compose", "unknown op", lambda: A.compose([("random_flp", {})]), ValueError,
       r"unknown augmentation 'random_flp' at config position 0; did you mean 'random_flip'"),
    _a("compose", "unknown argument", lambda: A.compose([("random_crop", {"pad": 4})]),
       TypeError, r"bad arguments for augmentation 'random_crop' at config position 0.*"
                  r"its signature random_crop\(key"),
    _a("compose", "missing argument", lambda: A.compose(["cutout"]), TypeError,
       r"missing required arguments \['size'\]"),
    _a("compose", "data argument given", lambda: A.compose([("random_flip", {"image": 1})]),
       TypeError, r"data arguments \['image'\] are supplied by the pipeline"),
    _a("compose", "config a string", lambda: A.compose("random_flip"), TypeError,
       r"`config` must be a list of \(name, kwargs\) entries"),
    _a("compose", "entry malformed", lambda: A.compose([("random_flip", 4)]), TypeError,
       r"augmentation config entry 0 must be a name or a \(name, kwargs\) pair"),
    _a("compose", "one image instead of a batch",
       lambda: A.compose(["random_flip"])(KEY, IMG), ValueError,
       r"`images` must have rank 4 laid out as \(N, H, W, C\)"),
    _a("compose", "uint8 batch",
       lambda: A.compose(["random_flip"])(KEY, IMGS.astype(np.uint8)), TypeError,
       r"`images` must be a floating-point"),
    _a("compose", "mixup without labels", lambda: A.compose(["mixup"])(KEY, IMGS), ValueError,
       r"augmentation 'mixup' \(config position 0\) mixes labels.*apply\(key, images, labels\)"),
    _a("compose", "seed instead of key", lambda: A.compose(["random_flip"])(0, IMGS), TypeError,
       _KEY),
    _a("mixes_labels", "config a string", lambda: A.mixes_labels("mixup"), TypeError,
       r"`config` must be a list of \(name, kwargs\) entries"),
    _a("mixes_labels", "entry malformed", lambda: A.mixes_labels([("mixup", 4)]), TypeError,
       r"augmentation config entry 0 must be a name or a \(name, kwargs\) pair"),
]

CASES = DATA + AUGMENT


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case: Case) -> None:
    check(case)


def test_nan_images_pass_unless_the_config_asks():
    """The pixel check is opt-in (``finite=True``, ``config.check_finite_inputs``): it costs one
    pass over every batch, while the label check (one pass over N ints) is always on."""
    batch = {"image": np.full_like(IMGS, np.nan), "label": BATCH["label"]}
    assert data.check_batch(batch, 10) is batch
    with pytest.raises(ValueError, match=r"`batch\['image'\]` must be finite"):
        data.check_batch(batch, 10, finite=True)
