"""Full MNIST training runs (minutes each): `make test-slow` or `pytest -m slow`."""

from pathlib import Path

import pytest

from benchmarks import mnist_accuracy

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.mark.slow
@pytest.mark.skipif(not (MNIST / "train-images-idx3-ubyte.gz").exists(),
                    reason=f"needs the real MNIST IDX files in {MNIST}")
def test_lenet_reaches_published_accuracy_within_five_minutes(tmp_path):
    for row in mnist_accuracy.run(MNIST, tmp_path):
        assert row["accuracy"] >= row["target"], row
        assert row["wall_s"] <= 300, row
