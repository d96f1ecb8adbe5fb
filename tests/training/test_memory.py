"""Host memory stays flat over a long run: 2,000 LeNet-5 steps on MNIST-shaped batches.

The real training loop (data pipeline, prefetch, metrics log, progress bar, a checkpoint every
500 steps as in the default config) runs in this process on ``fake_mnist`` (MNIST's split
sizes, images padded to LeNet-5's 32x32, random pixels: no download, no data-dependent
allocation), at batch 16 to keep the default suite quick. The resident set size is sampled at
every log point. From step 200 (after compilation) to step 2,000 it may grow by less than 5%,
and by less than 2% over the second half, where a per-step leak would show as steadily as in
the first but one-time allocations (the first checkpoint's buffers and thread pools) would not.
"""

import os
import sys

import pytest

from experiments.configs import default
from jaxcnn.training import loop

STEPS, WARMUP, LOG_EVERY = 2_000, 200, 100


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.optimized_xla  # 2000 steps
def test_rss_is_flat_over_2000_lenet_steps(tmp_path, monkeypatch):
    rss = {}

    class SamplingLogger(loop.MetricsLogger):
        def write(self, step, metrics):
            if "train_loss" in metrics:  # the training log points, not the final evaluation
                rss[step] = _rss_bytes()
            super().write(step, metrics)

    monkeypatch.setattr(loop, "MetricsLogger", SamplingLogger)
    config = default.get_config()
    config.dataset, config.image_size = "fake_mnist", 32
    config.num_steps, config.batch_size = STEPS, 16
    config.log_every_steps, config.checkpoint_every_steps = LOG_EVERY, 500
    config.eval_every_steps = 10 * STEPS  # only the final evaluation, after the last sample
    final = loop.train(config, tmp_path)
    assert final["steps"] == STEPS and max(rss) == STEPS
    series = {step: round(value / 2**20, 1) for step, value in sorted(rss.items())}
    growth = rss[STEPS] / rss[WARMUP] - 1
    late_growth = rss[STEPS] / rss[STEPS // 2] - 1
    print(f"RSS (MiB) by step: {series}; growth {100 * growth:+.2f}% from step {WARMUP}, "
          f"{100 * late_growth:+.2f}% over the second half")
    assert growth < 0.05, series
    assert late_growth < 0.02, series
