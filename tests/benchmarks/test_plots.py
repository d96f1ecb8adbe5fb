"""benchmarks/plots.py: figures of the recorded benchmark results, on a synthetic record."""

import doctest
from pathlib import Path

import pytest

from benchmarks import plots, run

RECORD = "\n".join([
    "# Measured results", "", "kept", "", run.BEGIN,
    "## Benchmark suite (issue 7): `python -m benchmarks.run`", "",
    "Command: `python -m benchmarks.run --models lenet5,resnet18`; 2031-02-03; whole suite "
    "535 s. Machine: Test CPU 9000, 4 cores; jax 0.10.2. Load average (1 min) 1.0.", "",
    "### Throughput: jaxcnn vs plain Flax vs PyTorch", "",
    "| model | framework | train images/s | inference images/s | jaxcnn / this, train |",
    "|---|---|---|---|---|",
    "| lenet5 (batch 256, 61,706 params) | jaxcnn | 18,428.3 (16762.9-20093.7) | 67908.9 | — |",
    "| lenet5 (batch 256, 61,706 params) | plain Flax | 4606.4 | 26445.0 | **4.00** |",
    "| lenet5 (batch 256, 61,706 params) | PyTorch NCHW | 14257.1 | n/a | **1.29** |",
    "| resnet18 (batch 128, 11,173,962 params) | jaxcnn | 70.9 | 245.3 | — |",
    "| resnet18 (batch 128, 11,173,962 params) | PyTorch NCHW | 56.8 | 172.1 | **1.25** |",
    "", "### Scaling (jaxcnn, LeNet-5 train step)", "",
    "| batch | images/s | step ms |", "|---|---|---|",
    "| 32 | 5076.4 | 6.3 |", "| 64 | 12383.1 | 5.2 |", "| 128 | 16845.8 | 7.6 |", "",
    "| path | devices | global batch | images/s | step ms | vs 1 device (none) |",
    "|---|---|---|---|---|---|",
    "| none | 1 | 256 | 17544.6 | 14.6 | 1.00 |",
    "| pmap | 1 | 256 | 20078.9 | 12.7 | 1.14 |", "| pmap | 2 | 256 | 21101.8 | 12.1 | 1.20 |",
    "| mesh | 1 | 256 | 20138.3 | 12.7 | 1.15 |", "| mesh | 2 | 256 | 17998.1 | 14.2 | 1.03 |",
    "", "### Time to 99.0% test accuracy on real MNIST", "",
    "| model | config | target | wall s to target | step | accuracy then |",
    "|---|---|---|---|---|---|",
    "| lenet5 | `a.py` | 99.0% | **28** | 1872 | 99.04% |",
    "| lenet5_modern | `b.py` | 99.0% | **52** | 2808 | 99.11% |",
    run.END, "", "| model | framework | train images/s | inference images/s |", "|---|---|---|---|",
    "| vgg16 (batch 16) | jaxcnn | 2.7 | 9.3 |", ""])


def test_parse_reads_only_the_run_section():
    r = plots.parse_results(RECORD)
    assert (r["date"], r["machine"]) == ("2031-02-03", "Test CPU 9000, 4 cores")
    assert [(t["model"], t["framework"]) for t in r["throughput"]][:2] == [
        ("lenet5", "jaxcnn"), ("lenet5", "plain Flax")]
    assert len(r["throughput"]) == 5  # the vgg16 table after the end marker is not read
    assert r["throughput"][0]["train"] == 18428.3 and r["throughput"][2]["infer"] is None
    assert [b["batch"] for b in r["batch_scaling"]] == [32, 64, 128]
    assert [(d["path"], d["devices"]) for d in r["device_scaling"]][:2] == [("none", 1),
                                                                           ("pmap", 1)]
    assert [(t["model"], t["wall_s"]) for t in r["time_to_accuracy"]] == [
        ("lenet5", 28.0), ("lenet5_modern", 52.0)]
    with pytest.raises(ValueError, match="no benchmarks.run section"):
        plots.parse_results("# nothing recorded")


def test_figures_have_the_recorded_bars_lines_and_labels():
    r = plots.parse_results(RECORD)
    fig = plots.throughput_figure(r)
    assert "2031-02-03" in fig._suptitle.get_text() and "Test CPU 9000" in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes] == ["lenet5", "resnet18"]
    assert [len(ax.patches) for ax in fig.axes] == [3 * 2, 2 * 2]  # frameworks x modes
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights[0] == 0.0 and heights[-1] == 67908.9  # n/a drawn as an empty bar
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == [
        "jaxcnn", "PyTorch NCHW"]

    fig = plots.scaling_figure(r)
    batch, devices = fig.axes
    assert list(batch.lines[0].get_xdata()) == [32, 64, 128]
    assert list(batch.lines[0].get_ydata()) == [5076.4, 12383.1, 16845.8]
    assert [line.get_label() for line in devices.lines] == ["none", "pmap", "mesh"]
    assert list(devices.lines[1].get_xdata()) == [1, 2]
    assert "2031-02-03" in fig._suptitle.get_text()

    fig = plots.time_to_accuracy_figure(r)
    assert [p.get_width() for p in fig.axes[0].patches] == [28.0, 52.0]
    assert "99.0%" in fig._suptitle.get_text() and "Test CPU 9000" in fig._suptitle.get_text()


def test_write_figures_next_to_the_results_and_only_what_the_record_has(tmp_path):
    record = tmp_path / "RESULTS.md"
    record.write_text(RECORD)
    paths = plots.main(["--results", str(record)])
    assert [p.name for p in paths] == list(plots.FILES.values())
    for path in paths:
        assert path.parent == tmp_path and path.read_bytes().startswith(b"\x89PNG")
        assert path.stat().st_size > 10_000
        # Nothing is cut at the sides (a title longer than the axes once was): the outer
        # columns are background.
        from matplotlib import image as mpimg

        pixels = mpimg.imread(path)[..., :3]
        assert float(pixels[:, 0].min()) > 0.99 and float(pixels[:, -1].min()) > 0.99, path
    only_throughput = RECORD.split("### Scaling")[0] + run.END
    record.write_text(only_throughput)
    assert [p.name for p in plots.write_figures(record, tmp_path / "out")] == [
        "benchmark_throughput.png"]


def test_no_global_matplotlib_state():
    """Figures use their own Agg canvas: no pyplot import, no backend switch."""
    import matplotlib

    backend = matplotlib.rcParams._get_backend_or_none()
    plots.throughput_figure(plots.parse_results(RECORD)).savefig(
        __import__("io").BytesIO(), format="png")
    assert matplotlib.rcParams._get_backend_or_none() == backend
    source = Path(plots.__file__).read_text()
    assert "pyplot" not in source and "matplotlib.use(" not in source


def test_docstring_examples():
    failed, attempted = doctest.testmod(plots, optionflags=doctest.ELLIPSIS)
    assert failed == 0 and attempted > 0
