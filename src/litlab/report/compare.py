"""`litlab-runs FOLDER`: every finished run under a folder, from separate commands and sweeps
alike, in one table: the config keys that differ between them and their final metrics, runs
that differ only in ``seed`` grouped as in sweep summaries. Written as runs_comparison.csv,
.md and .png, from the run folders' files alone (no tracker needed)."""

import fnmatch
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from litlab.config import comparable_config
from litlab.errors import ConfigError
from litlab.metric_names import is_overall_metric
from litlab.record import local_time
from litlab.report import plots
from litlab.report.sweep import (
    GroupRow,
    JobRow,
    group_lines,
    seed_groups,
    summary_figure,
    write_csv,
    write_group_csv,
)
from litlab.run_folder import (
    CONFIG,
    HYDRA_RECORD,
    METRICS,
    RUN_RECORD,
    read_json_object,
    write_atomically,
)

COMPARISON_NAME = "runs_comparison"
MOST_BARS = 40  # in runs_comparison.png
LOWER_IS_BETTER = ("loss", "error", "mse", "mae")  # in a metric's name: sorted lowest first
# What a run folder holds besides its files; never another run.
NOT_RUNS = {HYDRA_RECORD, "checkpoints", "plots", "tensorboard", "csv", "wandb", "mlartifacts"}


@dataclass
class RunFilter:
    """Which runs to compare: all given conditions hold."""

    task: str | None = None
    tags: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    glob: str | None = None  # on the run folder's path below the compared folder

    def keeps(self, run: "ComparedRun") -> bool:
        started = run.started
        return (
            (self.task is None or run.task == self.task)
            and all(tag in run.tags for tag in self.tags)
            and (self.since is None or (started is not None and started >= self.since))
            and (self.until is None or (started is not None and started < self.until))
            and (self.glob is None or fnmatch.fnmatch(run.name, self.glob))
        )


@dataclass
class ComparedRun:
    folder: Path
    name: str  # the folder below the compared one: train/runs/2026-12-06_10-00-00
    task: str
    started: datetime | None  # local time, without a zone
    tags: list[str]
    config: dict[str, str]  # flat: model.hidden_size -> "256"
    metrics: dict[str, float]


def finished_runs(root: Path) -> list[Path]:
    """Run folders under ``root`` (itself included) that finished: config.yaml and metrics.json."""
    found = []
    for folder, subfolders, files in os.walk(root):
        if CONFIG in files and METRICS in files:
            found.append(Path(folder))
            subfolders.clear()  # a run's own folders hold no runs
        else:
            subfolders[:] = sorted(name for name in subfolders if name not in NOT_RUNS)
    return sorted(found)


def read_run(folder: Path, root: Path) -> ComparedRun | None:
    """A finished run as compared, or None when its files cannot be read."""
    try:
        config = yaml.safe_load(_newest(folder, CONFIG).read_text()) or {}
        metrics = read_json_object(folder / METRICS)
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(config, dict) or _is_evaluation(folder):
        return None
    return ComparedRun(
        folder=folder,
        name=folder.relative_to(root).as_posix() if folder != root else folder.name,
        task=str(config.get("task_name", "")),
        started=_started(folder),
        tags=[str(tag) for tag in config.get("tags") or []],
        config=comparable_config(config),
        metrics={key: float(value) for key, value in metrics.items() if _is_number(value)},
    )


def _newest(folder: Path, name: str) -> Path:
    """config.yaml, or the config.N.yaml of the run's latest resume."""
    stem, suffix = name.rsplit(".", 1)
    numbered = [
        path for path in folder.glob(f"{stem}.*.{suffix}") if path.stem[len(stem) + 1 :].isdigit()
    ]
    return max(numbered, key=lambda path: int(path.stem[len(stem) + 1 :]), default=folder / name)


def _is_evaluation(folder: Path) -> bool:
    """eval.py's folders hold the training run's config.yaml: not runs to compare."""
    try:
        return "evaluated" in read_json_object(folder / RUN_RECORD)
    except (OSError, ValueError):
        return False


