"""The runtime side of a sweep (`python train.py -m ...`): a Hydra callback
(conf/hydra/default.yaml) that, after every job, records the job's outcome in
``<job>/status.json`` and rewrites the sweep summary, so the summary is complete also when a
sweep stops early; after the last job it ends the command with status 1 if a job failed. The
summary itself is files only: ``litlab.report.sweep``."""

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from litlab.console import route_library_loggers
from litlab.errors import ConfigError, exit_with
from litlab.library_internals import job_error
from litlab.ranks import is_rank_zero
from litlab.report.sweep import SUMMARY_NAME, summarise_sweep, write_sweep_summary
from litlab.run_folder import STATUS, failed_job_status, write_job_status

log = logging.getLogger(__name__)
HYDRAS_OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper"


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


class PrunedJob:
    """What a search's job returns when its pruner stopped it after ``epoch`` epochs, with the
    last ``value`` of the optimized metric: the study records a pruned trial, the summary a
    pruned job."""

    def __init__(self, epoch: int, value: float) -> None:
        self.epoch, self.value = epoch, value
        self.status = {"status": "pruned", "epoch": epoch, "return_value": _number(value)}

    def __repr__(self) -> str:
        return f"PrunedJob(epoch={self.epoch}, value={self.value})"


class SweepSummary(Callback):
    """Only rank zero writes: the other tasks of a multi-task SLURM job (one per GPU) run the
    same Hydra job."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_optuna(config.hydra.sweeper):
            import optuna  # noqa: F401 - imported by its sweeper later; its logger is routed now
        route_library_loggers()
        target = str(config.hydra.sweeper.get("_target_", ""))
        if target.startswith(HYDRAS_OPTUNA_SWEEPER) and is_rank_zero():
            exit_with(  # Hydra would turn a callback's exception into a warning
                ConfigError(
                    "hydra/sweeper=optuna is Hydra's own Optuna sweeper here (hydra-optuna-sweeper "
                    "is installed beside litlab's, and took the name): it needs optuna < 3 and "
                    "cannot prune. Remove it with: pip uninstall hydra-optuna-sweeper"
                )
            )

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


def is_optuna(sweeper: DictConfig) -> bool:
    return "optuna" in str(sweeper.get("_target_", "")).lower()


def job_status(job_return: JobReturn) -> dict[str, Any]:
    """status.json of a finished job: ok with its return value, or failed with the error."""
    if job_return.status != JobStatus.COMPLETED:
        return failed_job_status(job_error(job_return))
    value = job_return.return_value
    if isinstance(value, (FailedJob, PrunedJob)):
        return value.status
    if isinstance(value, (list, tuple)):  # several objectives
        return {"status": "ok", "return_value": [_number(item) for item in value]}
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
