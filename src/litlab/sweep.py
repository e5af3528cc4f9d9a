"""The runtime side of a sweep (`python train.py -m ...`): a Hydra callback
(conf/hydra/default.yaml) that, after every job, records the job's outcome in
``<job>/status.json`` and rewrites the sweep summary, so the summary is complete also when a
sweep stops early; after the last job it ends the command with status 1 if a job failed. The
summary itself is files only: ``litlab.report.sweep``."""

import logging
import os
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from litlab.console import route_library_loggers
from litlab.errors import ConfigError, LitlabError, exit_with
from litlab.library_internals import job_error
from litlab.ranks import is_rank_zero
from litlab.report.sweep import SUMMARY_NAME, summarise_sweep, write_sweep_summary
from litlab.run_folder import STATUS, failed_job_status, write_job_status

log = logging.getLogger(__name__)


class FailedJob:
    """What a sweep job returns when it caught its own error: the sweep goes on, the callback
    records it. Not a number, so an Optuna search counts the trial as failed (a NaN would be a
    completed trial's value, which Optuna refuses, ending the whole search)."""

    def __init__(self, error: BaseException) -> None:
        self.status = failed_job_status(error)

    def __repr__(self) -> str:  # in Hydra's log file, where its Optuna sweeper records a failure
        return f"FailedJob({self.status['error'].split(':')[0]})"

    def __float__(self) -> float:
        raise TypeError(f"the job failed: {self.status['error']}")


class SweepSummary(Callback):
    """Only rank zero writes: the other tasks of a multi-task SLURM job (one per GPU) run the
    same Hydra job."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_optuna(config.hydra.sweeper):
            import optuna  # noqa: F401 - imported by its sweeper later; its logger is routed now
        route_library_loggers()
        if not is_rank_zero():
            return
        try:
            check_search(config.hydra.sweeper)
        except LitlabError as err:  # Hydra would turn a callback's exception into a warning
            exit_with(err)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        stale = Path(config.hydra.runtime.output_dir) / STATUS  # a rerun into the folder
        if config.hydra.mode == RunMode.MULTIRUN and is_rank_zero() and stale.is_file():
            stale.unlink()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or not is_rank_zero():
            return
        write_job_status(Path(config.hydra.runtime.output_dir), job_status(job_return))
        write_sweep_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        if not sweep.is_dir() or not is_rank_zero():
            return
        _, jobs = summarise_sweep(sweep)  # every job's status: also those run elsewhere
        failed = sum(job.status == "failed" for job in jobs)
        summary = sweep / f"{SUMMARY_NAME}.md"
        if failed:
            log.warning("%d of %d jobs failed; see %s", failed, len(jobs), summary)
            sys.exit(1)  # a SystemExit passes Hydra's callback guard: the command's status
        log.info("Sweep folder: %s (summary: %s)", sweep, summary)


def check_search(sweeper: DictConfig) -> None:
    """What an Optuna search refuses only once it runs, with a traceback from inside Optuna or
    SQLAlchemy: no trials, and a storage it cannot open."""
    if not is_optuna(sweeper):
        return
    for key in ("n_trials", "n_jobs"):
        value = sweeper.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(
                f"hydra.sweeper.{key}={value!r} is invalid: it must be a number >= 1, e.g. "
                f"hydra.sweeper.{key}={20 if key == 'n_trials' else 1}."
            )
    if sweeper.get("storage"):
        _check_storage(str(sweeper.storage))


def is_optuna(sweeper: DictConfig) -> bool:
    return "optuna" in str(sweeper.get("_target_", "")).lower()


def _check_storage(storage: str) -> None:
    from sqlalchemy.engine import make_url  # the optuna extra's; only for a search
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage)
    except ArgumentError:
        raise ConfigError(
            f"hydra.sweeper.storage={storage!r} is not a database URL. Keep the study in a "
            "file with sqlite:///<folder>/study.db (a relative path after three slashes, an "
            "absolute one after four), or in memory with hydra.sweeper.storage=null."
        ) from None
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        _check_writable_database(storage, Path(url.database))


def _check_writable_database(storage: str, database: Path) -> None:
    folder = database.parent
    if not folder.is_dir():
        problem = f"its folder {folder} does not exist"
    elif not os.access(folder, os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        problem = f"{database if database.exists() else folder} cannot be written"
    else:
        return
    raise ConfigError(
        f"hydra.sweeper.storage={storage!r} cannot be opened: {problem}. Create the folder or "
        "choose a writable one, e.g. hydra.sweeper.storage=sqlite:///outputs/study.db."
    )


def job_status(job_return: JobReturn) -> dict[str, Any]:
    """status.json of a finished job: ok with its return value, or failed with the error."""
    if job_return.status != JobStatus.COMPLETED:
        return failed_job_status(job_error(job_return))
    value = job_return.return_value
    if isinstance(value, FailedJob):
        return value.status
    return {"status": "ok", "return_value": _number(value)}


def record_failure(job: Path, error: BaseException) -> None:
    """status.json of a job that ends the sweep itself (stop_on_failure), before the callback
    would have written it."""
    if is_rank_zero():
        write_job_status(job, failed_job_status(error))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
