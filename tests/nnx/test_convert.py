"""``jaxcnn.nnx.from_linen`` / ``to_linen``: one set of weights for Linen and NNX."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxcnn import models
from jaxcnn.nnx import from_linen, to_linen

SMALL_RESNET = {"num_filters": 4, "stage_sizes": (1, 1), "cifar_stem": True}


def _random_variables(linen, shape, seed):
    """Linen ``init`` with every value then moved off its initial value (biases and
    statistics included), so a mix-up of two variables of one shape shows."""
    variables = linen.init(jax.random.key(seed), jnp.zeros((1, *shape)))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: a + np.abs(rng.standard_normal(a.shape)).astype(a.dtype),
                        variables)


def test_round_trip_and_outputs_match_linen():
    linen = models.create("resnet18", num_classes=5, **SMALL_RESNET)
    variables = _random_variables(linen, (32, 32, 3), 1)
    model = models.create("resnet18", num_classes=5, api="nnx", rngs=nnx.Rngs(0),
                          **SMALL_RESNET)
    assert from_linen(model, variables) is model
    jax.tree.map(np.testing.assert_array_equal, to_linen(model), variables)
    model.eval()
    x = jnp.asarray(np.random.default_rng(2).standard_normal((3, 32, 32, 3)), jnp.float32)
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(model, x),
                               jax.jit(linen.apply)(variables, x), rtol=1e-6, atol=1e-6)


def test_a_mismatch_names_the_path_and_both_shapes_and_changes_nothing():
    model = models.create("lenet5", num_classes=10, api="nnx", rngs=nnx.Rngs(0))
    before = to_linen(model)
    variables = models.create("lenet5", num_classes=7).init(jax.random.key(1),
                                                             jnp.zeros((1, 32, 32, 1)))
    with pytest.raises(ValueError, match=r"params/output/bias: `variables` has shape \(7,\), "
                                         r"the NNX model \(10,\)"):
        from_linen(model, variables)
    jax.tree.map(np.testing.assert_array_equal, to_linen(model), before)

    good = models.create("lenet5", num_classes=10).init(jax.random.key(1),
                                                         jnp.zeros((1, 32, 32, 1)))
    del good["params"]["c3"]
    with pytest.raises(ValueError, match=r"`variables` has no params/c3/bias \(shape \(16,\)\)"):
        from_linen(model, good)
    good = models.create("lenet5", num_classes=10).init(jax.random.key(1),
                                                         jnp.zeros((1, 32, 32, 1)))
    good["params"]["extra"] = {"kernel": np.zeros((2, 2))}
    with pytest.raises(ValueError, match=r"`variables` has params/extra/kernel \(shape "
                                         r"\(2, 2\)\), which the NNX model does not have"):
        from_linen(model, good)
    with pytest.raises(ValueError, match=r"collection\(s\) \['intermediates'\]"):
        from_linen(model, {**good, "intermediates": {}})
    with pytest.raises(TypeError, match=r"`variables` must be a Linen variables mapping"):
        from_linen(model, [1, 2])


def test_torchvision_weights_load_into_an_nnx_model(tmp_path):
    """A torchvision-layout state_dict imported for Linen (jaxcnn.weights.from_torchvision),
    loaded into the NNX model: its output is PyTorch's, on the same images."""
    torch = pytest.importorskip("torch")
    from jaxcnn.weights import from_torchvision
    from tests.weights import _torch_models as tm

    torch.manual_seed(0)
    reference = tm.ResNet(18, width=8, num_classes=10)
    rng = np.random.default_rng(1)
    tm.randomize(reference, torch.as_tensor(rng.standard_normal((8, 3, 32, 32)),
                                            dtype=torch.float32), seed=2)
    path = tmp_path / "resnet18.npz"
    np.savez(path, **{k: v.numpy() for k, v in reference.state_dict().items()})
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = reference.eval()(torch.as_tensor(x)).numpy()

    model = models.create("resnet18", num_classes=10, num_filters=8, api="nnx",
                          rngs=nnx.Rngs(0), input_shape=(32, 32, 3))
    from_linen(model, from_torchvision("resnet18", path, num_filters=8))
    model.eval()
    got = nnx.jit(lambda m, x: m(x))(model, jnp.asarray(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_zoo_model_built_on_given_variables_holds_them_and_checks_them():
    """ZooModel(variables=...) holds a Linen tree without initialising first (the training
    loop's NNX runs start from the Linen run's weights this way); a wrong tree is refused with
    the path and both shapes."""
    from jaxcnn.nnx import ZooModel

    linen = models.create("lenet5", num_classes=10)
    variables = linen.init(jax.random.key(3), jnp.ones((1, 32, 32, 1)))
    model = ZooModel(linen, (32, 32, 1), rngs=nnx.Rngs(0), variables=variables)
    model.eval()
    x = jax.random.normal(jax.random.key(4), (2, 32, 32, 1))
    np.testing.assert_array_equal(model(x), linen.apply(variables, x))
    wrong = jax.tree_util.tree_map(lambda a: a, variables)
    wrong["params"]["c3"]["kernel"] = jnp.zeros((5, 5, 6, 15))
    with pytest.raises(ValueError, match=r"params/c3/kernel: `variables` has shape "
                                         r"\(5, 5, 6, 15\), LeNet5 \(5, 5, 6, 16\)"):
        ZooModel(linen, (32, 32, 1), rngs=nnx.Rngs(0), variables=wrong)
    del wrong["params"]["c3"]
    with pytest.raises(ValueError, match=r"`variables` has no params/c3/bias"):
        ZooModel(linen, (32, 32, 1), rngs=nnx.Rngs(0), variables=wrong)
