"""bfloat16 compute with float32 parameters: a zoo model trained a few steps end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models
from jaxcnn.training import create_train_state, make_eval_step, make_optimizer, make_train_step


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    batch = {"image": rng.normal(size=(8, 32, 32, 1)).astype(np.float32),
             "label": rng.integers(0, 10, 8).astype(np.int32)}
    model = models.create("lenet5_modern", num_classes=10, dtype=jnp.bfloat16)
    state = create_train_state(model, make_optimizer("adam", 1e-3), jax.random.PRNGKey(0),
                               batch["image"])
    return model, state, batch


def _eqns(jaxpr):
    """All equations of ``jaxpr``, including those of nested (jit, custom_vjp...) jaxprs."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _eqns(inner)


def _float_leaves(tree):
    return [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]


def test_params_float32_and_compute_bfloat16(setup):
    model, state, batch = setup
    assert {x.dtype for x in _float_leaves(state.params)} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in _float_leaves(state.opt_state)} == {jnp.dtype(jnp.float32)}
    logits = jax.jit(lambda p, x: model.apply({"params": p}, x))(state.params, batch["image"])
    assert logits.dtype == jnp.bfloat16 and logits.shape == (8, 10)
    # The convolutions and matmuls themselves run in bfloat16 (not f32 then a final cast).
    jaxpr = jax.make_jaxpr(lambda p, x: model.apply({"params": p}, x, train=True))(
        state.params, batch["image"])
    heavy = [e for e in _eqns(jaxpr.jaxpr)
             if e.primitive.name in ("conv_general_dilated", "dot_general")]
    assert len(heavy) == 5  # c1, c3, c5, f6, output
    for eqn in heavy:
        assert all(v.aval.dtype == jnp.bfloat16 for v in eqn.invars), eqn
        assert eqn.outvars[0].aval.dtype == jnp.bfloat16, eqn


def test_train_steps_keep_float32_params_and_reduce_loss(setup):
    _, state, batch = setup
    step = jax.jit(make_train_step())
    losses = []
    for _ in range(4):
        state, metrics = step(state, batch)
        assert metrics["loss"].dtype == jnp.float32
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 4
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses  # a fixed batch: the loss goes down
    assert {x.dtype for x in _float_leaves(state.params)} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in _float_leaves(state.opt_state)} == {jnp.dtype(jnp.float32)}
    # Evaluation of the bfloat16 model: float32 loss sums, a full count.
    sums = jax.jit(make_eval_step(num_classes=10))(state, batch)
    assert sums["loss_sum"].dtype == jnp.float32 and np.isfinite(float(sums["loss_sum"]))
    assert int(sums["count"]) == 8
