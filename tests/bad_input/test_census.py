"""The census itself: every public name has bad-input rows (or a reasoned exemption), and the
rows are counted.

Run ``pytest -s tests/bad_input/test_census.py`` to print the count per namespace.
"""

from __future__ import annotations

import collections

from tests.bad_input import (
    test_data,
    test_functional,
    test_layers,
    test_models,
    test_nnx,
    test_nnx_layers,
    test_training,
)
from tests.bad_input._census import public_names

ALL = (test_functional.CASES + test_layers.CASES + test_models.CASES + test_data.CASES
       + test_training.CASES + test_nnx.CASES + test_nnx_layers.CASES)

# Public names with no bad-input row, and why none is needed.
EXEMPT = {
    **dict.fromkeys(
        ("functional.relu", "functional.leaky_relu", "functional.elu", "functional.sigmoid",
         "functional.tanh", "functional.softmax", "functional.log_softmax", "functional.gelu",
         "functional.swish"),
        "jax.nn / jnp re-exported unchanged (same numerics and gradients): element-wise, any "
        "shape; integer input is promoted exactly or rejected by jax itself"),
    "functional.rectify": "|x|: element-wise, defined for every real dtype and shape",
    "layers.ACTIVATIONS": "a dict of names; the names are checked by get_activation's rows",
    "augment.AUGMENTATIONS": "a dict of names; the names are checked by compose's rows",
    "data.SPECS": "a constant dict; names are looked up (with did-you-mean) by load's rows",
    "data.DatasetSpec": "a frozen dataclass of constants, built only by jaxcnn.data itself",
    "data.default_data_dir": "takes no arguments",
    "models.list_models": "takes no arguments",
    "models.APIS": "a tuple of names; the names are checked by create's unknown-api row",
    "training.TrainState": "a pytree container; what goes in is checked by create_train_state",
    "training.Strategy": "a frozen container built by make_strategy, whose rows cover it",
    "jaxcnn.count_params": "counts the entries of any pytree of arrays; nothing to reject",
    "nnx.register_native": "an extension hook; the layer it registers is checked by the "
                           "shape check in ZooModel's construction",
}

# The figure reported in issue 8 (the number of rows when this census was written); rows may
# be added, never silently dropped.
MIN_CASES = 609


def _targets() -> set[str]:
    return {f"{ns}.{name}" for ns, names in public_names().items() for name in names}


def test_every_public_name_has_a_row_or_an_exemption():
    covered = {case.target for case in ALL}
    missing = sorted(_targets() - covered - set(EXEMPT))
    assert not missing, f"public names without a bad-input row or an exemption: {missing}"


def test_rows_and_exemptions_name_public_names():
    unknown = sorted({case.target for case in ALL} - _targets())
    assert not unknown, f"rows for names that are not public: {unknown}"
    stale = sorted(set(EXEMPT) - _targets())
    assert not stale, f"exemptions for names that are not public: {stale}"
    both = sorted(set(EXEMPT) & {case.target for case in ALL})
    assert not both, f"exempt names that have rows (drop the exemption): {both}"


def test_case_count():
    """609 bad-input cases over 192 public names (the issue-8 figure)."""
    by_namespace = collections.Counter(case.target.split(".")[0] for case in ALL)
    pending = [case.id for case in ALL if case.pending]
    print(f"\nbad-input census: {len(ALL)} cases over "
          f"{len({case.target for case in ALL})} public names, {len(pending)} pending "
          f"(strict xfail); by namespace: {dict(sorted(by_namespace.items()))}")
    assert len(ALL) >= MIN_CASES
