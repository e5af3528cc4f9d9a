"""sweep_summary.csv, .md and .png of a multirun folder: one row per job, best first, built
from the files in the folder alone (``litlab.sweep`` calls it after every job,
``litlab-report <sweep>`` later)."""

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from litlab.metric_names import is_overall_metric
from litlab.report import plots
from litlab.run_folder import (
    CONFIG,
    HYDRA_OVERRIDES,
    HYDRA_RECORD,
    HYDRA_SETTINGS,
    METRICS,
    STATUS,
    is_finished,
    read_json_object,
    write_atomically,
)

SUMMARY_NAME = "sweep_summary"
PARETO_PLOT = "sweep_pareto.png"  # a search of several objectives: its Pareto front
RANKED = ("ok", "pruned")  # statuses with a value to rank: finished jobs, then pruned ones
GROUPS_NAME = "sweep_summary_by_group"  # jobs that differ only in their seed, as one row


@dataclass
class GroupRow:
    """Jobs that differ only in ``seed``: ``n`` of them finished, and per metric its mean,
    standard deviation (n - 1 in the denominator; none for one job), min and max."""

    label: str
    n: int  # finished jobs
    jobs: int  # all jobs of the group
    stats: dict[str, tuple[float, float, float, float]]


@dataclass
class JobRow:
    job: str
    folder: Path
    overrides: list[str]  # in the summary: only those that differ between jobs
    status: str  # ok, pruned (a search stopped it), failed, or incomplete (running, killed)
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def is_sweep_folder(path: Path) -> bool:
    return (path / "multirun.yaml").is_file() or bool(job_folders(path))


def job_folders(sweep: Path) -> list[Path]:
    """Hydra's job folders (<sweep>/<job number>/ by default): those with .hydra/overrides.yaml."""
    folders = [path.parent.parent for path in sweep.glob(f"*/{HYDRA_RECORD}/{HYDRA_OVERRIDES}")]
    return sorted(folders, key=lambda folder: (not folder.name.isdigit(), _job_order(folder)))


def _job_order(folder: Path) -> Any:
    return int(folder.name) if folder.name.isdigit() else folder.name


def read_job(folder: Path) -> JobRow:
    """A job's row; a job whose files cannot be read gets status ``unreadable`` and why."""
    row = JobRow(job=folder.name, folder=folder, overrides=[], status="incomplete")
    try:
        overrides = OmegaConf.load(folder / HYDRA_RECORD / HYDRA_OVERRIDES)
        row.overrides = [str(item) for item in overrides]
        if is_finished(folder):
            row.status = "ok"
            row.metrics = read_json_object(folder / METRICS)
        if (folder / STATUS).is_file():
            status = read_json_object(folder / STATUS)
            row.status, row.error = status["status"], status.get("error", "")
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as err:
        row.status, row.error = "unreadable", f"{type(err).__name__}: {err}".splitlines()[0]
    return row


def sweep_objectives(folders: list[Path]) -> list[tuple[str, str]]:
    """The metric(s) the sweep optimizes, each with its direction (max/min): from the jobs'
    configs (optimized_metric; a list for several objectives) and the sweeper's direction, or
    the monitor's mode for a sweep that states none."""
    for folder in folders:
        try:
            config = OmegaConf.load(folder / HYDRA_RECORD / CONFIG)
            metric = OmegaConf.select(config, "optimized_metric", default=None)
            mode = str(OmegaConf.select(config, "monitor.mode", default=None) or "max")
        except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException):
            continue  # a damaged job; another one tells
        if not metric:
            continue
        metrics = [str(m) for m in metric] if OmegaConf.is_list(metric) else [str(metric)]
        modes = _sweeper_modes(folder) or [mode] * len(metrics)
        if len(modes) == len(metrics):
            return list(zip(metrics, modes, strict=True))
        return [(name, mode) for name in metrics]
    return []


