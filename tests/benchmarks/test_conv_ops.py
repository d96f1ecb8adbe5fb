"""benchmarks.conv_ops: the per-convolution tables run, and jaxcnn's convolutions are exact."""

import pytest

from benchmarks import conv_ops
from jaxcnn._native import onednn

SHAPES = [(8, 3, 4, 3, 1), (8, 4, 8, 1, 2)]


def test_timing_table_has_every_backend_and_the_ratios():
    torch = pytest.importorskip("torch")
    rows = conv_ops.measure(2, 1, SHAPES, torch=torch)
    assert [sorted(r["ms"]) for r in rows] == [["jaxcnn", "torch", "xla"]] * 2
    lines = conv_ops.table(rows, [1, 2]).splitlines()
    assert lines[0].endswith("| XLA/jaxcnn (3 ops) | jaxcnn/torch (3 ops) |")
    assert lines[-1].startswith("| **ResNet-18 total (x count)** |") and len(lines) == 5


def test_accuracy_against_float64_and_grouped_table():
    rows = conv_ops.accuracy(2, SHAPES).splitlines()[2:]
    errors = [float(e) for row in rows for e in row.split("|")[2:-1]]
    assert len(errors) == 12 and max(errors) < 1e-5
    line = conv_ops.grouped(1, [(2, 8, 4, 3, 1, 4)]).splitlines()[-1]
    assert line.startswith("| 2x8x8x4, 3x3, s1, groups 4 |")


def test_header_names_the_convolution_backend(capsys):
    conv_ops.main(["--accuracy", "--batch", "1"])
    assert onednn.status() in capsys.readouterr().out
