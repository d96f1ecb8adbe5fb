"""lenet5_modern (ReLU + max pooling) on MNIST; target >= 99.3% within 5 minutes on 2 cores.

    python -m experiments.train --config experiments/configs/lenet_modern_mnist.py \
        --workdir /tmp/lenet_modern
"""

from experiments.configs import lenet_mnist


def get_config():
    config = lenet_mnist.get_config()
    config.model = "lenet5_modern"
    config.num_epochs = 15
    config.learning_rate = 0.05
    return config
