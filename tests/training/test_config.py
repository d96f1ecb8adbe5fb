"""Config fields: one accepted set; a misspelled or unknown field stops training at once."""

import types

import ml_collections
import pytest

from experiments import configs
from experiments.configs import default
from jaxcnn.training.config import DEFAULTS, FIELDS, REQUIRED, validate_config
from jaxcnn.training.loop import train


@pytest.mark.parametrize("name", configs.NAMES)
def test_every_shipped_config_validates(name):
    validate_config(configs.get_config(name))


def test_the_default_config_shows_every_accepted_field():
    assert set(default.get_config().keys()) == set(FIELDS)
    assert set(REQUIRED).isdisjoint(DEFAULTS)


def _small(**fields):
    config = default.get_config()
    config.num_steps, config.batch_size = 1, 8
    for k, v in fields.items():
        setattr(config, k, v)  # an unlocked ConfigDict takes a new field without complaint
    return config


def test_misspelled_field_stops_training_before_it_starts(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config field 'learning_rte'; did you mean "
                                         r"'learning_rate'\?.*accepted fields: .*"
                                         r"checkpoint_every_steps, .*weight_decay_mode"):
        train(_small(learning_rte=0.1), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing was written


def test_unknown_field_without_a_close_match_lists_the_accepted_ones():
    with pytest.raises(ValueError, match=r"unknown config fields 'colour', 'zzz'\. "
                                         r"The accepted fields: api, augment, batch_size, "):
        validate_config(_small(zzz=1, colour="red"))


@pytest.mark.parametrize("make", [dict, types.SimpleNamespace,
                                  lambda **kw: ml_collections.ConfigDict(kw)],
                         ids=["dict", "namespace", "ConfigDict"])
def test_any_config_type_is_checked(make):
    fields = dict(default.get_config())
    validate_config(make(**fields))
    with pytest.raises(ValueError, match="did you mean 'seed'"):
        validate_config(make(**fields, sed=1))


def test_missing_required_field_is_named():
    config = dict(default.get_config())
    del config["optimizer"]
    with pytest.raises(ValueError, match=r"missing required config field 'optimizer'"):
        validate_config(config)
    config = dict(default.get_config(), num_epochs=None, num_steps=None)
    with pytest.raises(ValueError, match=r"config\.num_epochs or config\.num_steps"):
        validate_config(config)
