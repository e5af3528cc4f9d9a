"""What `litlab-train` and `litlab-eval` share: Hydra over conf/, and user errors reported as
one paragraph with exit status 2 instead of a traceback."""

import os
import sys
import textwrap
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from litlab import CONFIG_DIR, PROJECT_ROOT
from litlab.errors import LitlabError


def prepare_environment() -> None:
    """Set what conf/ reads from the environment (the project root for paths)."""
    os.environ.setdefault("LITLAB_ROOT", str(PROJECT_ROOT))


def compose_config(
    overrides: list[str], output_dir: str | Path, config_name: str = "train"
) -> DictConfig:
    """Compose conf/<config_name> as the command line would, with the run folder at
    ``output_dir``: for tests, notebooks and scripts that call ``train(cfg)`` directly."""
    prepare_environment()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def hydra_choices() -> dict[str, str]:
    """Chosen config group options ({"model": "cnn", ...}) when running under Hydra."""
    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items()}


def report_user_errors(task_function: Callable[[DictConfig], Any]) -> Callable:
    @wraps(task_function)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return task_function(cfg)
        except LitlabError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            message = textwrap.fill(
                f"Error: {err}", width=100, break_long_words=False, break_on_hyphens=False
            )
            sys.stderr.write(f"{message}\n(Set HYDRA_FULL_ERROR=1 for a traceback.)\n")
            sys.exit(2)

    return wrapper


def hydra_entry_point(config_name: str) -> Callable:
    """Decorate ``fn(cfg)`` into a console-script ``main()`` that composes conf/<config_name>."""

    def decorate(task_function: Callable[[DictConfig], Any]) -> Callable[[], None]:
        run = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(
            report_user_errors(task_function)
        )

        def main() -> None:
            prepare_environment()
            run()

        return main

    return decorate
