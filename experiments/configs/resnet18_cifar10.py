"""ResNet-18 with the CIFAR stem (3x3 conv, no max pool) on CIFAR-10.

The usual recipe: SGD momentum 0.9, batch 128, lr 0.1 with warmup + cosine, weight decay 5e-4,
200 epochs, random crop (pad 4) + horizontal flip: about 95% test accuracy. A GPU job, not a
laptop one (about 0.56 GFLOP per image forward).

    python -m jaxcnn.data.prepare cifar10 --from DIR --data-dir ~/tensorflow_datasets
    python -m experiments.train --config experiments/configs/resnet18_cifar10.py --workdir /tmp/r18
"""

from experiments.configs import default


def get_config():
    config = default.get_config()
    config.model = "resnet18"
    config.model_options = {"cifar_stem": True}
    config.dataset = "cifar10"
    config.image_size = None
    config.batch_size = 128
    config.num_epochs = 200
    config.learning_rate = 0.1
    config.warmup_epochs = 1.0
    config.weight_decay = 5e-4
    config.augment = (("random_crop", {"padding": 4}), ("random_flip", {}))
    config.log_every_steps = 100
    config.checkpoint_every_steps = 2000
    return config
