"""jaxcnn.functional under ``jit``, without it (op by op) and under ``pmap``, against references.

``chex.variants`` runs each test with the function jitted and called eagerly (concrete
arrays: the shape and value checks and the oneDNN convolution's eager path); the convolution
(oneDNN's custom calls and gradients in every device's program) and dropout (the key, not the
device, fixes the mask) also pmapped over the 8 forced CPU devices, each device computing the
function on a copy of the inputs (the first device's result is compared). The references are
the float64 numpy loops of the other functional tests, numpy formulas, and, for gradients,
``lax.conv_general_dilated`` (``conv_backend("xla")``) computed outside any variant.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np

import jaxcnn.functional as F
from tests.functional.test_conv import ref_conv
from tests.functional.test_pooling import ref_pool

ALL = dict(with_jit=True, without_jit=True, with_pmap=True)
NO_PMAP = dict(with_jit=True, without_jit=True)  # nothing device-specific to check


def _normal(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


class FunctionalVariantsTest(chex.TestCase):

    @chex.variants(**ALL)
    def test_grouped_strided_conv_and_its_gradients(self):
        x, k, b = _normal((2, 9, 9, 4), 0), _normal((3, 3, 2, 6), 1), _normal((6,), 2)
        cotangent = _normal((2, 5, 5, 6), 3)

        def forward_and_grads(x, k, b):
            conv = lambda x, k: F.conv(x, k, b, stride=2, padding="SAME", groups=2)
            y, vjp = jax.vjp(conv, x, k)
            return y, vjp(cotangent)

        y, grads = self.variant(forward_and_grads)(x, k, b)
        np.testing.assert_allclose(y, ref_conv(x, k, b, stride=2, padding="SAME", groups=2),
                                   rtol=1e-5, atol=1e-5)
        with F.conv_backend("xla"):
            _, (dx, dk) = forward_and_grads(x, k, b)
        chex.assert_trees_all_close(grads, (dx, dk), rtol=1e-5, atol=1e-5)

    @chex.variants(**NO_PMAP)
    def test_max_and_avg_pool_with_padding_and_ceil_mode(self):
        x = _normal((2, 7, 6, 3), 4)
        pools = self.variant(lambda x: (
            F.max_pool(x, 3, 2, padding=1, ceil_mode=True),
            F.avg_pool(x, (2, 3), (2, 1), padding="SAME", count_include_pad=False)))
        got_max, got_avg = pools(x)
        np.testing.assert_allclose(
            got_max, ref_pool(x, "max", 3, 2, padding=1, ceil_mode=True), rtol=1e-6)
        np.testing.assert_allclose(
            got_avg, ref_pool(x, "avg", (2, 3), (2, 1), padding="SAME", count_include_pad=False),
            rtol=1e-5, atol=1e-6)

    @chex.variants(**NO_PMAP)
    def test_batch_norm_training_output_and_running_statistics(self):
        x = _normal((4, 5, 5, 3), 5) * 2.0 + 1.0
        scale, bias = _normal((3,), 6), _normal((3,), 7)
        mean, var = _normal((3,), 8), np.abs(_normal((3,), 9)) + 0.5
        norm = self.variant(lambda *a: F.batch_norm(*a, train=True, momentum=0.8, eps=1e-3))
        y, (new_mean, new_var) = norm(x, scale, bias, mean, var)
        x64 = x.astype(np.float64)
        mu, sigma2 = x64.mean((0, 1, 2)), x64.var((0, 1, 2))  # biased, as documented
        np.testing.assert_allclose(y, (x64 - mu) / np.sqrt(sigma2 + 1e-3) * scale + bias,
                                   rtol=1e-4, atol=1e-5)
        chex.assert_trees_all_close((new_mean, new_var),
                                    (0.8 * mean + 0.2 * mu, 0.8 * var + 0.2 * sigma2),
                                    rtol=1e-5, atol=1e-6)

    @chex.variants(**ALL)
    def test_dropout_mask_depends_only_on_the_key(self):
        """Same key, same mask, jitted, eager or on every device of a pmap."""
        x = jnp.asarray(np.abs(_normal((16, 32), 10)) + 0.1)
        key = jax.random.PRNGKey(3)
        eager = F.dropout(x, 0.25, key, train=True)
        got = self.variant(lambda x, key: F.dropout(x, 0.25, key, train=True))(x, key)
        kept = np.asarray(got) != 0
        np.testing.assert_array_equal(kept, np.asarray(eager) != 0)  # the same mask
        np.testing.assert_allclose(np.asarray(got)[kept], np.asarray(x)[kept] / 0.75, rtol=1e-6)
        assert 0.15 < 1 - kept.mean() < 0.35  # 512 draws of p = 0.25
