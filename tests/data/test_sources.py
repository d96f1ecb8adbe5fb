"""Checked readers of the raw MNIST / CIFAR / digits files (no TFDS involved)."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from jaxcnn.data import _sources
from tests.data._helpers import MNIST_NAMES, idx_bytes, write_cifar, write_mnist_like

# The small fake files are not the standard sizes; one test checks that warning.
pytestmark = pytest.mark.filterwarnings("ignore:.*standard release")


def test_read_mnist_matches_written_arrays(tmp_path):
    arrays = write_mnist_like(tmp_path)
    out = _sources.read_mnist(tmp_path)
    for split, (images, labels) in arrays.items():
        assert out[split]["image"].shape == (len(labels), 28, 28, 1)
        np.testing.assert_array_equal(out[split]["image"][..., 0], images)
        np.testing.assert_array_equal(out[split]["label"], labels)


def test_read_mnist_accepts_uncompressed_files(tmp_path):
    arrays = write_mnist_like(tmp_path)
    for name in (n for pair in MNIST_NAMES.values() for n in pair):
        path = tmp_path / name
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    out = _sources.read_mnist(tmp_path)
    np.testing.assert_array_equal(out["test"]["label"], arrays["test"][1])


def test_nonstandard_counts_warn(tmp_path):
    write_mnist_like(tmp_path)
    with pytest.warns(UserWarning, match="standard release has 60,000"):
        _sources.read_mnist(tmp_path)


class TestMnistErrors:
    def test_missing_file_named(self, tmp_path):
        write_mnist_like(tmp_path)
        (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
        with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
            _sources.read_mnist(tmp_path)

    def test_truncated_gzip_reports_sizes(self, tmp_path):
        write_mnist_like(tmp_path)
        path = tmp_path / "train-images-idx3-ubyte.gz"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        expected = 16 + 12 * 28 * 28
        with pytest.raises(ValueError, match="truncated") as err:
            _sources.read_mnist(tmp_path)
        message = str(err.value)
        assert str(path) in message and f"{expected:,}" in message

    def test_truncated_raw_file_reports_sizes(self, tmp_path):
        write_mnist_like(tmp_path)
        path = tmp_path / "train-images-idx3-ubyte.gz"
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw[:-100]))  # complete gzip of a short IDX
        with pytest.raises(ValueError, match=re.escape(f"holds {len(raw) - 100:,} bytes")):
            _sources.read_mnist(tmp_path)

    def test_bad_magic_number(self, tmp_path):
        write_mnist_like(tmp_path)
        # labels file where the images file should be
        labels = (tmp_path / "train-labels-idx1-ubyte.gz").read_bytes()
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(labels)
        with pytest.raises(ValueError, match="magic number is 2049, expected 2051"):
            _sources.read_mnist(tmp_path)

    def test_wrong_image_size(self, tmp_path):
        write_mnist_like(tmp_path)
        bad = np.zeros((12, 32, 32), np.uint8)
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(bad)))
        with pytest.raises(ValueError, match=r"item shape \(32, 32\), expected \(28, 28\)"):
            _sources.read_mnist(tmp_path)

    def test_count_mismatch(self, tmp_path):
        write_mnist_like(tmp_path)
        labels = np.zeros(5, np.uint8)
        (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
        with pytest.raises(ValueError, match="has 7 images but .* has 5 labels"):
            _sources.read_mnist(tmp_path)

    def test_corrupt_gzip(self, tmp_path):
        write_mnist_like(tmp_path)
        path = tmp_path / "t10k-images-idx3-ubyte.gz"
        data = bytearray(path.read_bytes())
        data[-8] ^= 0xFF  # flip a CRC byte
        path.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="corrupt gzip data"):
            _sources.read_mnist(tmp_path)

    def test_label_out_of_range(self, tmp_path):
        write_mnist_like(tmp_path)
        labels = np.full(7, 10, np.uint8)
        (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
        with pytest.raises(ValueError, match="label 10 is out of range"):
            _sources.read_mnist(tmp_path)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_read_cifar_matches_written_records(tmp_path, name):
    written = write_cifar(tmp_path, name)
    with pytest.warns(UserWarning, match="standard release"):
        out, names = _sources.read_cifar(tmp_path, name)
    for split, (images, labels) in written.items():
        np.testing.assert_array_equal(out[split]["image"], images)
        for key, values in labels.items():
            np.testing.assert_array_equal(out[split][key], values)
    assert len(names["label"]) == (10 if name == "cifar10" else 100)


def test_read_cifar_from_extracted_folder(tmp_path):
    import tarfile

    written = write_cifar(tmp_path / "src", "cifar10")
    with tarfile.open(tmp_path / "src" / "cifar-10-binary.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    out, _ = _sources.read_cifar(tmp_path / "x", "cifar10")
    np.testing.assert_array_equal(out["test"]["image"], written["test"][0])


class TestCifarErrors:
    def test_missing_archive_names_it(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="cifar-10-binary.tar.gz"):
            _sources.read_cifar(tmp_path, "cifar10")

    def test_pickle_archive_is_refused_with_hint(self, tmp_path):
        (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"not read")
        with pytest.raises(FileNotFoundError, match="python-pickle version"):
            _sources.read_cifar(tmp_path, "cifar100")

    def test_truncated_archive_reports_sizes(self, tmp_path):
        write_cifar(tmp_path, "cifar10")
        path = tmp_path / "cifar-10-binary.tar.gz"
        path.write_bytes(path.read_bytes()[:3000])
        with pytest.raises(ValueError, match="truncated or corrupt archive") as err:
            _sources.read_cifar(tmp_path, "cifar10")
        assert "170,052,171 bytes" in str(err.value) and "3,000 bytes" in str(err.value)

    def test_bad_record_size(self, tmp_path):
        write_cifar(tmp_path, "cifar10", corrupt={"test_batch.bin": bytes(3073 * 2 + 5)})
        with pytest.raises(ValueError, match=r"test_batch.bin: 6,151 bytes .* 3073-byte record"):
            _sources.read_cifar(tmp_path, "cifar10")

    def test_missing_member(self, tmp_path):
        write_cifar(tmp_path, "cifar100", drop="test.bin")
        with pytest.raises(FileNotFoundError, match="no member cifar-100-binary/test.bin"):
            _sources.read_cifar(tmp_path, "cifar100")

    def test_wrong_label_names(self, tmp_path):
        write_cifar(tmp_path, "cifar10", corrupt={"batches.meta.txt": b"a\nb\n"})
        with pytest.raises(ValueError, match="2 label names, expected 10"):
            _sources.read_cifar(tmp_path, "cifar10")

    def test_label_out_of_range(self, tmp_path):
        record = np.zeros(3074, np.uint8)
        record[0] = 25  # coarse label (20 classes)
        write_cifar(tmp_path, "cifar100", corrupt={"test.bin": record.tobytes()})
        with pytest.raises(ValueError, match=r"test.bin \(coarse_label\): label 25"):
            _sources.read_cifar(tmp_path, "cifar100")


def test_digits_split_is_fixed_and_complete():
    from sklearn.datasets import load_digits

    digits = _sources.read_digits()
    reference = load_digits()
    assert len(digits["train"]["label"]) == 1437 and len(digits["test"]["label"]) == 360
    counts = np.bincount(digits["train"]["label"], minlength=10) + np.bincount(
        digits["test"]["label"], minlength=10)
    np.testing.assert_array_equal(counts, np.bincount(reference.target))
    assert digits["train"]["image"].dtype == np.uint8
    assert digits["train"]["image"].max() == 255
    # same split on every call
    np.testing.assert_array_equal(_sources.read_digits()["test"]["label"],
                                  digits["test"]["label"])
