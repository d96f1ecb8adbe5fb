"""``jaxcnn.data.load`` and ``Dataset``: digits offline, sharding, batching, both backends."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from jaxcnn.data import load, resize_center_crop, upsample_pad
from jaxcnn.data.dataset import _Preprocess
from tests.data._helpers import finish, python


@pytest.fixture(autouse=True)
def _no_home_cache(tmp_path, monkeypatch):
    """Default data dirs point into tmp: tests never write to ~/.cache or ~/tensorflow_datasets."""
    monkeypatch.setenv("JAXCNN_DATA_DIR", str(tmp_path / "jaxcnn_default"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_default"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One prepared copy of digits shared by the tests of this module."""
    path = tmp_path_factory.mktemp("data")
    load("digits", "test", data_dir=path)
    return path


@pytest.fixture(scope="module")
def train(data_dir):
    return load("digits", "train", data_dir=data_dir)


def _reference_digits(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 sklearn digits enlarged with np.kron + centred padding, independently."""
    digits = load_digits()
    factor = max(1, 3 * image_size // 32)
    images = np.round(digits.images * 255 / 16).astype(np.uint8)
    big = np.stack([np.kron(x, np.ones((factor, factor), np.uint8)) for x in images])
    pad = (image_size - 8 * factor) // 2
    out = np.zeros((len(images), image_size, image_size), np.uint8)
    out[:, pad:pad + 8 * factor, pad:pad + 8 * factor] = big
    return out[..., None], digits.target


def _pairs(images, labels):
    return sorted((int(y), x.tobytes()) for x, y in zip(images, labels, strict=True))


def test_digits_default_loads_offline_into_default_dir(tmp_path):
    ds = load("digits")  # no data_dir: prepared on first use into $JAXCNN_DATA_DIR
    assert (tmp_path / "jaxcnn_default" / "digits" / "1.0.0" / "dataset_info.json").is_file()
    assert len(ds) == 1437 and ds.num_classes == 10
    assert ds.images.shape == (1437, 32, 32, 1) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int32
    assert ds.info.features["label"].num_classes == 10


@pytest.mark.parametrize("image_size", [8, 16, 28, 32, 64])
def test_digits_are_the_real_sklearn_digits(data_dir, image_size):
    train = load("digits", "train", data_dir=data_dir, image_size=image_size)
    test = load("digits", "test", data_dir=data_dir, image_size=image_size)
    assert train.image_shape == test.image_shape == (image_size, image_size, 1)
    images = np.concatenate([train.images, test.images])
    labels = np.concatenate([train.labels, test.labels])
    assert _pairs(images, labels) == _pairs(*_reference_digits(image_size))


def test_digits_statistics_come_from_the_train_split(data_dir, train):
    pixels = _reference_digits(32)[0] / 255.0  # all digits; restrict to train via multiset
    train_pixels = train.images / 255.0
    np.testing.assert_allclose(train.mean, [train_pixels.mean()], rtol=1e-5)
    np.testing.assert_allclose(train.std, [train_pixels.std()], rtol=1e-5)
    test = load("digits", "test", data_dir=data_dir)
    np.testing.assert_array_equal(test.mean, train.mean)  # test is normalised like train
    assert abs(pixels.mean() - train.mean[0]) < 0.01


def test_unknown_name_suggests(data_dir):
    with pytest.raises(ValueError, match="Did you mean 'mnist'"):
        load("minst", data_dir=data_dir)
    with pytest.raises(ValueError, match="Did you mean 'cifar10'"):
        load("CIFAR-10", data_dir=data_dir)


def test_unknown_split_lists_available(data_dir):
    with pytest.raises(ValueError, match="unknown `split`='validation' for digits; available: "
                                         "train, test"):
        load("digits", "validation", data_dir=data_dir)


def test_split_slicing(data_dir):
    assert len(load("digits", "train[:10%]", data_dir=data_dir)) == 144


def test_missing_dataset_names_path_and_command(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load("cifar10", "train", data_dir=tmp_path / "nowhere")
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar10" / "3.0.2") in message
    assert (f"python -m jaxcnn.data.prepare cifar10 --from DIR --data-dir {tmp_path / 'nowhere'}"
            in message)
    assert "cifar-10-binary.tar.gz" in message


def test_imagenet_points_to_tfds_build_with_the_tf_extra(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'pip install -e "\.\[tf\]" && tfds build '
                                                r"imagenet2012 --manual_dir DIR"):
        load("imagenet2012", "validation", data_dir=tmp_path)


def test_missing_dataset_default_dirs_are_all_named(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load("mnist")
    assert str(tmp_path / "jaxcnn_default") in str(err.value)
    assert str(tmp_path / "tfds_default") in str(err.value)


def test_bad_image_size(data_dir):
    with pytest.raises(ValueError, match="image_size"):
        load("digits", data_dir=data_dir, image_size=4)
    with pytest.raises(ValueError, match="image_size"):
        upsample_pad(np.zeros((1, 8, 8, 1), np.uint8), 7)


@pytest.mark.parametrize("process_count", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [True, False])
def test_shards_are_disjoint_and_cover(train, process_count, shuffle):
    shards = [train.indices(seed=5, shuffle=shuffle, process_index=p, process_count=process_count)
              for p in range(process_count)]
    merged = np.concatenate(shards)
    assert len(merged) == len(set(merged.tolist())) == len(train)  # disjoint, covering
    equal = [train.indices(seed=5, shuffle=shuffle, process_index=p,
                           process_count=process_count, drop_remainder=True)
             for p in range(process_count)]
    assert {len(s) for s in equal} == {len(train) // process_count}  # same steps everywhere


def test_permutation_is_seeded_per_epoch(train):
    a = train.indices(seed=1, epoch=0)
    np.testing.assert_array_equal(a, train.indices(seed=1, epoch=0))
    assert not np.array_equal(a, train.indices(seed=1, epoch=1))
    assert not np.array_equal(a, train.indices(seed=2, epoch=0))
    np.testing.assert_array_equal(np.sort(a), np.arange(len(train)))


def test_bad_sharding_and_batching_arguments(train):
    with pytest.raises(ValueError, match="seed"):
        train.indices()
    with pytest.raises(ValueError, match="process_index"):
        train.indices(seed=0, process_index=2, process_count=2)
    with pytest.raises(ValueError, match="process_count"):
        train.indices(seed=0, process_count=0)
    with pytest.raises(ValueError, match="batch_size"):
        train.batches(0, seed=0)
    with pytest.raises(ValueError, match="backend"):
        train.batches(8, seed=0, backend="tf.data")


def test_training_batches(train):
    batches = list(train.batches(100, seed=3, epoch=2))
    assert len(batches) == train.num_batches(100) == 14
    order = train.indices(seed=3, epoch=2)
    for i, batch in enumerate(batches):
        chosen = order[i * 100:(i + 1) * 100]
        assert batch["image"].dtype == np.float32 and batch["label"].dtype == np.int32
        expected = (train.images[chosen] / 255.0 - train.mean) / train.std
        np.testing.assert_allclose(batch["image"], expected, atol=1e-5)
        np.testing.assert_array_equal(batch["label"], train.labels[chosen])


def test_evaluation_batches_visit_every_example_once(train):
    batches = list(train.batches(100, shuffle=False, drop_remainder=False, normalize=False))
    assert len(batches) == train.num_batches(100, drop_remainder=False) == 15
    assert len(batches[-1]["label"]) == 37
    images = np.concatenate([b["image"] for b in batches])
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images, train.images)


@pytest.mark.parametrize("kwargs", [
    dict(seed=0, shuffle=True, drop_remainder=True),
    dict(shuffle=False, drop_remainder=False, normalize=False),
    dict(seed=1, process_index=1, process_count=3, drop_remainder=False),
])
def test_grain_backend_yields_identical_batches(train, kwargs):
    memory = list(train.batches(64, backend="memory", **kwargs))
    grain = list(train.batches(64, backend="grain", **kwargs))
    assert len(memory) == len(grain)
    for a, b in zip(memory, grain, strict=True):
        assert a["image"].dtype == b["image"].dtype
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])


def test_grain_worker_process(data_dir):
    test = load("digits", "test", data_dir=data_dir)
    batches = list(test.batches(100, shuffle=False, drop_remainder=False, backend="grain",
                                worker_count=1))
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]), test.labels)


def test_tensorflow_free_prepare_and_read(tmp_path):
    """In a fresh interpreter where `import tensorflow` fails: prepare, load, tfds.data_source."""
    out = finish(python(f"""
        import sys
        import numpy as np
        import tensorflow_datasets as tfds
        import jaxcnn.data as data
        from jaxcnn.data.prepare import prepare
        from tests.data._helpers import write_mnist_like

        raw = write_mnist_like(__import__("pathlib").Path({str(tmp_path)!r}) / "raw")
        prepare("fashion_mnist", {str(tmp_path / "raw")!r}, {str(tmp_path / "out")!r})
        prepare("digits", None, {str(tmp_path / "out")!r})
        ds = data.load("fashion_mnist", "train", data_dir={str(tmp_path / "out")!r})
        assert sorted(ds.labels.tolist()) == sorted(raw["train"][1].tolist())
        batch = next(data.load("digits", data_dir={str(tmp_path / "out")!r}).batches(8, seed=0))
        assert batch["image"].shape == (8, 32, 32, 1)
        source = tfds.data_source("digits", split="test", data_dir={str(tmp_path / "out")!r},
                                  download=False)
        assert len(source) == 360 and source[0]["image"].shape == (8, 8, 1)
        assert "tensorflow" not in sys.modules
        print("TF-FREE OK")
    """))
    assert "TF-FREE OK" in out


def test_two_processes_get_disjoint_covering_shards(tmp_path):
    """Two interpreters race to prepare digits, then each reads its shard of one epoch."""
    code = """
        import numpy as np
        import jaxcnn.data as data
        index = {index}
        ds = data.load("digits", "train", data_dir={data_dir!r})
        batches = list(ds.batches(50, seed=7, epoch=1, drop_remainder=False, normalize=False,
                                  process_index=index, process_count=2))
        np.savez({out!r}, indices=ds.indices(seed=7, epoch=1, process_index=index,
                                              process_count=2),
                 labels=np.concatenate([b["label"] for b in batches]))
    """
    runs = [python(code.format(index=i, data_dir=str(tmp_path / "data"),
                               out=str(tmp_path / f"shard{i}.npz"))) for i in range(2)]
    for run in runs:
        finish(run)
    shards = [np.load(tmp_path / f"shard{i}.npz") for i in range(2)]
    a, b = (s["indices"] for s in shards)
    assert not set(a.tolist()) & set(b.tolist())
    assert sorted([*a.tolist(), *b.tolist()]) == list(range(1437))
    train = load("digits", "train", data_dir=tmp_path / "data")
    for shard in shards:
        np.testing.assert_array_equal(shard["labels"], train.labels[shard["indices"]])
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["digits"]  # no scratch


@pytest.mark.parametrize("shape", [(256, 320, 3), (320, 256, 3), (256, 256, 1)])
def test_resize_center_crop_without_resizing_is_a_centre_slice(shape):
    # short side 256 == round(224 / 0.875): no resampling, only the centred 224x224 window
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    top, left = (shape[0] - 224) // 2, (shape[1] - 224) // 2
    np.testing.assert_array_equal(resize_center_crop(image, 224),
                                  image[top:top + 224, left:left + 224])


@pytest.mark.parametrize("shape", [(100, 300, 3), (500, 120, 3), (7, 9, 3)])
def test_resize_center_crop_shapes(shape):
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    assert resize_center_crop(image, 64).shape == (64, 64, 3)


def test_imagenet_records_are_decoded_and_cropped():
    """The per-example path ImageNet takes: JPEG bytes -> centre crop, int32 label."""
    import io

    from PIL import Image

    image = np.random.default_rng(2).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).convert("CMYK").save(buffer, format="jpeg")  # CMYK exists there
    example = _Preprocess("imagenet2012", 3, 64)({"image": buffer.getvalue(), "label": 7})
    assert example["image"].shape == (64, 64, 3) and example["image"].dtype == np.uint8
    assert example["label"] == 7 and example["label"].dtype == np.int32
