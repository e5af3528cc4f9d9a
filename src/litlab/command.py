"""What every command does around its work, from the command line (``litlab.cli``) or from
Python (``litlab.api``): the optional packages its choices need, named before Hydra starts;
the config's keys, to name the one a typo meant; and the run folder a failed command leaves.
"""

import importlib.util
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from litlab.errors import ConfigError, TrainingInterrupted, missing_extra
from litlab.ranks import is_launched_worker
from litlab.run_folder import leave_failure, remove_empty_parents, remove_if_unused

log = logging.getLogger(__name__)


# Command-line choices that need an optional package: (its module, pip extra).
PLUGINS = {
    "hparams_search=": ("optuna", "optuna"),  # litlab's own sweeper plugin runs on it
    "hydra/sweeper=optuna": ("optuna", "optuna"),
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "hydra/launcher=submitit": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}
HYDRAS_OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper"  # optuna < 3: it would take the name
# Options of a group that need an optional package (logger=[tensorboard,mlflow] too).
OPTION_PLUGINS = {"logger": {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}}


def require_plugins(args: list[str]) -> None:
    """Name the pip extra when a choice needs a package that is not installed (Hydra would only
    say that it cannot find the config), and Hydra's old Optuna sweeper when it is."""
    for arg in args:
        _require_option_plugins(arg)
        for prefix, (module, extra) in PLUGINS.items():
            if not arg.startswith(prefix) or arg.endswith("=null"):
                continue
            if not _installed(module):
                package = module.rpartition(".")[2].replace("_", "-")
                raise missing_extra(arg, package, extra)
            if extra == "optuna" and _installed(HYDRAS_OPTUNA_SWEEPER):
                raise ConfigError(
                    f"{arg} runs litlab's Optuna sweeper, but hydra-optuna-sweeper (Hydra's, for "
                    "optuna < 3, without pruning) is installed too and may take the name "
                    "hydra/sweeper=optuna. Remove it with: pip uninstall hydra-optuna-sweeper"
                )


def _require_option_plugins(arg: str) -> None:
    group, _, value = arg.partition("=")
    group = group.lstrip("+~")
    needs = OPTION_PLUGINS.get(group, {})
    for option in value.strip("[]").split(","):
        module, extra = needs.get(option.strip(), (None, None))
        if module is not None and not _installed(module):
            raise missing_extra(f"{group}={option.strip()}", module, extra)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # not even the hydra_plugins namespace: no plugin at all
        return False


def tidy_failed_run(cfg: DictConfig, error: BaseException, started: float | None) -> bool:
    """A run folder this command created holds nothing, or status.json with the reason; one it
    continues (resume) is left as it was, and so is a stopped one (it resumes). Says whether
    the folder was removed; a failure here does not hide the command's own error."""
    if cfg.get("resume") or is_launched_worker() or not HydraConfig.initialized():
        return False
    runtime = HydraConfig.get()
    run, log_name = Path(runtime.runtime.output_dir).resolve(), f"{runtime.job.name}.log"
    if cfg.get("ckpt_path") and run in Path(str(cfg.ckpt_path)).resolve().parents:
        return False  # resume=auto continues the run in its folder (resume is null by now)
    made_since = time.time() if started is None else started
    try:
        if isinstance(error, (TrainingInterrupted, KeyboardInterrupt)):
            remove_if_unused(run, log_name, made_since)
        else:
            leave_failure(run, log_name, error, made_since)
        if not run.exists() and cfg.get("paths"):
            remove_empty_parents(run, Path(cfg.paths.log_dir))
    except OSError as err:
        log.warning("Could not tidy the run folder %s after the failure (%s).", run, err)
    return not run.exists()


def config_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Every key of a config, dotted (``optimizer.lr``), without resolving interpolations."""
    keys = []
    plain = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    for key, value in plain.items():
        if key == "hydra":
            continue
        keys.append(f"{prefix}{key}")
        if isinstance(value, dict):
            keys += config_keys(value, f"{prefix}{key}.")
    return keys


def default_keys(config_name: str, args: list[str] | None = None) -> list[str]:
    """The keys of the entry config with the command line's group choices (model=cnn), to
    name the key a typo meant; none when even those do not compose."""
    from hydra.errors import HydraException

    from litlab.config import compose_overrides

    given = sys.argv[1:] if args is None else args
    choices = [arg for arg in given if "=" in arg and "." not in arg.split("=")[0]]
    try:
        return config_keys(compose_overrides(choices, config_name))
    except (HydraException, ValueError):
        return []
