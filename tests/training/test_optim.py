"""Optimizers by name equal Optax's; schedules; gradient clipping; decoupled decay vs L2."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn.training import create_train_state, make_optimizer, make_schedule, make_train_step
from jaxcnn.training.optim import OPTIMIZERS, SCHEDULES

LR, WD = 0.05, 0.1


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {"conv": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32),
                     "bias": jnp.asarray(rng.normal(size=(4,)), jnp.float32)},
            "bn": {"scale": jnp.asarray(rng.normal(size=(4,)), jnp.float32)},
            "dense": {"kernel": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)}}


def _grads(n, seed=1):
    rng = np.random.default_rng(seed)
    like = _params()
    return [jax.tree_util.tree_map(
        lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), like) for _ in range(n)]


def _kernel_mask(params):
    return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


def _run(tx, grads, params=None, *, apply=True):
    """Updates of ``tx`` for each gradient; params move by the updates unless ``apply=False``."""
    params = _params() if params is None else params
    state = tx.init(params)
    updates = []
    for g in grads:
        u, state = tx.update(g, state, params)
        updates.append(u)
        if apply:
            params = optax.apply_updates(params, u)
    return updates


def _assert_trees_equal(a, b, **tol):
    check = (np.testing.assert_allclose if tol else np.testing.assert_array_equal)
    jax.tree_util.tree_map(lambda x, y: check(x, y, **tol), a, b)


_OPTAX = {
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda lr: optax.rmsprop(lr, decay=0.9),
    "adam": lambda lr: optax.adam(lr),
    "adamw": lambda lr: optax.adamw(lr, weight_decay=WD, mask=_kernel_mask),
}


def test_every_optimizer_has_a_reference():
    assert set(_OPTAX) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("schedule", ["float", "callable"])
def test_optimizer_equals_optax(name, schedule):
    lr = LR if schedule == "float" else make_schedule("step", LR, total_steps=4, boundaries=(1,))
    kwargs = {"weight_decay": WD} if name == "adamw" else {}
    ours = _run(make_optimizer(name, lr, **kwargs), _grads(3))
    ref = _run(_OPTAX[name](lr), _grads(3))
    _assert_trees_equal(ours, ref)
    assert any(float(jnp.abs(u).max()) > 0 for u in jax.tree_util.tree_leaves(ours[-1]))


@pytest.mark.parametrize("name", ["rmsprop", "adam", "adamw"])
def test_optimizer_eps_is_forwarded(name):
    kwargs = {"weight_decay": WD} if name == "adamw" else {}
    grads = [jax.tree_util.tree_map(lambda g: 1e-3 * g, g) for g in _grads(2)]
    small = _run(make_optimizer(name, LR, eps=1e-8, **kwargs), grads)
    big = _run(make_optimizer(name, LR, eps=1.0, **kwargs), grads)
    ref_kwargs = {"weight_decay": WD, "mask": _kernel_mask} if name == "adamw" else {}
    ref = _run(getattr(optax, name)(LR, eps=1.0, **ref_kwargs), grads)
    _assert_trees_equal(big, ref)
    assert not np.allclose(small[0]["dense"]["kernel"], big[0]["dense"]["kernel"])


@pytest.mark.parametrize("momentum", [0.5, 0.99])
def test_momentum_argument(momentum):
    ours = _run(make_optimizer("nesterov", LR, momentum=momentum), _grads(2))
    ref = _run(optax.sgd(LR, momentum=momentum, nesterov=True), _grads(2))
    _assert_trees_equal(ours, ref)


def test_rmsprop_decay_argument():
    ours = _run(make_optimizer("rmsprop", LR, rmsprop_decay=0.5), _grads(2))
    _assert_trees_equal(ours, _run(optax.rmsprop(LR, decay=0.5), _grads(2)))


@pytest.mark.parametrize("name, close", [("adamm", "adam"), ("nesterv", "nesterov"),
                                         ("rmsprp", "rmsprop")])
def test_unknown_optimizer_did_you_mean(name, close):
    with pytest.raises(ValueError, match=rf"unknown optimizer '{name}'.*Did you mean '{close}'"):
        make_optimizer(name, 0.1)


def test_unknown_optimizer_without_close_match_lists_choices():
    with pytest.raises(ValueError, match="Choose one of sgd, momentum") as err:
        make_optimizer("lbfgs_xyz", 0.1)
    assert "Did you mean" not in str(err.value)


@pytest.mark.parametrize("name, close", [("warmup_cosin", "warmup_cosine"),
                                         ("stepp", "step"), ("exponentail", "exponential")])
def test_unknown_schedule_did_you_mean(name, close):
    with pytest.raises(ValueError, match=rf"unknown schedule '{name}'.*Did you mean '{close}'"):
        make_schedule(name, 0.1, total_steps=10)


def test_every_schedule_name_builds():
    for name in SCHEDULES:
        s = make_schedule(name, 0.1, total_steps=100, warmup_steps=10, boundaries=(50,))
        assert 0.0 <= float(s(99)) <= 0.1 + 1e-7


@pytest.mark.parametrize("lr", [0.0, -1.0])
def test_schedule_rejects_non_positive_learning_rate(lr):
    with pytest.raises(ValueError, match="learning_rate"):
        make_schedule("constant", lr, total_steps=10)


def test_step_schedule_needs_boundaries():
    with pytest.raises(ValueError, match="boundaries"):
        make_schedule("step", 0.1, total_steps=10)


def _values(schedule, steps):
    return np.array([float(schedule(t)) for t in steps])


def test_constant_schedule():
    np.testing.assert_allclose(_values(make_schedule("constant", 0.3, total_steps=5),
                                       [0, 1, 1000]), 0.3)


def test_step_schedule_boundaries():
    s = make_schedule("step", 0.1, total_steps=100, boundaries=(30, 60, 90), decay_rate=0.1)
    steps = [0, 29, 30, 59, 60, 89, 90, 99]
    expected = [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4]
    np.testing.assert_allclose(_values(s, steps), expected, rtol=1e-5)
    s = make_schedule("step", 1.0, total_steps=10, boundaries=(5,), decay_rate=0.5)
    np.testing.assert_allclose(_values(s, [4, 5]), [1.0, 0.5])


@pytest.mark.parametrize("decay_steps", [None, 20])
def test_exponential_schedule(decay_steps):
    s = make_schedule("exponential", 0.2, total_steps=50, decay_rate=0.5,
                      decay_steps=decay_steps)
    steps = np.array([0, 1, 10, 20, 50])
    expected = 0.2 * 0.5 ** (steps / (decay_steps or 50))
    np.testing.assert_allclose(_values(s, steps), expected, rtol=1e-5)


def test_inverse_time_schedule_is_keras_decay():
    s = make_schedule("inverse_time", 1e-4, total_steps=10, decay_rate=1e-6)
    steps = np.array([0, 1, 1000, 10 ** 6, 3 * 10 ** 6])
    np.testing.assert_allclose(_values(s, steps), 1e-4 / (1 + 1e-6 * steps), rtol=1e-6)
    assert float(jax.jit(s)(jnp.int32(10 ** 6))) == pytest.approx(5e-5, rel=1e-6)


@pytest.mark.parametrize("decay", [1e-6, 0.5])
def test_keras_rmsprop_with_decay(decay):
    """Keras ``RMSprop(lr=1e-4, decay=d)``: ``lr_t = 1e-4 / (1 + d t)``, ``t`` = updates so far."""
    tx = make_optimizer("rmsprop", make_schedule("inverse_time", 1e-4, total_steps=10,
                                                 decay_rate=decay))
    grads = _grads(4)
    params = _params()
    ours = _run(tx, grads, params)
    p = jax.tree_util.tree_map(np.float64, params)
    nu = jax.tree_util.tree_map(np.zeros_like, p)
    for t, g in enumerate(grads):
        lr_t = 1e-4 / (1 + decay * t)
        g = jax.tree_util.tree_map(np.float64, g)
        nu = jax.tree_util.tree_map(lambda n, gi: 0.9 * n + 0.1 * gi ** 2, nu, g)
        # optax puts eps (1e-8) inside the square root.
        expected = jax.tree_util.tree_map(lambda n, gi, lr=lr_t: -lr * gi / np.sqrt(n + 1e-8),
                                          nu, g)
        _assert_trees_equal(ours[t], expected, rtol=1e-5, atol=1e-12)


def test_warmup_cosine_schedule():
    s = make_schedule("warmup_cosine", 0.4, total_steps=100, warmup_steps=10)
    v = _values(s, range(101))
    assert v[0] == 0.0
    assert v[10] == pytest.approx(0.4) and v.max() == pytest.approx(0.4)
    np.testing.assert_allclose(v[:11], 0.4 * np.arange(11) / 10, rtol=1e-5, atol=1e-8)
    assert np.all(np.diff(v[:11]) > 0) and np.all(np.diff(v[10:]) <= 1e-9)
    assert v[100] == pytest.approx(0.0, abs=1e-7) and v[99] < 1e-3
    # Half-way through the cosine: half the peak.
    assert v[55] == pytest.approx(0.2, rel=1e-5)


def test_warmup_cosine_degenerate_warmup():
    # warmup >= total is clipped so the schedule is still defined and peaks.
    s = make_schedule("warmup_cosine", 0.4, total_steps=5, warmup_steps=50)
    v = _values(s, range(6))
    assert v[0] == 0.0 and v.max() == pytest.approx(0.4) and np.all(np.isfinite(v))


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_clip_norm_clips_global_norm(name):
    big = [jax.tree_util.tree_map(lambda g: 100.0 * g, g) for g in _grads(2)]
    assert float(optax.tree.norm(big[0])) > 10
    ours = _run(make_optimizer(name, LR, clip_norm=2.0), big)
    scales = [2.0 / float(optax.tree.norm(b)) for b in big]
    clipped = [jax.tree_util.tree_map(lambda g, c=c: g * c, b)
               for b, c in zip(big, scales, strict=True)]
    ref = _run(_OPTAX[name](LR), clipped)
    _assert_trees_equal(ours, ref, rtol=1e-5, atol=1e-8)
    if name == "sgd":
        assert float(optax.tree.norm(ours[0])) == pytest.approx(LR * 2.0, rel=1e-5)


def test_clip_norm_leaves_small_gradients_alone():
    small = [jax.tree_util.tree_map(lambda g: 1e-3 * g, g) for g in _grads(2)]
    _assert_trees_equal(_run(make_optimizer("momentum", LR, clip_norm=10.0), small),
                        _run(optax.sgd(LR, momentum=0.9), small))


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "rmsprop", "adam"])
def test_decoupled_weight_decay(name):
    """Decoupled decay (Loshchilov & Hutter): ``update = update_without_decay - lr * wd * p``.

    On kernels only; the optimizer's own statistics (momentum, second moments) never see the
    decay term. Params are held fixed so both runs see the same gradients and params.
    """
    grads, params = _grads(3), _params()
    decayed = _run(make_optimizer(name, LR, weight_decay=WD, decoupled_weight_decay=True),
                   grads, params, apply=False)
    plain = _run(make_optimizer(name, LR), grads, params, apply=False)
    mask = _kernel_mask(params)
    for d, u in zip(decayed, plain, strict=True):
        expected = jax.tree_util.tree_map(lambda ui, p, m: ui - LR * WD * p if m else ui,
                                          u, params, mask)
        _assert_trees_equal(d, expected, rtol=1e-5, atol=1e-7)
        _assert_trees_equal(d["conv"]["bias"], u["conv"]["bias"])
        _assert_trees_equal(d["bn"]["scale"], u["bn"]["scale"])


def test_adamw_is_adam_with_decoupled_decay():
    grads, params = _grads(3), _params()
    adamw = _run(make_optimizer("adamw", LR, weight_decay=WD), grads, params, apply=False)
    adam_dec = _run(make_optimizer("adam", LR, weight_decay=WD, decoupled_weight_decay=True),
                    grads, params, apply=False)
    _assert_trees_equal(adamw, adam_dec, rtol=1e-6, atol=1e-8)


def test_weight_decay_without_decoupling_leaves_optimizer_unchanged():
    # Coupled (L2) decay is a loss term added by the train step, not part of the optimizer.
    grads = _grads(2)
    _assert_trees_equal(_run(make_optimizer("adam", LR, weight_decay=WD), grads),
                        _run(optax.adam(LR), grads))


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(3)(nn.Conv(2, (3, 3))(x).reshape(x.shape[0], -1))


def _one_step(tx, l2):
    rng = np.random.default_rng(3)
    batch = {"image": rng.normal(size=(4, 4, 4, 1)).astype(np.float32),
             "label": rng.integers(0, 3, 4).astype(np.int32)}
    state = create_train_state(_Net(), tx, jax.random.PRNGKey(0), batch["image"])
    new, _ = jax.jit(make_train_step(l2_weight_decay=l2))(state, batch)
    return state.params, new.params


def test_l2_and_decoupled_decay_agree_for_sgd_only():
    """L2 (a loss term in the train step) adds ``wd * W`` to kernel gradients only.

    For plain SGD that is the decoupled ``lr * wd * W``; for Adam they differ: the L2
    gradient is rescaled by the second-moment estimate.
    """
    p0, base = _one_step(make_optimizer("sgd", LR), 0.0)
    _, l2 = _one_step(make_optimizer("sgd", LR), WD)
    grads = jax.tree_util.tree_map(lambda a, b: (a - b) / LR, p0, base)
    (dec,) = _run(make_optimizer("sgd", LR, weight_decay=WD, decoupled_weight_decay=True),
                  [grads], p0)
    for layer in ("Conv_0", "Dense_0"):
        kernel = p0[layer]["kernel"]
        np.testing.assert_allclose(l2[layer]["kernel"] - base[layer]["kernel"],
                                   -LR * WD * kernel, rtol=1e-4, atol=1e-7)
        np.testing.assert_array_equal(l2[layer]["bias"], base[layer]["bias"])
        np.testing.assert_allclose(kernel + dec[layer]["kernel"], l2[layer]["kernel"],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dec[layer]["bias"], base[layer]["bias"] - p0[layer]["bias"],
                                   rtol=1e-5, atol=1e-7)

    _, adam_l2 = _one_step(make_optimizer("adam", LR), WD)
    (adam_dec,) = _run(make_optimizer("adam", LR, weight_decay=WD,
                                      decoupled_weight_decay=True), [grads], p0)
    (adam_base,) = _run(make_optimizer("adam", LR), [grads], p0)
    k0 = p0["Dense_0"]["kernel"]
    np.testing.assert_allclose(adam_dec["Dense_0"]["kernel"],
                               adam_base["Dense_0"]["kernel"] - LR * WD * k0, rtol=1e-5,
                               atol=1e-7)
    # Adam's first step is ~ -lr * sign(g + wd * W) with L2: every entry moves by ~lr.
    l2_step = np.asarray(adam_l2["Dense_0"]["kernel"] - k0)
    np.testing.assert_allclose(np.abs(l2_step), LR, rtol=1e-3)
    assert not np.allclose(l2_step, adam_dec["Dense_0"]["kernel"], atol=1e-4)
