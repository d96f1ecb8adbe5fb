"""jaxcnn: convolutional networks in JAX.

* :mod:`jaxcnn.functional` (``F``): pure functions — convolution in every variant, pooling,
  normalization, activations, dropout.
* :mod:`jaxcnn.filters`: classic image-processing kernels (Gaussian, Sobel, Gabor, ...).
"""

from jaxcnn import filters, functional
from jaxcnn._utils import count_params

__all__ = ["count_params", "filters", "functional"]
__version__ = "0.1.0"
