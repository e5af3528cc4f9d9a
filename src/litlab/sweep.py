"""The runtime side of a sweep (`python train.py -m ...`): a Hydra callback
(conf/hydra/default.yaml) that, after every job, records the job's outcome in
``<job>/status.json`` and rewrites the sweep summary, so the summary is complete also when a
sweep stops early; after the last job it ends the command with status 1 if a job failed. The
summary itself is files only: ``litlab.report.sweep``."""

import logging
import math
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from litlab.console import route_library_loggers
from litlab.library_internals import job_error
from litlab.ranks import is_rank_zero
from litlab.report.sweep import SUMMARY_NAME, summarise_sweep, write_sweep_summary
from litlab.run_folder import STATUS, failed_job_status, write_job_status

log = logging.getLogger(__name__)


class FailedJob:
    """What a sweep job returns when it caught its own error: the sweep goes on, the callback
    records it, and a search records a failed trial."""

    def __init__(self, error: BaseException) -> None:
        self.status = failed_job_status(error)

    def __repr__(self) -> str:  # in Hydra's own log lines about the job
        return f"FailedJob({self.status['error'].split(':')[0]})"


class PrunedJob:
    """What a search's job returns when its pruner stopped it after ``epoch`` epochs, with the
    last ``value`` of the optimized metric: the study records a pruned trial, the summary a
    pruned job."""

    def __init__(self, epoch: int, value: float) -> None:
        self.epoch, self.value = epoch, value
        self.status = {"status": "pruned", "epoch": epoch, "return_value": finite_number(value)}

    def __repr__(self) -> str:
        return f"PrunedJob(epoch={self.epoch}, value={self.value})"


class SweepSummary(Callback):
    """Only rank zero writes: the other tasks of a multi-task SLURM job (one per GPU) run the
    same Hydra job."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_optuna(config.hydra.sweeper):
            import optuna  # noqa: F401 - imported by its sweeper later; its logger is routed now
        route_library_loggers()

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
    """status.json of a finished job: ok with its return value(s), pruned (a search's pruner
    stopped it) with its epoch and last value, or failed with the error."""
    if job_return.status != JobStatus.COMPLETED:
        return failed_job_status(job_error(job_return))
    value = job_return.return_value
    if isinstance(value, (FailedJob, PrunedJob)):
        return value.status
    if isinstance(value, (list, tuple)):  # several objectives
        return {"status": "ok", "return_value": [finite_number(item) for item in value]}
    return {"status": "ok", "return_value": finite_number(value)}


def record_failure(job: Path, error: BaseException) -> None:
    """status.json of a job that ends the sweep itself (stop_on_failure), before the callback
    would have written it."""
    if is_rank_zero():
        write_job_status(job, failed_job_status(error))


def finite_number(value: Any) -> float | None:
    """A value for status.json: a finite number, else null (JSON has no NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