def _started(folder: Path) -> datetime | None:
    try:
        started = datetime.fromisoformat(str(read_json_object(folder / RUN_RECORD)["started"]))
    except (OSError, ValueError, KeyError):
        return None
    return local_time(started)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_runs(
    root: Path,
    keep: RunFilter | None = None,
    sort: str | None = None,
    ascending: bool | None = None,
    out: Path | None = None,
) -> tuple[list[Path], str]:
    """Write the comparison of the finished runs under ``root`` into ``out`` (default: ``root``);
    return the files written and the table as markdown. ``sort``: any column (a metric, a config
    key, ``started``); by default the runs' optimized metric, best first."""
    keep = keep or RunFilter()
    everything = [run for folder in finished_runs(root) if (run := read_run(folder, root))]
    runs = [run for run in everything if keep.keeps(run)]
    if not runs:
        raise ConfigError(_nothing_found(root, len(everything)))
    keys = differing_keys(runs)
    metric, mode = _objective(runs)
    columns = _metric_columns(runs, metric)
    sort = sort or metric or "started"
    if ascending is None:
        ascending = _ascending_by_default(sort, metric, mode, columns)
    runs = _sorted(runs, sort, keys, columns, ascending)
    rows = [_job_row(run, keys) for run in runs]
    groups = seed_groups(rows, columns, metric, mode)
    header = ["run", "started", *keys, *columns]
    table = [_cells(run, keys, columns) for run in runs]
    out = out or root
    written = [write_csv(out / f"{COMPARISON_NAME}.csv", header, table)]
    if groups:
        written.append(write_group_csv(out / f"{COMPARISON_NAME}_by_group.csv", groups, columns))
    markdown = _markdown(root, header, table, sort, groups, columns, plotted=bool(metric))
    written.append(write_atomically(out / f"{COMPARISON_NAME}.md", markdown))
    if metric:  # the first runs (groups) in the table's order: a figure has room for so many
        figure = summary_figure(rows[:MOST_BARS], groups[:MOST_BARS], metric)
        written.append(plots.save(figure, out / f"{COMPARISON_NAME}.png"))
    return written, markdown


def differing_keys(runs: list[ComparedRun]) -> list[str]:
    """The config keys whose value is not the same in every run (absent counts as a value),
    each once: a key of the same name that follows another in every run (data.seed is
    ${seed}) is left out."""
    keys = sorted({key for run in runs for key in run.config}, key=lambda k: (k.count("."), k))
    kept: dict[tuple, str] = {}
    for key in keys:
        column = tuple(run.config.get(key) for run in runs)
        if len(set(column)) < 2:
            continue
        name = key.rsplit(".", 1)[-1]
        kept.setdefault((name, column), key)
    return sorted(kept.values())


def _objective(runs: list[ComparedRun]) -> tuple[str, str]:
    """The metric most runs optimize (their optimized_metric), with their monitor's mode."""
    named = Counter(
        (_first_objective(run.config), run.config.get("monitor.mode", "max"))
        for run in runs
        if _first_objective(run.config) in run.metrics
    )
    return named.most_common(1)[0][0] if named else ("", "max")


def _first_objective(config: dict[str, str]) -> str:
    """optimized_metric, or the first of several (flattened as a JSON list)."""
    named = config.get("optimized_metric", "")
    if named.startswith("["):
        try:
            return str((json.loads(named) or [""])[0])
        except ValueError:
            return ""
    return named


def _metric_columns(runs: list[ComparedRun], metric: str) -> list[str]:
    """The optimized metric, then the overall test metrics (validation ones without a test)."""
    names = {name for run in runs for name in run.metrics if is_overall_metric(name)}
    stage = "test/" if any(name.startswith("test/") for name in names) else "val/"
    chosen = sorted(name for name in names if name.startswith(stage) and name != metric)
    return ([metric] if metric else []) + chosen


