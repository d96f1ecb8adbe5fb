"""Offline preparation: raw files -> TFDS ArrayRecord readable by jaxcnn and by stock TFDS."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxcnn.data import _builders, _specs, load
from jaxcnn.data.prepare import main, prepare
from tests.data._helpers import REPO, write_cifar, write_mnist_like

pytestmark = pytest.mark.filterwarnings("ignore:.*standard release")

SHARED_MNIST = Path(os.environ.get("JAXCNN_SHARED_DATA", REPO.parent / "shared" / "data")) / "mnist"
MNIST_TRAIN_HISTOGRAM = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _sorted_pairs(images, labels):
    """Examples as a sorted list of (label, image bytes): TFDS stores them in hashed order."""
    return sorted((int(y), x.tobytes()) for x, y in zip(images, labels, strict=True))


def test_fashion_mnist_round_trip_and_stock_tfds_reads_it(tmp_path):
    written = write_mnist_like(tmp_path / "raw")
    path = prepare("fashion_mnist", tmp_path / "raw", tmp_path / "out")
    assert path == tmp_path / "out" / "fashion_mnist" / "3.0.1"
    for split, (images, labels) in written.items():
        ds = load("fashion_mnist", split, data_dir=tmp_path / "out")
        assert len(ds) == len(labels) and ds.images.shape[1:] == (28, 28, 1)
        assert _sorted_pairs(ds.images[..., 0], ds.labels) == _sorted_pairs(images, labels)
    source = tfds.data_source("fashion_mnist", split="test", data_dir=tmp_path / "out",
                              download=False)
    example = source[0]
    assert len(source) == 7 and example["image"].shape == (28, 28, 1)
    assert source.dataset_info.features["label"].names[0] == "T-shirt/top"


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_round_trip_keeps_ids_labels_and_names(tmp_path, name):
    written = write_cifar(tmp_path / "raw", name)
    prepare(name, tmp_path / "raw", tmp_path / "out")
    for split, (images, labels) in written.items():
        source = tfds.data_source(name, split=split, data_dir=tmp_path / "out", download=False)
        assert len(source) == len(images)
        for example in source:
            index = int(example["id"].decode().rsplit("_", 1)[1])
            np.testing.assert_array_equal(example["image"], images[index])
            for key, values in labels.items():
                assert example[key] == values[index]
    features = tfds.builder(name, data_dir=tmp_path / "out").info.features
    prefix = "class" if name == "cifar10" else "fine"
    assert features["label"].names[:2] == [f"{prefix}0", f"{prefix}1"]


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "raw")
    calls = []
    real_encode = _builders.encode_png

    def failing_encode(image):
        calls.append(1)
        if len(calls) > 15:  # the train split is written, the test split is not
            raise KeyboardInterrupt
        return real_encode(image)

    monkeypatch.setattr(_builders, "encode_png", failing_encode)
    with pytest.raises(KeyboardInterrupt):
        prepare("mnist", tmp_path / "raw", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # scratch folder removed, nothing else
    with pytest.raises(FileNotFoundError, match="not prepared"):
        load("mnist", data_dir=tmp_path / "out")


def test_existing_dataset_is_kept_unless_overwrite(tmp_path):
    write_mnist_like(tmp_path / "a", seed=1)
    write_mnist_like(tmp_path / "b", seed=2)
    path = prepare("mnist", tmp_path / "a", tmp_path / "out")
    stamp = (path / "dataset_info.json").stat().st_mtime_ns
    assert prepare("mnist", tmp_path / "b", tmp_path / "out") == path
    assert (path / "dataset_info.json").stat().st_mtime_ns == stamp
    prepare("mnist", tmp_path / "b", tmp_path / "out", overwrite=True)
    labels = load("mnist", "test", data_dir=tmp_path / "out").labels
    assert sorted(labels) == sorted(write_mnist_like(tmp_path / "c", seed=2)["test"][1])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mnist"]


def test_cli(tmp_path, capsys):
    write_mnist_like(tmp_path / "raw")
    out = str(tmp_path / "out")
    assert main(["mnist", "--from", str(tmp_path / "raw"), "--data-dir", out]) == 0
    assert "prepared in" in capsys.readouterr().out
    assert main(["mnist", "--from", str(tmp_path / "raw"), "--data-dir", out]) == 0
    assert "already prepared" in capsys.readouterr().out
    assert main(["fashion_mnist", "--from", str(tmp_path), "--data-dir", out]) == 2
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err
    assert main(["fashoin_mnist", "--from", str(tmp_path), "--data-dir", out]) == 2
    assert "Did you mean 'fashion_mnist'" in capsys.readouterr().err
    assert main(["imagenet2012", "--data-dir", out]) == 2
    assert 'pip install -e ".[tf]"' in capsys.readouterr().err


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="source_dir"):
        prepare("cifar10", None, tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        prepare("cifar10", tmp_path / "nope", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset `name`='cifar1000'"):
        prepare("cifar1000", tmp_path, tmp_path)


@pytest.mark.skipif(not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"needs the four real MNIST .gz files in {SHARED_MNIST} "
                           "(or $JAXCNN_SHARED_DATA/mnist)")
def test_real_mnist_offline(tmp_path):
    assert main(["mnist", "--from", str(SHARED_MNIST), "--data-dir", str(tmp_path)]) == 0
    train = load("mnist", "train", data_dir=tmp_path)
    assert len(train) == 60_000
    assert len(load("mnist", "test", data_dir=tmp_path)) == 10_000
    assert np.bincount(train.labels).tolist() == MNIST_TRAIN_HISTOGRAM
    spec = _specs.SPECS["mnist"]  # the normalisation constants are those of the real data
    np.testing.assert_allclose(train.images.mean(dtype=np.float64) / 255, spec.mean[0], atol=1e-4)
    np.testing.assert_allclose(train.images.std(dtype=np.float64) / 255, spec.std[0], atol=1e-4)
    assert len(tfds.data_source("mnist", split="test", data_dir=tmp_path, download=False)) == 10_000


def test_image_size_pads_mnist_like_images(tmp_path):
    written = write_mnist_like(tmp_path / "raw")
    prepare("mnist", tmp_path / "raw", tmp_path / "out")
    native = load("mnist", "test", data_dir=tmp_path / "out")
    padded = load("mnist", "test", data_dir=tmp_path / "out", image_size=32)
    assert padded.image_shape == (32, 32, 1)
    reference = np.zeros((len(native), 32, 32, 1), np.uint8)
    reference[:, 2:30, 2:30] = native.images
    np.testing.assert_array_equal(padded.images, reference)
    assert _sorted_pairs(native.images[..., 0], native.labels) == _sorted_pairs(*written["test"])
    with pytest.raises(ValueError, match=r"`image_size` must be an int >= 28 for mnist"):
        load("mnist", "test", data_dir=tmp_path / "out", image_size=24)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (1, 7, 1), (5, 3, 3)])
def test_encode_png_decodes_with_pillow_to_the_same_pixels(shape):
    from PIL import Image

    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    with Image.open(io.BytesIO(_builders.encode_png(image))) as decoded:
        decoded.load()  # verifies every chunk's CRC and the zlib stream
        assert decoded.mode == ("L" if shape[-1] == 1 else "RGB")
        pixels = np.asarray(decoded)
    np.testing.assert_array_equal(pixels.reshape(shape), image)


def test_encode_png_rejects_what_png_grey_or_rgb_cannot_hold():
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 1\) or \(H, W, 3\).*float32"):
        _builders.encode_png(np.zeros((2, 2, 1), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 2, 4\)"):
        _builders.encode_png(np.zeros((2, 2, 4), np.uint8))
