"""The composed config: how it is made from conf/ and the checks it passes before anything is
built. Imports no torch until the chosen parts are checked, so the command line answers a typo
in a general key in a fraction of a second."""

from litlab.config.checks import config_errors, validate_config
from litlab.config.compose import (
    comparable_config,
    compose_config,
    compose_overrides,
    escaped,
    flatten,
    hydra_choices,
    hydra_spelling,
    in_multirun,
    plain_config,
    project_environment,
    quoted,
)
from litlab.config.recommended import apply_recommendations

__all__ = [
    "apply_recommendations",
    "compose_config",
    "compose_overrides",
    "config_errors",
    "comparable_config",
    "escaped",
    "hydra_choices",
    "hydra_spelling",
    "in_multirun",
    "flatten",
    "plain_config",
    "quoted",
    "project_environment",
    "validate_config",
]
