"""Keras reference models for the weight-import parity tests (Keras 3, JAX backend, no TF).

Cost notes: a ``keras.applications`` model draws its initial weights with one JAX random
program per variable shape, which compiles (seconds per model on a loaded CPU); the tests
overwrite every weight anyway, so :func:`build` draws the initial values with numpy instead
(:func:`_numpy_initializers`, best effort: Keras is used as is if its internals moved). The
reference forward pass runs through ``Model.predict`` (one compiled program, several times
cheaper than eager op-by-op calls on DenseNet).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest


def import_keras():
    """Keras on the JAX backend, or skip with the reason."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip(
        "keras", reason="keras (the test extra) builds the reference models")
    if keras.backend.backend() != "jax":
        pytest.skip(f"the parity tests need KERAS_BACKEND=jax, got {keras.backend.backend()!r}")
    return keras


@contextlib.contextmanager
def _numpy_initializers(keras, rng: np.random.Generator):
    try:
        from keras.src import backend
        random = backend.random
        saved = {name: getattr(random, name) for name in ("uniform", "normal",
                                                          "truncated_normal")}
    except (ImportError, AttributeError):   # private API moved: just be slower
        yield
        return

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return rng.uniform(minval, maxval, shape).astype(dtype or "float32")

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return (mean + stddev * rng.standard_normal(shape)).astype(dtype or "float32")

    random.uniform, random.normal, random.truncated_normal = uniform, normal, normal
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(random, name, fn)


def randomize(model, seed: int) -> None:
    """Every weight random: Keras' own zeros and ones would leave the bias and BatchNorm
    conversions untested.

    Kernels He-normal (``sqrt(2 / fan_in)``), biases and BatchNorm betas / moving means
    ``N(0, 0.1^2)``, gammas ``U(0.1, 0.4)``, moving variances ``U(0.5, 1.5)``;
    :func:`calibrate` then rescales the moving statistics.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            name, shape = weight.path.rsplit("/", 1)[-1], tuple(weight.shape)
            if name in ("kernel", "pointwise_kernel"):
                value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
            elif name == "depthwise_kernel":
                value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-2]))
            elif name == "gamma":   # < 1: residual streams stay O(1) (see calibrate)
                value = rng.uniform(0.1, 0.4, shape)
            elif name == "moving_variance":
                value = rng.uniform(0.5, 1.5, shape)
            else:   # bias, beta, moving_mean
                value = 0.1 * rng.standard_normal(shape)
            values.append(value.astype(np.float32))
        if values:
            layer.set_weights(values)


def calibrate(keras, model, x: np.ndarray, seed: int) -> None:
    """Moving statistics near the real ones, randomly perturbed, so activations stay O(1).

    With fixed random statistics BatchNorm does not normalise, and through ResNet-50's or
    Xception's residual additions the activations grow to 1e3..1e7, where a 1e-4 absolute
    comparison is meaningless (gammas below 1 help too). One training-mode pass with
    ``momentum=0`` (a single compiled ``stateless_call``) sets every moving mean/variance to
    its batch statistics on ``x``; they are then perturbed (variance times ``U(0.8, 1.25)``,
    mean plus 0.05 standard deviations: larger factors compound over 50 BatchNorms) so that
    they differ from what the test batch gives.
    """
    import jax

    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        step = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=True)[1])
        state = step([v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables], x)
        for variable, value in zip(model.non_trainable_variables, state, strict=True):
            variable.assign(value)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
    rng = np.random.default_rng(seed)
    for layer in norms:
        gamma, beta, mean, var = (np.asarray(w) for w in layer.get_weights())
        std = np.sqrt(var)
        layer.set_weights([gamma, beta,
                           (mean + 0.05 * std * rng.standard_normal(mean.shape)).astype(np.float32),
                           (var * rng.uniform(0.8, 1.25, var.shape)).astype(np.float32)])


def build(keras, constructor: str, input_shape, num_classes: int, seed: int,
          calibrated: bool = True):
    """``keras.applications.<constructor>`` with random weights, logits (no softmax).

    ``calibrated=False`` skips :func:`calibrate` (a compilation of the training graph) for
    networks without residual additions, whose activations stay O(1) anyway (DenseNet).
    """
    with _numpy_initializers(keras, np.random.default_rng(seed)):
        model = getattr(keras.applications, constructor)(
            weights=None, input_shape=input_shape, classes=num_classes,
            classifier_activation=None)
    randomize(model, seed)
    if calibrated:
        # 16 images: at 32x32 the last stage is 1x1, so fewer give noisy variances.
        calibration = np.random.default_rng(seed + 1).standard_normal((16, *input_shape))
        calibrate(keras, model, calibration.astype(np.float32), seed)
    return model


def reference_outputs(keras, model, x: np.ndarray, layer_names) -> list[np.ndarray]:
    """``[logits, *features]`` of the Keras model on ``x`` (one compiled ``predict``)."""
    outputs = [model.output] + [model.get_layer(name).output for name in layer_names]
    probe = keras.Model(model.input, outputs)
    return [np.asarray(y) for y in probe.predict(x, batch_size=len(x), verbose=0)]
