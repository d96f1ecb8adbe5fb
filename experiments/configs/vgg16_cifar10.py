"""VGG-16 with BatchNorm on CIFAR-10 (32x32 inputs; the dense head adapts to 1x1x512).

    python -m experiments.train --config experiments/configs/vgg16_cifar10.py --workdir /tmp/vgg
"""

from experiments.configs import resnet18_cifar10


def get_config():
    config = resnet18_cifar10.get_config()
    config.model = "vgg16_bn"
    config.model_options = {}
    config.learning_rate = 0.05
    return config
