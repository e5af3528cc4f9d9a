"""A cross-validation's summary (``litlab.cross_validation``): each fold's metrics, their
mean ± standard deviation (min to max) in the seed table's format, and the refit's test; as
cv_summary.md (what a person reads), .csv (one row per fold, then mean, std, min and max) and
.json (every metric of every fold, and the statistics), and as the console's last lines."""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from litlab.report.sweep import spread, spread_cell, write_csv
from litlab.run_folder import (
    CV_SUMMARY,
    METRICS,
    REFIT,
    cv_part_folders,
    read_json_object,
    write_atomically,
)

Metrics = dict[str, float]
# What the summary's table and the console show per split (the .csv and .json: every metric).
HEADLINE_METRICS = ("acc", "r2", "loss")
STATISTICS = ("mean", "std", "min", "max")


def headline(metrics: Metrics, objective: str) -> str:
    """One fold's (or the refit's) result in one line: the summary's columns it has."""
    names = [
        objective,
        *[f"{split}/{name}" for split in ("val", "test") for name in HEADLINE_METRICS],
    ]
    shown = dict.fromkeys(name for name in names if name in metrics)
    return ", ".join(f"{name} {metrics[name]:.4g}" for name in shown) or "no metrics"


def is_cross_validation_folder(path: Path) -> bool:
    return (path / f"{CV_SUMMARY}.json").is_file()


@dataclass
class CrossValidationSummary:
    folds: list[Metrics]
    refit: Metrics | None
    objective: str  # optimized_metric: the first column, the command's result
    statistics: dict[str, tuple[float, float, float, float]] = field(init=False)
    columns: list[str] = field(init=False)

    def __post_init__(self) -> None:
        """Per metric every fold has (finite): mean, std (n - 1), min and max; the columns
        shown: the objective, then validation and test accuracy (R²) and loss."""
        shared = set.intersection(*(set(fold) for fold in self.folds)) if self.folds else set()
        self.statistics = {
            name: spread([fold[name] for fold in self.folds])
            for name in sorted(shared)
            if all(math.isfinite(fold[name]) for fold in self.folds)
        }
        names = [f"{split}/{name}" for split in ("val", "test") for name in HEADLINE_METRICS]
        found = [name for name in [self.objective, *names] if any(name in f for f in self.folds)]
        self.columns = list(dict.fromkeys(found))

    @classmethod
    def read(cls, run: Path) -> "CrossValidationSummary":
        """A cross-validation's summary from its folders (litlab-report rebuilds it)."""
        parts = cv_part_folders(run)
        folds = [read_json_object(part / METRICS) for part in parts if part.name != REFIT]
        refit = [read_json_object(part / METRICS) for part in parts if part.name == REFIT]
        objective = read_json_object(run / f"{CV_SUMMARY}.json")["optimized_metric"]
        return cls(folds, refit[0] if refit else None, objective)

    @property
    def means(self) -> Metrics:
        return {name: stats[0] for name, stats in self.statistics.items()}

    def refit_tests(self) -> Metrics:
        names = [f"test/{name}" for name in HEADLINE_METRICS]
        return {name: self.refit[name] for name in names if self.refit and name in self.refit}

    def write(self, run: Path) -> Path:
        """The three files in ``run``; returns the .md's path."""
        every = sorted({name for fold in self.folds for name in fold})
        rows = [
            [str(index + 1), *[_number(fold.get(name)) for name in every]]
            for index, fold in enumerate(self.folds)
        ]
        for position, label in enumerate(STATISTICS):
            rows.append(
                [
                    label,
                    *[_number(self.statistics.get(name, [None] * 4)[position]) for name in every],
                ]
            )
        write_csv(run / f"{CV_SUMMARY}.csv", ["fold", *every], rows)
        record = {
            "folds": len(self.folds),
            "optimized_metric": self.objective,
            "fold_metrics": self.folds,
            "statistics": {
                name: dict(zip(STATISTICS, values, strict=True))
                for name, values in self.statistics.items()
            },
            "refit": self.refit,
        }
        write_atomically(run / f"{CV_SUMMARY}.json", json.dumps(_finite(record), indent=2) + "\n")
        return write_atomically(run / f"{CV_SUMMARY}.md", "\n".join(self._markdown()) + "\n")

    def _markdown(self) -> list[str]:
        count, columns = len(self.folds), self.columns
        lines = [
            f"# Cross-validation: {count} folds",
            "",
            f"Each fold trained on {count - 1}/{count} of the training and validation samples "
            f"and validated on the other 1/{count} (fold_1/ ... fold_{count}/ hold its run); "
            "every fold tested on the same held-out test split. Last row: mean ± standard "
            "deviation over the folds (min to max); the command's result is the mean of "
            f"{self.objective}. Also in {CV_SUMMARY}.csv and {CV_SUMMARY}.json.",
            "",
            "| fold | " + " | ".join(columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for index, fold in enumerate(self.folds):
            cells = [f"{fold[name]:.4g}" if name in fold else "" for name in columns]
            lines.append(f"| {index + 1} | " + " | ".join(cells) + " |")
        cells = [spread_cell(self.statistics[n]) if n in self.statistics else "" for n in columns]
        lines.append("| **mean ± std** | " + " | ".join(cells) + " |")
        if self.refit is not None:
            tested = ", ".join(f"{name} {value:.4g}" for name, value in self.refit_tests().items())
            lines += [
                "",
                f"Refit ({REFIT}/): trained on all the training and validation samples for the "
                f"folds' median best number of epochs, then tested once: {tested or 'not tested'}.",
            ]
        return lines

    def console_lines(self) -> str:
        """Mean ± std of the shown metrics."""
        width = max(map(len, self.columns), default=0)
        lines = [f"Cross-validation, {len(self.folds)} folds (mean ± std, min to max):"]
        lines += [
            f"  {name:<{width}}  {spread_cell(self.statistics[name])}"
            for name in self.columns
            if name in self.statistics
        ]
        return "\n".join(lines)  # the refit's own line came before


def _number(value: float | None) -> str:
    return json.dumps(value) if value is not None and math.isfinite(value) else ""


def _finite(value: object) -> object:
    """JSON has no NaN: null instead."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
