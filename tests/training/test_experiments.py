"""Every experiment config loads and names its fields; the CLI prints the final JSON last."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcnn import models

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.stem for p in (ROOT / "experiments" / "configs").glob("*.py")
                 if p.stem != "__init__")
REQUIRED = ("model", "dataset", "data_dir", "batch_size", "num_epochs", "num_steps",
            "optimizer", "learning_rate", "parallel")


@pytest.mark.parametrize("name", CONFIGS)
def test_config_has_required_fields(name):
    config = importlib.import_module(f"experiments.configs.{name}").get_config()
    for field in REQUIRED:
        assert field in config, f"{name}.py lacks config.{field}"
    assert config.model in models.list_models()
    assert config.parallel in ("none", "pmap", "mesh")


def test_expected_configs_exist():
    assert {"default", "lenet_mnist", "lenet_modern_mnist", "resnet18_cifar10",
            "resnet50_imagenet", "vgg16_cifar10", "alexnet_imagenet"} <= set(CONFIGS)


def _run(args, tmp_path, timeout=600):
    env = {**os.environ, "JAXCNN_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_cli_default_config_short_run(tmp_path):
    proc = _run(["--config", "experiments/configs/default.py", "--workdir",
                 str(tmp_path / "run"), "--config.num_steps=6", "--config.log_every_steps=3",
                 "--config.augment=()"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    assert final["steps"] == 6 and final["dataset"] == "digits"
    assert final == json.loads((tmp_path / "run" / "final_metrics.json").read_text())


@pytest.mark.slow
def test_cli_resnet50_imagenet_smoke_on_fake_data(tmp_path):
    """The Flax ImageNet recipe's config compiles and steps (tiny batch, fake data).

    Slow (90 s on 2 cores, almost all of it compiling ResNet-50's train and eval steps); the
    default suite still loads every config and builds every model, and the same CLI path runs
    in test_cli_default_config_short_run.
    """
    proc = _run(["--config", "experiments/configs/resnet50_imagenet.py", "--workdir",
                 str(tmp_path / "run"), "--config.dataset=fake_imagenet", "--config.num_steps=2",
                 "--config.batch_size=8", "--config.eval_batch_size=128",
                 "--config.image_size=64", "--config.log_every_steps=1"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    assert final["steps"] == 2 and final["model"] == "resnet50"


def test_cli_rejects_missing_dataset(tmp_path):
    proc = _run(["--config", "experiments/configs/lenet_mnist.py", "--workdir",
                 str(tmp_path / "run"), f"--config.data_dir={tmp_path / 'empty'}"], tmp_path)
    assert proc.returncode != 0
    assert "python -m jaxcnn.data.prepare mnist" in proc.stderr
