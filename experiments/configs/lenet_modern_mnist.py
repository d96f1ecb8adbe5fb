"""lenet5_modern (ReLU + max pooling) on MNIST; target >= 99.3% within 5 minutes on 2 cores.

Adds the classic MNIST augmentation: random shifts of up to 2 pixels (pad 2 with the border
value, crop back to 32x32), applied on the device inside the train step.

    python -m experiments.train --config experiments/configs/lenet_modern_mnist.py \
        --workdir /tmp/lenet_modern
"""

from experiments.configs import lenet_mnist


def get_config():
    config = lenet_mnist.get_config()
    config.model = "lenet5_modern"
    config.num_epochs = 15
    config.learning_rate = 0.05
    config.augment = (("random_crop", {"padding": 2, "padding_mode": "edge"}),)
    return config