def _sweeper_modes(folder: Path) -> list[str]:
    """max/min per objective from the sweeper's direction (an Optuna search's); none for a
    sweeper without one, or one that cannot be read."""
    try:
        settings = OmegaConf.load(folder / HYDRA_RECORD / HYDRA_SETTINGS)
        given = OmegaConf.select(settings, "hydra.sweeper.direction", default=None)
    except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException):
        return []
    if given is None:
        return []
    return [str(d).lower()[:3] for d in (given if OmegaConf.is_list(given) else [given])]


def summary_metrics(rows: list[JobRow], objectives: list[str]) -> list[str]:
    """The optimized metric(s), then the overall test metrics the jobs report."""
    names = {name for row in rows for name in row.metrics if is_overall_metric(name)}
    tests = sorted(name for name in names if name.startswith("test/"))
    return [*objectives, *[name for name in tests if name not in objectives]]


def sorted_rows(rows: list[JobRow], metric: str, mode: str) -> list[JobRow]:
    """Finished jobs best first, then pruned ones (by their last value), then the rest."""

    def key(row: JobRow) -> tuple[int, float]:
        value = row.metrics.get(metric, math.nan)
        if row.status not in RANKED or not math.isfinite(value):
            return (2, 0.0)
        return (RANKED.index(row.status), -value if mode == "max" else value)

    return sorted(rows, key=key)


