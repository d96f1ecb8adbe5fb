"""jaxcnn: convolutional networks in JAX.

* :mod:`jaxcnn.functional` (``F``): pure functions — convolution in every variant, pooling,
  normalization, activations, dropout.
* :mod:`jaxcnn.filters`: classic image-processing kernels (Gaussian, Sobel, Gabor, ...).
* :mod:`jaxcnn.layers` (``L``), :mod:`jaxcnn.blocks`, :mod:`jaxcnn.models`: Flax linen
  modules on top of ``F``, and the model zoo (``jaxcnn.models.create(name)``).
* :mod:`jaxcnn.weights`: Keras / torchvision weight import, ``.safetensors`` export.
* :func:`intermediates` (named feature maps) and :func:`summary` (a Keras-style table).

On import (Linux with glibc) jaxcnn sets three ``malloc`` options so that XLA:CPU's large
per-step buffers stay mapped between steps; ``JAXCNN_HOST_MALLOC=0`` leaves ``malloc`` alone
(see :mod:`jaxcnn._native.host_memory`).
"""

from jaxcnn._native import host_memory as _host_memory

# First, before any JAX computation allocates: XLA:CPU's per-step buffers then stay mapped
# (ResNet-18 trains 1.10x faster on CPU; jaxcnn/_native/host_memory.py has the measurements).
_host_memory.configure()

from jaxcnn import filters, functional, layers, weights  # noqa: E402
from jaxcnn._utils import count_params  # noqa: E402
from jaxcnn.inspect import intermediates, summary  # noqa: E402

__all__ = ["count_params", "filters", "functional", "intermediates", "layers", "summary", "weights"]
__version__ = "0.1.0"
