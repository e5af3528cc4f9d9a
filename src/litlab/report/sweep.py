"""sweep_summary.csv, .md and .png of a multirun folder: one row per job, best first.

:class:`SweepSummary` is a Hydra callback (conf/hydra/default.yaml): after every job it records
the job's status in ``<job>/status.json`` and rewrites the summary, so the summary is complete
also when a sweep stops early. ``litlab-report <sweep>`` rebuilds it from the files alone.
"""

import csv
import io
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from litlab.report import plots
from litlab.report.files import write_atomically

log = logging.getLogger(__name__)

SUMMARY_NAME = "sweep_summary"


@dataclass
class JobRow:
    job: str
    folder: Path
    overrides: list[str]  # in the summary: only those that differ between jobs
    status: str  # ok, failed, or incomplete (still running, or killed)
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


# Set by SweepSummary at the end of a multirun, for the entry point's exit status.
failed_jobs_in_last_sweep = 0


def _rank_zero() -> bool:
    """False in the other tasks of a multi-task SLURM job (one per GPU): they run the same
    Hydra job, and only the first writes its records."""
    return os.environ.get("SLURM_PROCID", "0") == "0" and os.environ.get("RANK", "0") == "0"


class SweepSummary(Callback):
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        stale = Path(config.hydra.runtime.output_dir) / "status.json"  # a rerun into the folder
        if config.hydra.mode == RunMode.MULTIRUN and _rank_zero() and stale.is_file():
            stale.unlink()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or not _rank_zero():
            return
        job_folder = Path(config.hydra.runtime.output_dir)
        write_job_status(job_folder, job_return)
        write_sweep_summary(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global failed_jobs_in_last_sweep
        sweep = Path(config.hydra.sweep.dir)
        if not sweep.is_dir():
            return
        write_sweep_summary(sweep)
        rows = [read_job(folder) for folder in job_folders(sweep)]
        failed_jobs_in_last_sweep = sum(row.status == "failed" for row in rows)
        if failed_jobs_in_last_sweep:
            log.warning(
                "%d of %d jobs failed; see %s",
                failed_jobs_in_last_sweep,
                len(rows),
                sweep / f"{SUMMARY_NAME}.md",
            )


def write_job_status(job_folder: Path, job_return: JobReturn) -> None:
    if job_return.status == JobStatus.COMPLETED:
        if _recorded_failure(job_folder):
            return  # the job caught its own error, recorded it, and returned None
        status = {"status": "ok", "return_value": _number(job_return.return_value)}
        write_atomically(job_folder / "status.json", json.dumps(status, indent=2) + "\n")
    else:
        record_failure(job_folder, job_return._return_value)  # return_value would raise it


def record_failure(job_folder: Path, error: BaseException) -> None:
    if not _rank_zero():
        return
    first_line = (str(error).strip().splitlines() or [""])[0]
    status = {"status": "failed", "error": f"{type(error).__name__}: {first_line}"}
    write_atomically(job_folder / "status.json", json.dumps(status, indent=2) + "\n")


def _recorded_failure(job_folder: Path) -> bool:
    try:
        return json.loads((job_folder / "status.json").read_text())["status"] == "failed"
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_sweep_folder(path: Path) -> bool:
    return (path / "multirun.yaml").is_file() or bool(job_folders(path))


def job_folders(sweep: Path) -> list[Path]:
    """Hydra's job folders (<sweep>/<job number>/ by default): those with .hydra/overrides.yaml."""
    folders = [path.parent.parent for path in sweep.glob("*/.hydra/overrides.yaml")]
    return sorted(folders, key=lambda folder: (not folder.name.isdigit(), _job_order(folder)))


def _job_order(folder: Path) -> Any:
    return int(folder.name) if folder.name.isdigit() else folder.name


def read_job(folder: Path) -> JobRow:
    """A job's row; a job whose files cannot be read gets status ``unreadable`` and why."""
    row = JobRow(job=folder.name, folder=folder, overrides=[], status="incomplete")
    try:
        row.overrides = [str(item) for item in OmegaConf.load(folder / ".hydra" / "overrides.yaml")]
        if (folder / "metrics.json").is_file():
            row.status = "ok"
            row.metrics = dict(json.loads((folder / "metrics.json").read_text()))
        if (folder / "status.json").is_file():
            status = json.loads((folder / "status.json").read_text())
            row.status, row.error = status["status"], status.get("error", "")
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as err:
        row.status, row.error = "unreadable", f"{type(err).__name__}: {err}".splitlines()[0]
    return row


def optimized_metric(folders: list[Path]) -> tuple[str, str]:
    """The metric the sweep optimizes and its direction (max/min), from the jobs' configs."""
    for folder in folders:
        try:
            config = OmegaConf.load(folder / ".hydra" / "config.yaml")
            metric = OmegaConf.select(config, "optimized_metric", default=None)
            mode = OmegaConf.select(config, "monitor.mode", default=None)
        except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException):
            continue  # a damaged job; another one tells
        if metric:
            return str(metric), str(mode or "max")
    return "", "max"


