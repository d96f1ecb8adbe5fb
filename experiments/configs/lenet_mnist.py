"""LeNet-5 (tanh, average pooling) on MNIST padded to 32x32, as in LeCun et al. 1998.

Target: >= 99.0% test accuracy within 5 minutes on 2 CPU cores (see benchmarks/RESULTS.md).
Prepare MNIST offline first:

    python -m jaxcnn.data.prepare mnist --from DIR_WITH_IDX_GZ --data-dir ~/tensorflow_datasets
    python -m experiments.train --config experiments/configs/lenet_mnist.py --workdir /tmp/lenet
"""

from experiments.configs import default


def get_config():
    config = default.get_config()
    config.model = "lenet5"
    config.dataset = "mnist"
    config.image_size = 32
    config.batch_size = 128
    config.num_epochs = 12
    config.learning_rate = 0.05
    config.weight_decay = 1e-4
    config.log_every_steps = 100
    config.checkpoint_every_steps = 2000
    return config
