"""Before Hydra creates a run folder: a Hydra callback (conf/hydra/default.yaml) working on the
config Hydra composed for the run, so the command line needs no composition of its own. It
checks that the folder can be created, for ``resume=auto|force`` points Hydra at the run to
continue (``resume.continue_in_place``); for a sweep, it refuses resume and checks the sweep
folder."""

import copy
import errno
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
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from litlab.errors import ConfigError, LitlabError, exit_with, tracebacks_wanted
from litlab.ranks import is_launched_worker
from litlab.resume import continue_in_place, refuse_sweeps


class PrepareRunFolder(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_launched_worker():
            return  # rank zero prepared this run and started us in its folder
        with _errors_end_the_command(config):
            check_writable(Path(config.hydra.run.dir))
            continue_in_place(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_launched_worker():
            return
        with _errors_end_the_command(config):
            refuse_sweeps(config)
            check_writable(Path(config.hydra.sweep.dir))


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
    except LitlabError as err:
        if tracebacks_wanted():
            traceback.print_exc()
        exit_with(err)
    except Exception:  # noqa: BLE001 - a bug: its traceback, then stop
        traceback.print_exc()
        sys.exit(1)
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