def pareto_front(rows: list[JobRow], objectives: list[tuple[str, str]]) -> list[JobRow]:
    """The finished jobs no other finished job beats in every objective (at least as good in
    all, better in one). Hand-written: Optuna computes the front from a live study, and the
    summary is built from the folder's files alone."""
    points = []
    for row in rows:
        values = [row.metrics.get(metric, math.nan) for metric, _ in objectives]
        if row.status == "ok" and all(math.isfinite(v) for v in values):
            signs = [1.0 if mode == "max" else -1.0 for _, mode in objectives]
            points.append((row, [sign * v for sign, v in zip(signs, values, strict=True)]))

    def beats(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and a != b

    return [row for row, mine in points if not any(beats(other, mine) for _, other in points)]


def write_sweep_summary(sweep: Path) -> list[Path]:
    """Write sweep_summary.csv/.md/.png in ``sweep``; returns the files written."""
    return summarise_sweep(sweep)[0]


def summarise_sweep(sweep: Path) -> tuple[list[Path], list[JobRow]]:
    """:func:`write_sweep_summary`, and the jobs it read (their status included)."""
    folders = job_folders(sweep)
    objectives = sweep_objectives(folders)
    metric, mode = objectives[0] if objectives else ("", "max")
    rows = sorted_rows([read_job(folder) for folder in folders], metric, mode)
    jobs = list(rows)
    columns = summary_metrics(rows, [name for name, _ in objectives])
    _drop_shared_overrides(rows)
    groups = seed_groups(rows, columns, metric, mode)
    front = pareto_front(rows, objectives) if len(objectives) > 1 else None
    table = [_table_row(rank, row, columns, sweep, front) for rank, row in enumerate(rows, start=1)]
    header = ["rank", "job", "status", "overrides", *columns, "error", "run_folder"]
    if len(objectives) > 1:
        header.insert(3, "pareto")
    written = [write_csv(sweep / f"{SUMMARY_NAME}.csv", header, table)]
    if groups:
        written.append(write_group_csv(sweep / f"{GROUPS_NAME}.csv", groups, columns))
    markdown = _markdown_lines(sweep, header, table, metric, mode, groups, columns)
    if len(objectives) > 1:
        markdown += _pareto_lines(front, objectives)
        figure = plots.pareto_figure(
            _objective_values(rows, objectives), _objective_values(front, objectives), objectives
        )
        written.append(plots.save(figure, sweep / PARETO_PLOT))
    text = "\n".join(markdown) + "\n"
    written.append(write_atomically(sweep / f"{SUMMARY_NAME}.md", text, concurrent=True))
    if rows and metric:
        written.append(
            plots.save(summary_figure(rows, groups, metric), sweep / f"{SUMMARY_NAME}.png")
        )
    return written, jobs


def _objective_values(rows: list[JobRow], objectives: list[tuple[str, str]]) -> list[list[float]]:
    return [
        [row.metrics.get(metric, math.nan) for metric, _ in objectives]
        for row in rows
        if row.status == "ok"
    ]


def _pareto_lines(front: list[JobRow], objectives: list[tuple[str, str]]) -> list[str]:
    names = [metric for metric, _ in objectives]
    aims = ", ".join(
        f"{m} ({'higher' if mode == 'max' else 'lower'} is better)" for m, mode in objectives
    )
    lines = [
        "",
        "## Pareto front",
        "",
        f"The finished jobs that no other beats in every objective: {aims}. Plot: {PARETO_PLOT}.",
        "",
        "| job | " + " | ".join(names) + " | overrides |",
        "|---|" + "---:|" * len(names) + "---|",
    ]
    for row in sorted(front, key=lambda r: r.metrics.get(names[0], math.nan)):
        values = " | ".join(f"{row.metrics[name]:.6g}" for name in names)
        overrides = " ".join(row.overrides).replace("|", "\\|")
        lines.append(f"| {row.job} | {values} | {overrides} |")
    return lines + ["", f"![Pareto front]({PARETO_PLOT})"]


def summary_figure(rows: list[JobRow], groups: list[GroupRow], metric: str):
    if groups:  # one bar per group, mean with the standard deviation as error bar
        means = [group.stats[metric][0] if metric in group.stats else math.nan for group in groups]
        errors = [group.stats[metric][1] if metric in group.stats else math.nan for group in groups]
        labels = [f"{group.label} (n={group.n})" for group in groups]
        return plots.sweep_figure(labels, means, metric, errors=errors)
    labels = [
        ("[pruned] " if row.status == "pruned" else "") + (" ".join(row.overrides) or row.job)
        for row in rows
    ]
    values = [
        row.metrics.get(metric, math.nan) if row.status in RANKED else math.nan for row in rows
    ]
    return plots.sweep_figure(labels, values, metric)


def seed_groups(rows: list[JobRow], columns: list[str], metric: str, mode: str) -> list[GroupRow]:
    """When the jobs differ in ``seed`` and some setting of the other overrides ran with more
    than one: one row per setting, over its finished jobs, best mean first. Empty otherwise
    (an Optuna search that samples the seed has a setting per job)."""
    seeds = {item for row in rows for item in row.overrides if item.startswith("seed=")}
    if len(seeds) < 2:
        return []
    members: dict[str, list[JobRow]] = {}
    for row in rows:
        label = " ".join(item for item in row.overrides if not item.startswith("seed="))
        members.setdefault(label or "(all jobs)", []).append(row)
    groups = []
    for label, jobs in members.items():
        finished = [job for job in jobs if job.status == "ok"]
        stats = {}
        for name in columns:
            values = np.array([job.metrics[name] for job in finished if name in job.metrics])
            values = values[np.isfinite(values)]
            if len(values):
                stats[name] = spread(values)
        groups.append(GroupRow(label, len(finished), len(jobs), stats))
    if all(group.jobs < 2 for group in groups):
        return []

    def key(group: GroupRow) -> tuple[int, float]:
        mean = group.stats.get(metric, (math.nan,))[0]
        return (1, 0.0) if not math.isfinite(mean) else (0, -mean if mode == "max" else mean)

    return sorted(groups, key=key)


def spread(values: Sequence[float]) -> tuple[float, float, float, float]:
    """Mean, standard deviation (n - 1 in the denominator; NaN for one value), min and max:
    the seed table's statistics, also a cross-validation's over its folds."""
    array = np.asarray(values, dtype=float)
    deviation = float(array.std(ddof=1)) if len(array) > 1 else math.nan
    return float(array.mean()), deviation, float(array.min()), float(array.max())


def spread_cell(stats: tuple[float, float, float, float]) -> str:
    """``mean ± std (min to max)``, as the seed table shows a metric."""
    mean, deviation, low, high = stats
    shown = f" ± {deviation:.4g}" if math.isfinite(deviation) else ""
    return f"{mean:.4g}{shown} ({low:.4g} to {high:.4g})"


def _group_cells(group: GroupRow, name: str) -> list[str]:
    if name not in group.stats:
        return ["", "", "", ""]
    return [json.dumps(value) if math.isfinite(value) else "" for value in group.stats[name]]


def write_group_csv(path: Path, groups: list[GroupRow], columns: list[str]) -> Path:
    header = ["group", "n", "jobs"]
    header += [f"{name}_{stat}" for name in columns for stat in ("mean", "std", "min", "max")]
    table = [
        [
            group.label,
            str(group.n),
            str(group.jobs),
            *[cell for name in columns for cell in _group_cells(group, name)],
        ]
        for group in groups
    ]
    return write_csv(path, header, table)


def group_lines(
    groups: list[GroupRow], columns: list[str], csv_name: str = f"{GROUPS_NAME}.csv"
) -> list[str]:
    lines = [
        "",
        "## Across seeds",
        "",
        "Runs that differ only in `seed`, as one row: n finished of its runs, and per metric "
        f"mean ± standard deviation (min to max); also in {csv_name}.",
        "",
        "| group | n | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for group in groups:
        cells = []
        for name in columns:
            if name not in group.stats:
                cells.append("")
                continue
            cells.append(spread_cell(group.stats[name]))
        label = group.label.replace("|", "\\|")
        count = f"{group.n}" if group.n == group.jobs else f"{group.n} of {group.jobs}"
        lines.append(f"| {label} | {count} | " + " | ".join(cells) + " |")
    return lines


def _drop_shared_overrides(rows: list[JobRow]) -> None:
    """Keep the overrides that tell the jobs apart (optimizer.lr=0.01); those every job shares
    are in each job's .hydra/overrides.yaml."""
    if len(rows) < 2:
        return
    shared = set.intersection(*(set(row.overrides) for row in rows))
    for row in rows:
        row.overrides = [item for item in row.overrides if item not in shared]


def _table_row(
    rank: int, row: JobRow, columns: list[str], sweep: Path, front: list[JobRow] | None
) -> list[str]:
    values = [json.dumps(row.metrics[name]) if name in row.metrics else "" for name in columns]
    folder = os.path.relpath(row.folder, sweep)
    pareto = [] if front is None else ["yes" if row in front else ""]
    status = [row.status, *pareto]
    return [str(rank), row.job, *status, " ".join(row.overrides), *values, row.error, folder]


def write_csv(path: Path, header: list[str], table: list[list[str]]) -> Path:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(table)
    return write_atomically(path, text.getvalue(), concurrent=True)


def _markdown_lines(
    sweep: Path,
    header: list[str],
    table: list[list[str]],
    metric: str,
    mode: str,
    groups: list[GroupRow],
    columns: list[str],
) -> list[str]:
    count = {status: sum(row[2] == status for row in table) for status in ("ok", "pruned")}
    failed = sum(row[2] == "failed" for row in table)
    pruned = f"{count['pruned']} pruned, " if count["pruned"] else ""
    lines = [
        f"# Sweep summary: {sweep.name}",
        "",
        f"{len(table)} jobs: {count['ok']} ok, {pruned}{failed} failed, "
        f"{sum(row[2] in ('incomplete', 'unreadable') for row in table)} incomplete. Sorted by "
        f"{metric or 'job'} ({'higher' if mode == 'max' else 'lower'} is better).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if name in ("rank",) else "---" for name in header) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table]
    if groups:
        lines += group_lines(groups, columns)
    if metric and table:
        lines += ["", f"![{metric} per job]({SUMMARY_NAME}.png)"]
    return lines
