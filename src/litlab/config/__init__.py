"""The composed config: how it is made from conf/ and the checks it passes before anything is
built. Imports no torch, so the command line answers a typo in a fraction of a second."""

from litlab.config.checks import validate_config
from litlab.config.compose import (
    compose_config,
    escaped,
    hydra_choices,
    in_multirun,
    plain_config,
    project_environment,
)

__all__ = [
    "compose_config",
    "escaped",
    "hydra_choices",
    "in_multirun",
    "plain_config",
    "project_environment",
    "validate_config",
]
