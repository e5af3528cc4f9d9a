"""What every command does around its work (litlab.command): the extras its choices need,
the config's keys for a typo's "did you mean"."""

import sys

import pytest
from omegaconf import OmegaConf

from litlab.command import config_keys, require_plugins
from litlab.errors import ConfigError


@pytest.mark.parametrize("arg", ["logger=mlflow", "logger=[tensorboard,mlflow]", "+logger=mlflow"])
def test_a_logger_without_its_extra_is_named_before_hydra_starts(monkeypatch, arg):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(ConfigError) as err:
        require_plugins([arg])
    assert str(err.value) == (
        "logger=mlflow needs mlflow, which is not installed. Install it with: "
        'pip install -e ".[mlflow]"'
    )
    require_plugins(["logger=[tensorboard,csv]"])  # what is installed passes


def test_config_keys_are_dotted_without_hydras_node_or_resolving():
    cfg = OmegaConf.create(
        {
            "optimizer": {"lr": 0.1, "betas": [0.9, 0.99]},
            "seed": "${oc.env:NOPE}",
            "hydra": {"x": 1},
        }
    )
    assert config_keys(cfg) == ["optimizer", "optimizer.lr", "optimizer.betas", "seed"]