def _sorted(
    runs: list[ComparedRun],
    column: str,
    keys: list[str],
    metrics: list[str],
    ascending: bool,
) -> list[ComparedRun]:
    known = {"run", "started", *keys, *metrics} | {key for run in runs for key in run.config}
    known |= {name for run in runs for name in run.metrics}
    if column not in known:
        raise ConfigError(
            f"--sort {column} is not a column of these runs. Sort by a metric ("
            f"{', '.join(metrics) or 'none finished'}), a config key (e.g. "
            f"{keys[0] if keys else 'optimizer.lr'}), run or started."
        )

    def value(run: ComparedRun) -> Any:
        raw = {"run": run.name, "started": run.started}.get(column)
        return run.metrics.get(column, run.config.get(column)) if raw is None else raw

    numbers = [(run, _as_number(value(run))) for run in runs]
    numeric = [(run, number) for run, number in numbers if number is not None]
    words = [run for run, number in numbers if number is None and _is_word(value(run))]
    missing = [run for run, number in numbers if number is None and not _is_word(value(run))]
    numeric.sort(key=lambda pair: pair[1], reverse=not ascending)
    words.sort(key=lambda run: str(value(run)), reverse=not ascending)
    return [run for run, _ in numeric] + words + missing  # a NaN or an absent value: last


def _ascending_by_default(column: str, objective: str, mode: str, metrics: list[str]) -> bool:
    """Best first for a metric (the objective by its mode; a loss or an error lowest first),
    the newest run first, a config key or a name in ascending order."""
    if column == objective:
        return mode == "min"
    if column in metrics or "/" in column:
        return any(word in column for word in LOWER_IS_BETTER)
    return column != "started"


def _is_word(value: Any) -> bool:
    """Text to sort as text: not absent and not a number (a NaN or inf counts as absent)."""
    if value is None or isinstance(value, (int, float, datetime)) or value in ("", "None"):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def _as_number(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _job_row(run: ComparedRun, keys: list[str]) -> JobRow:
    """The run as a sweep's job, so that seed groups and the figure read it the same way."""
    overrides = [f"{key}={run.config.get(key, '')}" for key in keys]
    return JobRow(run.name, run.folder, overrides, "ok", metrics=run.metrics)


def _cells(run: ComparedRun, keys: list[str], metrics: list[str]) -> list[str]:
    started = run.started.isoformat(sep=" ", timespec="seconds") if run.started else ""
    values = [json.dumps(run.metrics[name]) if name in run.metrics else "" for name in metrics]
    return [run.name, started, *[run.config.get(key, "") for key in keys], *values]


def _markdown(
    root: Path,
    header: list[str],
    table: list[list[str]],
    sort: str,
    groups: list[GroupRow],
    columns: list[str],
    plotted: bool,
) -> str:
    lines = [
        f"# Runs under {root}",
        "",
        f"{len(table)} finished runs, sorted by {sort}; the config keys shown are those that "
        "differ between them.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if name in columns else "---" for name in header) + "|",
    ]
    lines += [
        "| " + " | ".join(_short(cell).replace("|", "\\|") for cell in row) + " |" for row in table
    ]
    if groups:
        lines += group_lines(groups, columns, f"{COMPARISON_NAME}_by_group.csv")
    if plotted:
        shown = len(groups) if groups else len(table)
        first = f" (the first {MOST_BARS})" if shown > MOST_BARS else ""
        lines += ["", f"![{columns[0]} per run{first}]({COMPARISON_NAME}.png)"]
    return "\n".join(lines) + "\n"


def _short(cell: str) -> str:
    try:
        return f"{float(cell):.4g}" if "." in cell or "e" in cell.lower() else cell
    except ValueError:
        return cell


def _nothing_found(root: Path, finished: int) -> str:
    if finished:
        return (
            f"None of the {finished} finished runs under {root} passes the filters. Loosen them "
            "(--task, --tag, --since, --until, --glob), or list them all without filters."
        )
    return (
        f"No finished run under {root}: a finished run folder holds config.yaml and "
        "metrics.json. Give the folder your runs are in (outputs/, or a task's or a sweep's "
        "folder), after `python train.py` has finished one."
    )
