"""jaxcnn: convolutional networks in JAX.

* :mod:`jaxcnn.functional` (``F``): pure functions — convolution in every variant, pooling,
  normalization, activations, dropout.
* :mod:`jaxcnn.filters`: classic image-processing kernels (Gaussian, Sobel, Gabor, ...).
* :mod:`jaxcnn.layers` (``L``), :mod:`jaxcnn.blocks`, :mod:`jaxcnn.models`: Flax linen
  modules on top of ``F``, and the model zoo (``jaxcnn.models.create(name)``).
* :mod:`jaxcnn.weights`: Keras / torchvision weight import, ``.safetensors`` export.
* :func:`intermediates` (named feature maps) and :func:`summary` (a Keras-style table).
"""

from jaxcnn import filters, functional, layers, weights
from jaxcnn._utils import count_params
from jaxcnn.inspect import intermediates, summary

__all__ = ["count_params", "filters", "functional", "intermediates", "layers", "summary", "weights"]
__version__ = "0.1.0"