def summary_metrics(rows: list[JobRow], metric: str) -> list[str]:
    """The optimized metric, then the overall test metrics the jobs report."""
    names = {name for row in rows for name in row.metrics if name.count("/") == 1}
    tests = sorted(name for name in names if name.startswith("test/"))
    return [metric, *[name for name in tests if name != metric]] if metric else tests


def sorted_rows(rows: list[JobRow], metric: str, mode: str) -> list[JobRow]:
    def key(row: JobRow) -> tuple[int, float]:
        value = row.metrics.get(metric, math.nan)
        if row.status != "ok" or not math.isfinite(value):
            return (1, 0.0)
        return (0, -value if mode == "max" else value)

    return sorted(rows, key=key)


def write_sweep_summary(sweep: Path) -> list[Path]:
    """Write sweep_summary.csv/.md/.png in ``sweep``; returns the files written."""
    folders = job_folders(sweep)
    metric, mode = optimized_metric(folders)
    rows = sorted_rows([read_job(folder) for folder in folders], metric, mode)
    columns = summary_metrics(rows, metric)
    _drop_shared_overrides(rows)
    table = [_table_row(rank, row, columns, sweep) for rank, row in enumerate(rows, start=1)]
    header = ["rank", "job", "status", "overrides", *columns, "error", "run_folder"]
    written = [
        _write_csv(sweep / f"{SUMMARY_NAME}.csv", header, table),
        _write_markdown(sweep, header, table, metric, mode),
    ]
    if rows and metric:
        labels = [" ".join(row.overrides) or row.job for row in rows]
        values = [
            row.metrics.get(metric, math.nan) if row.status == "ok" else math.nan for row in rows
        ]
        fig = plots.sweep_figure(labels, values, metric)
        written.append(plots.save(fig, sweep / f"{SUMMARY_NAME}.png"))
    return written


def _drop_shared_overrides(rows: list[JobRow]) -> None:
    """Keep the overrides that tell the jobs apart (optimizer.lr=0.01); those every job shares
    are in each job's .hydra/overrides.yaml."""
    if len(rows) < 2:
        return
    shared = set.intersection(*(set(row.overrides) for row in rows))
    for row in rows:
        row.overrides = [item for item in row.overrides if item not in shared]


def _table_row(rank: int, row: JobRow, columns: list[str], sweep: Path) -> list[str]:
    values = [json.dumps(row.metrics[name]) if name in row.metrics else "" for name in columns]
    folder = os.path.relpath(row.folder, sweep)
    return [str(rank), row.job, row.status, " ".join(row.overrides), *values, row.error, folder]


def _write_csv(path: Path, header: list[str], table: list[list[str]]) -> Path:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(table)
    return write_atomically(path, text.getvalue())


def _write_markdown(
    sweep: Path, header: list[str], table: list[list[str]], metric: str, mode: str
) -> Path:
    failed = sum(row[2] == "failed" for row in table)
    lines = [
        f"# Sweep summary: {sweep.name}",
        "",
        f"{len(table)} jobs: {sum(row[2] == 'ok' for row in table)} ok, {failed} failed, "
        f"{sum(row[2] in ('incomplete', 'unreadable') for row in table)} incomplete. Sorted by "
        f"{metric or 'job'} ({'higher' if mode == 'max' else 'lower'} is better).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if name in ("rank",) else "---" for name in header) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table]
    if metric and table:
        lines += ["", f"![{metric} per job]({SUMMARY_NAME}.png)"]
    return write_atomically(sweep / f"{SUMMARY_NAME}.md", "\n".join(lines) + "\n")
