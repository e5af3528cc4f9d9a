"""Before Hydra creates a run folder: a Hydra callback (conf/hydra/default.yaml) working on the
config Hydra composed for the run, so the command line needs no composition of its own. It
checks that the names that form folders stay inside theirs and that the folder can be created,
for ``resume=auto|force`` points Hydra at the run to continue (``resume.continue_in_place``);
for a sweep, it refuses resume and checks the sweep folder."""

import copy
import errno
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from litlab.config.recommended import Applied, applied_line, apply_recommendations
from litlab.errors import ConfigError, exit_with, tracebacks_wanted
from litlab.library_errors import translated
from litlab.ranks import is_launched_worker
from litlab.resume import continue_in_place, refuse_sweeps

log = logging.getLogger(__name__)

# Values that name one folder or file inside a folder litlab lays out (outputs/, the run folder
# and its checkpoints/), with a name that fits. Whole paths (hydra.run.dir, paths.log_dir, a
# dirpath) are the user's to choose and are not checked.
SINGLE_NAMES = {"task_name": "my_experiment", "hydra.job.name": "train"}
# The same per part of these groups (logger.tensorboard.name ...).
SINGLE_NAMES_PER_PART = {"logger": ("name", "version"), "callbacks": ("filename",)}
NAME_EXAMPLES = {"name": "my_logs", "version": "v1", "filename": "my_checkpoint"}


class PrepareRunFolder(Callback):
    def __init__(self) -> None:
        self.continuing: str | None = None  # logged once the run's log file is open
        self.recommended: list[Applied] = []  # likewise

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_launched_worker():
            return  # rank zero prepared this run and started us in its folder
        with _errors_end_the_command(config):
            # first: the stopped run's config, taken next, holds the recommendations it had,
            # and Hydra's own record of the run (.hydra/) is written after this
            self.recommended = apply_recommendations(config, quiet=True)
            self.continuing = prepare_run_folder(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_launched_worker():
            return
        with _errors_end_the_command(config):
            check_single_names(config)
            refuse_sweeps(config)
            check_writable(Path(config.hydra.sweep.dir))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Hydra sets up the run's logging after on_run_start: the lines go to the console
        and to the run's log file only now."""
        if self.recommended:
            log.info(applied_line(self.recommended))
            self.recommended = []
        if self.continuing:
            log.info(self.continuing)
            self.continuing = None


def prepare_run_folder(config: DictConfig) -> str | None:
    """Before a single run's folder is made (the command line's callback, litlab.api): names
    that stay one folder, a writable place, and the run ``resume`` continues (the line that
    says so, or None)."""
    check_single_names(config)
    check_writable(Path(config.hydra.run.dir))
    return continue_in_place(config)


@contextmanager
def _errors_end_the_command(config: DictConfig) -> Iterator[None]:
    """Hydra turns an exception raised in a callback into a warning and carries on: into a
    folder that cannot be written, or a new run instead of the one to continue. So the command
    ends here: one paragraph for a user error, a traceback for a bug."""
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(copy.deepcopy(config))  # ${hydra:...} in the folders resolves
    try:
        yield
    except OmegaConfBaseException:
        return  # a broken interpolation: Hydra names it in its own words when it reads it
    except Exception as err:  # noqa: BLE001 - a user's error or a library's refusal, else a bug
        user_error = translated(err)
        if user_error is None or tracebacks_wanted():
            traceback.print_exc()
        if user_error is None:
            sys.exit(1)
        exit_with(user_error)
    finally:
        hydra_config.cfg = previous


def check_writable(folder: Path) -> None:
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(
            f"The run folder {folder} cannot be created: {existing} is not a writable folder "
            f"({err.strerror}). Choose another place with hydra.run.dir=<folder> (with -m: "
            "hydra.sweep.dir=<folder>), or paths.log_dir=<folder> for all runs."
        ) from err


def check_single_names(config: DictConfig) -> None:
    """A name meant to be one folder or file (task_name=...) that holds a path (``..``, ``/``)
    would put files outside the folder it belongs in: refused before Hydra creates any."""
    for key, value in _single_names(config):
        if value is not None and _leaves_its_folder(str(value)):  # task_name=2024: an int
            task = key == "task_name"
            raise ConfigError(
                f"{key}={value} would put files outside "
                f"{config.paths.log_dir if task else 'the run folder'}: it names one folder or "
                "file there, so it cannot be '..' or hold '/' or '\\'. Give a plain name, e.g. "
                f"{key}={_example(key)}"
                + (
                    " (to choose the whole folder, set hydra.run.dir=<folder>, or "
                    "paths.log_dir=<folder> for all runs)."
                    if task
                    else "."
                )
            )


def _single_names(config: DictConfig) -> Iterator[tuple[str, Any]]:
    for key in SINGLE_NAMES:
        yield key, OmegaConf.select(config, key)
    for group, keys in SINGLE_NAMES_PER_PART.items():
        parts = config.get(group)
        for part, settings in parts.items() if isinstance(parts, DictConfig) else ():
            for key in keys if isinstance(settings, DictConfig) else ():
                if key in settings:
                    yield f"{group}.{part}.{key}", settings[key]


def _leaves_its_folder(name: str) -> bool:
    return name == ".." or any(separator in name for separator in ("/", "\\"))


def _example(key: str) -> str:
    return SINGLE_NAMES.get(key) or NAME_EXAMPLES[key.rsplit(".", 1)[-1]]
