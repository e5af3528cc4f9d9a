"""The runtime side of a sweep (`python train.py -m ...`): a Hydra callback
(conf/hydra/default.yaml) that, after every job, records the job's outcome in
``<job>/status.json`` and rewrites the sweep summary, so the summary is complete also when a
sweep stops early. The summary itself is files only: ``litlab.report.sweep``."""

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from litlab.library_internals import job_error
from litlab.ranks import is_rank_zero
from litlab.report.sweep import SUMMARY_NAME, failed_jobs, job_folders, write_sweep_summary
from litlab.run_folder import STATUS, failed_job_status, read_job_status, write_job_status

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """Only rank zero writes: the other tasks of a multi-task SLURM job (one per GPU) run the
    same Hydra job."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        stale = Path(config.hydra.runtime.output_dir) / STATUS  # a rerun into the folder
        if config.hydra.mode == RunMode.MULTIRUN and is_rank_zero() and stale.is_file():
            stale.unlink()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or not is_rank_zero():
            return
        record_job(Path(config.hydra.runtime.output_dir), job_return)
        write_sweep_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        if not sweep.is_dir() or not is_rank_zero():
            return
        write_sweep_summary(sweep)
        failed = len(failed_jobs(sweep))
        if failed:
            log.warning(
                "%d of %d jobs failed; see %s",
                failed,
                len(job_folders(sweep)),
                sweep / f"{SUMMARY_NAME}.md",
            )


def record_job(job: Path, job_return: JobReturn) -> None:
    """status.json of a finished job: ok with its return value, or failed with the error."""
    if job_return.status != JobStatus.COMPLETED:
        record_failure(job, job_error(job_return))
        return
    recorded = read_job_status(job)
    if recorded is not None and recorded["status"] == "failed":
        return  # the job caught its own error, recorded it, and returned None
    write_job_status(job, {"status": "ok", "return_value": _number(job_return.return_value)})


def record_failure(job: Path, error: BaseException) -> None:
    if is_rank_zero():
        write_job_status(job, failed_job_status(error))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
