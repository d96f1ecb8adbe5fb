"""The README's functional-API example, run by `make train` until the training command lands.

It is executed verbatim by tests/test_readme.py, so the README cannot drift from working code.
"""

import jax
import jax.numpy as jnp

import jaxcnn
import jaxcnn.functional as F
from jaxcnn import filters

kx, kk = jax.random.split(jax.random.key(0))
x = jax.random.normal(kx, (8, 28, 28, 1))                # NHWC: a batch of 8 greyscale images
kernel = 0.1 * jax.random.normal(kk, (5, 5, 1, 6))       # HWIO: 6 filters of 5x5
h = F.relu(F.conv(x, kernel, stride=1, padding="SAME"))  # (8, 28, 28, 6)
h = F.max_pool(h, window=2)                              # (8, 14, 14, 6)
h, (mean, var) = F.batch_norm(h, None, None, jnp.zeros(6), jnp.ones(6), train=True)
grad = jax.grad(lambda k: F.conv(x, k, padding="VALID").sum())(kernel)  # pure: jit/vmap/grad
edges = filters.apply(x[0], filters.sobel(axis=1))      # classic image filtering, (28, 28, 1)
print(h.shape, grad.shape, edges.shape, F.conv_output_size(28, 5, stride=2))
print("parameters:", jaxcnn.count_params({"conv": kernel}))
