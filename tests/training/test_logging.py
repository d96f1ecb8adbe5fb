"""MetricsLogger (JSON lines + TensorBoard), read_metrics and the PNG of the curves."""

import json

import numpy as np
import pytest

from jaxcnn.training.logging import MetricsLogger, plot_curves, read_metrics


def test_logger_writes_json_lines_and_tensorboard(tmp_path):
    workdir = tmp_path / "run"  # created by the logger
    with MetricsLogger(workdir) as log:
        log.write(1, {"train_loss": 2.5, "train_accuracy": 0.25})
        log.write(np.int64(2), {"eval_loss": np.float32(1.5).item(), "per_class": [0.5, 1.0],
                                "model": "lenet5"})
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 1, "train_loss": 2.5, "train_accuracy": 0.25},
        {"step": 2, "eval_loss": 1.5, "per_class": [0.5, 1.0], "model": "lenet5"}]
    assert read_metrics(log.path) == [json.loads(line) for line in lines]
    events = list((workdir / "tensorboard").iterdir())
    assert events and all(e.name.startswith("events.out.tfevents") for e in events)
    assert sum(e.stat().st_size for e in events) > 0


def test_logger_appends_across_instances(tmp_path):
    with MetricsLogger(tmp_path, tensorboard=False) as log:
        log.write(1, {"loss": 1.0})
    with MetricsLogger(tmp_path, tensorboard=False) as log:  # a resumed run
        log.write(2, {"loss": 0.5})
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]
    assert not (tmp_path / "tensorboard").exists()


def test_disabled_logger_writes_nothing(tmp_path):
    workdir = tmp_path / "not_process_0"
    log = MetricsLogger(workdir, enabled=False)
    log.write(1, {"train_loss": 1.0})
    log.close()
    assert not workdir.exists()


def test_read_metrics_skips_blank_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "a": 1}\n\n{"step": 2, "a": 2}\n  \n')
    assert read_metrics(path) == [{"step": 1, "a": 1}, {"step": 2, "a": 2}]


@pytest.fixture(scope="module")
def records():
    steps = np.arange(1, 41)
    train = [{"step": int(s), "train_loss": float(2.3 * np.exp(-s / 15)),
              "train_accuracy": float(1 - np.exp(-s / 10))} for s in steps]
    evals = [{"step": int(s), "eval_loss": float(2.0 * np.exp(-s / 20)),
              "eval_accuracy": float(0.9 * (1 - np.exp(-s / 12)))} for s in steps[9::10]]
    return sorted(train + evals, key=lambda r: r["step"])


def test_plot_curves_writes_a_non_trivial_png(tmp_path, records):
    import matplotlib.image

    out = plot_curves(records, tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 5_000
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (400, 1000)  # figsize (10, 4) at 100 dpi
    assert pixels[..., :3].std() > 0.01  # not a blank (single colour) image


def test_plot_curves_with_train_only_records(tmp_path):
    out = plot_curves([{"step": s, "train_loss": 1.0 / s} for s in range(1, 6)],
                      tmp_path / "train_only.png")
    assert out.stat().st_size > 5_000


def _read_records(path):
    """The TFRecords of ``path``, each checked against tensorboardX's own CRC-32C."""
    from tensorboardX.crc32c import crc32c

    def masked(data):
        crc = crc32c(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    blob, records, at = path.read_bytes(), [], 0
    while at < len(blob):
        header = blob[at:at + 8]
        (length,) = np.frombuffer(header, "<u8")
        assert int(np.frombuffer(blob[at + 8:at + 12], "<u4")[0]) == masked(header)
        data = blob[at + 12:at + 12 + int(length)]
        crc = blob[at + 12 + int(length):at + 16 + int(length)]
        assert int(np.frombuffer(crc, "<u4")[0]) == masked(data)
        records.append(data)
        at += 16 + int(length)
    return records


def test_tensorboard_events_parse_as_tensorflow_events(tmp_path):
    """The event file, read with tensorboardX's generated protobuf classes (a reference
    independent of jaxcnn's encoder): the version header, then each step's scalars."""
    from tensorboardX.proto.event_pb2 import Event

    with MetricsLogger(tmp_path) as log:
        log.write(7, {"train_loss": 2.5, "train_accuracy": 0.25, "model": "lenet5"})
        log.write(2**40, {"eval_loss": -1.5e-3, "per_class": [0.5, 1.0]})
        log.write(9, {"model": "lenet5"})  # no scalars: no event
    (path,) = (tmp_path / "tensorboard").iterdir()
    events = [Event.FromString(r) for r in _read_records(path)]
    assert events[0].file_version == "brain.Event:2"
    assert [e.step for e in events[1:]] == [7, 2**40]
    assert [[(v.tag, v.simple_value) for v in e.summary.value] for e in events[1:]] == [
        [("train_loss", 2.5), ("train_accuracy", 0.25)],
        [("eval_loss", np.float32(-1.5e-3))]]
    assert all(abs(e.wall_time - events[0].wall_time) < 60 for e in events)


def test_tensorboard_writer_leaves_the_environment_alone(tmp_path, monkeypatch):
    import os

    before = dict(os.environ)
    with MetricsLogger(tmp_path) as log:
        log.write(1, {"loss": 1.0})
    assert dict(os.environ) == before
