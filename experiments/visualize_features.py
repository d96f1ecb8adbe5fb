"""Learned kernels and feature maps of the default run (LeNet-5 on the offline digits).

Loads the newest checkpoint of ``experiments/configs/default.py`` in ``--workdir`` (training
a short run of ``--steps`` steps first when there is none) and writes, next to it,
``kernels.png`` (C1's six 5x5 kernels) and ``feature_maps.png`` (one test digit at C1, S2,
C3, S4 (low and mid level) and C5, F6 (high level, vectors)):

    python -m experiments.visualize_features --workdir workdir/default
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

LAYERS = ("c1", "s2", "c3", "s4", "c5", "f6")


def restore_variables(config: Any, workdir: Path, num_classes: int, image_shape: tuple
                      ) -> tuple[Any, dict[str, Any], int]:
    """``(model, variables, step)`` from the newest checkpoint under ``workdir/checkpoints``.

    The ``like`` state is built as :func:`jaxcnn.training.loop.train` builds it (same model,
    optimizer and schedule), so that the optimizer state has the saved structure.
    """
    from jaxcnn import models
    from jaxcnn.training.checkpoint import Checkpointer
    from jaxcnn.training.optim import make_optimizer, make_schedule
    from jaxcnn.training.state import create_train_state

    model = models.create(config.model, num_classes=num_classes,
                          **dict(config.get("model_options") or {}))
    schedule = make_schedule(config.schedule, config.learning_rate, total_steps=1000,
                             warmup_steps=1, decay_rate=config.decay_rate, boundaries=[])
    tx = make_optimizer(config.optimizer, schedule, momentum=config.momentum,
                        weight_decay=config.weight_decay,
                        decoupled_weight_decay=config.weight_decay_mode == "decoupled",
                        clip_norm=config.grad_clip_norm)
    like = create_train_state(model, tx, jax.random.PRNGKey(config.seed),
                              jnp.zeros((1, *image_shape), jnp.float32))
    with Checkpointer(workdir / "checkpoints") as ckpt:
        if ckpt.latest_step() is None:
            raise FileNotFoundError(f"no checkpoint under {workdir / 'checkpoints'}")
        state = ckpt.restore_latest(like)
    variables = {"params": state.params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    return model, variables, int(state.step)


def main(argv: list[str] | None = None) -> tuple[Path, Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="workdir of a run of experiments/configs/default.py")
    parser.add_argument("--steps", type=int, default=200,
                        help="length of the short run made when there is no checkpoint")
    parser.add_argument("--index", type=int, default=0, help="which test image to show")
    args = parser.parse_args(argv)

    from experiments.configs import default
    from jaxcnn import data, visualize
    from jaxcnn.training.checkpoint import Checkpointer
    from jaxcnn.training.loop import train

    config = default.get_config()
    with Checkpointer(args.workdir / "checkpoints") as ckpt:
        trained = ckpt.latest_step() is not None
    if not trained:
        print(f"no checkpoint in {args.workdir}: training {args.steps} steps first")
        config.num_steps = args.steps
        train(config, args.workdir)
    test = data.load(config.dataset, "test", config.get("data_dir"),
                     image_size=config.image_size)
    model, variables, step = restore_variables(config, args.workdir, test.num_classes,
                                               test.image_shape)
    batch = next(iter(test.batches(args.index + 1, shuffle=False)))
    image, label = batch["image"][args.index], int(batch["label"][args.index])
    logits = model.apply(variables, image[None], train=False)
    print(f"checkpoint step {step}; test image {args.index}: label {label}, "
          f"predicted {int(jnp.argmax(logits))}")
    kernels = visualize.kernel_grid(variables["params"]["c1"]["kernel"],
                                    args.workdir / "kernels.png")
    maps = visualize.feature_maps(model, variables, image, LAYERS,
                                  args.workdir / "feature_maps.png")
    print(f"wrote {kernels} and {maps}")
    return kernels, maps


if __name__ == "__main__":
    main()
