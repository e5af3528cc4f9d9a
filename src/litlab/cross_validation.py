"""k-fold cross-validation (``cv.folds=K``): the K folds trained in one command, each a run
folder of its own inside the cross-validation's (fold_1 ... fold_K), then their summary
(cv_summary.md, .csv, .json) and, with ``cv.refit=true``, one more run on all the training
and validation samples (refit/). Which samples each fold holds is the data module's part
(``TensorDataModule.fold_parts``); this module runs the folds and sums them up.

A stopped cross-validation continues at its next fold: ``resume=auto`` finds it
(``litlab.resume``), the folds that finished are read back, and the one that was stopped
continues from its last checkpoint.
"""

import copy
import csv
import io
import json
import logging
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, open_dict

from litlab import PROJECT_ROOT
from litlab.build import REFIT_FOLD
from litlab.checkpoint import load_checkpoint
from litlab.config import escaped, plain_config
from litlab.console import finished_line
from litlab.errors import ConfigError
from litlab.ranks import is_rank_zero
from litlab.record import write_run_records
from litlab.report.sweep import spread, spread_cell
from litlab.run_folder import (
    BEST_CHECKPOINT,
    CHECKPOINTS,
    CV_SUMMARY,
    METRICS,
    REFIT,
    fold_folder,
    is_finished,
    read_json_object,
    write_atomically,
    write_metrics,
)

log = logging.getLogger(__name__)
Metrics = dict[str, float]


def is_cross_validation(cfg: DictConfig) -> bool:
    """A command that runs a cross-validation (not one of its folds, which are runs)."""
    cv = cfg.get("cv") or {}
    return cv.get("folds") is not None and cv.get("fold") is None


def cross_validate(cfg: DictConfig, train_one: Callable[[DictConfig], Metrics]) -> Metrics:
    """Train every fold of ``cfg`` (and the refit) with ``train_one``, write the summary into
    the run folder and return the folds' mean of each metric, which metrics.json holds too."""
    run, folds = Path(cfg.paths.output_dir), int(cfg.cv.folds)
    resumed = _resumed_part(cfg, run)
    if is_rank_zero():
        write_run_records(
            run,
            plain_config(cfg),
            PROJECT_ROOT,
            resumed_from=cfg.get("ckpt_path"),
            tags=list(cfg.get("tags") or []),
            notes=cfg.get("notes"),
        )
    results = []
    for index in range(folds):
        folder = fold_folder(run, index)
        log.info("Cross-validation: fold %d of %d (%s)", index + 1, folds, folder)
        results.append(_run_part(cfg, index, folder, resumed, train_one))
    refit = None
    if cfg.cv.refit:
        epochs = refit_epochs(run, folds, cfg.trainer.get("max_epochs"))
        log.info(
            "Cross-validation: refit on all the training and validation samples, %d epochs", epochs
        )
        refit = _run_part(cfg, REFIT_FOLD, run / REFIT, resumed, train_one, epochs)
    means = {name: stats[0] for name, stats in fold_statistics(results).items()}
    if is_rank_zero():
        written = write_cv_summary(run, results, refit, str(cfg.optimized_metric))
        log.info(summary_lines(results, refit, str(cfg.optimized_metric)))
        write_metrics(run, means)
        log.info(finished_line(run, written.name))
    return means


def _resumed_part(cfg: DictConfig, run: Path) -> Path | None:
    """The fold (or refit) folder that ``ckpt_path`` continues: only a checkpoint of this
    cross-validation's own folds is taken, as each fold starts its weights anew."""
    checkpoint = cfg.get("ckpt_path")
    if not checkpoint:
        return None
    part = Path(str(checkpoint)).resolve().parent.parent
    if part.parent != run.resolve():
        raise ConfigError(
            f"ckpt_path={checkpoint} with cv.folds={cfg.cv.folds}: every fold of a "
            "cross-validation starts from fresh weights, and a checkpoint only continues a "
            "stopped fold of its own. Leave out ckpt_path, or continue a stopped "
            "cross-validation with resume=auto."
        )
    return part


def _run_part(
    cfg: DictConfig,
    fold: int | str,
    folder: Path,
    resumed: Path | None,
    train_one: Callable[[DictConfig], Metrics],
    epochs: int | None = None,
) -> Metrics:
    """One fold (or the refit): read back when it finished before, else trained."""
    if is_finished(folder):
        log.info("  finished before: its metrics are read from %s", folder)
        return {
            name: float(value)
            for name, value in read_json_object(folder / METRICS).items()
            if value is not None
        }
    part = copy.deepcopy(cfg)
    with open_dict(part):
        part.cv.fold = fold
        if fold != 0 and (part.get("callbacks") or {}).get("model_summary"):
            part.callbacks.model_summary = None  # the network is the first fold's: shown once
        part.paths.output_dir = escaped(folder)
        continues = resumed is not None and resumed == folder.resolve()
        part.ckpt_path = cfg.ckpt_path if continues else None
        part.resume = None
        if epochs is not None:
            _without_validation(part, epochs)
    return train_one(part)


def _without_validation(part: DictConfig, epochs: int) -> None:
    """The refit validates nothing (every sample trains): it trains a fixed number of epochs,
    keeps the last weights as best.ckpt and stops early never."""
    part.trainer.max_epochs = epochs
    part.trainer.limit_val_batches = 0
    part.trainer.num_sanity_val_steps = 0
    callbacks = part.get("callbacks") or {}
    if callbacks.get("early_stopping"):
        part.callbacks.early_stopping = None
    if callbacks.get("best_checkpoint"):
        part.callbacks.best_checkpoint.monitor = None


def refit_epochs(run: Path, folds: int, max_epochs: int | None) -> int:
    """The folds' median number of epochs to their best checkpoint: as long as training
    helped on held-out samples (``max_epochs`` where no fold kept one)."""
    epochs = []
    for index in range(folds):
        best = fold_folder(run, index) / CHECKPOINTS / BEST_CHECKPOINT
        if best.is_file():
            epochs.append(int(load_checkpoint(str(best))["epoch"]) + 1)
    if not epochs:
        return int(max_epochs or 1)
    return max(1, round(statistics.median(epochs)))


def fold_statistics(results: list[Metrics]) -> dict[str, tuple[float, float, float, float]]:
    """Per metric every fold has: mean, standard deviation (n - 1), min and max."""
    shared = set.intersection(*(set(result) for result in results)) if results else set()
    return {
        name: spread([result[name] for result in results])
        for name in sorted(shared)
        if all(math.isfinite(result[name]) for result in results)
    }


# What the summary's table and the console show per split (cv_summary.csv and .json: all).
HEADLINE_METRICS = ("acc", "r2", "loss")


def summary_columns(results: list[Metrics], objective: str) -> list[str]:
    """The optimized metric first, then the validation and test accuracy (R²) and loss."""
    names = [f"{split}/{name}" for split in ("val", "test") for name in HEADLINE_METRICS]
    found = [name for name in [objective, *names] if any(name in result for result in results)]
    return list(dict.fromkeys(found))


def write_cv_summary(
    run: Path, results: list[Metrics], refit: Metrics | None, objective: str
) -> Path:
    """cv_summary.md (what a person reads), .csv (one row per fold, then the mean and std rows)
    and .json (every metric of every fold, and their statistics); returns the .md's path."""
    columns = summary_columns(results, objective)
    stats = fold_statistics(results)
    rows = [
        [str(index + 1), *[_value(result, name) for name in columns]]
        for index, result in enumerate(results)
    ]
    rows += [
        [label, *[json.dumps(stats[name][position]) if name in stats else "" for name in columns]]
        for position, label in ((0, "mean"), (1, "std"), (2, "min"), (3, "max"))
    ]
    text = io.StringIO()
    csv.writer(text).writerows([["fold", *columns], *rows])
    write_atomically(run / f"{CV_SUMMARY}.csv", text.getvalue())
    record = {
        "folds": len(results),
        "optimized_metric": objective,
        "fold_metrics": results,
        "statistics": {
            name: dict(zip(("mean", "std", "min", "max"), values, strict=True))
            for name, values in stats.items()
        },
        "refit": refit,
    }
    write_atomically(run / f"{CV_SUMMARY}.json", json.dumps(_finite(record), indent=2) + "\n")
    return write_atomically(
        run / f"{CV_SUMMARY}.md", "\n".join(_markdown(run, results, refit, columns, stats)) + "\n"
    )


def _markdown(
    run: Path,
    results: list[Metrics],
    refit: Metrics | None,
    columns: list[str],
    stats: dict[str, tuple[float, float, float, float]],
) -> list[str]:
    folds = len(results)
    lines = [
        f"# Cross-validation: {folds} folds",
        "",
        f"Each fold trained on {folds - 1}/{folds} of the training and validation samples and "
        f"validated on the other 1/{folds} (fold_1/ ... fold_{folds}/ hold its run); every fold "
        "tested on the same held-out test split. Last row: mean ± standard deviation over the "
        f"folds (min to max); the command's result is the mean of {columns[0]}. Also in "
        f"{CV_SUMMARY}.csv and {CV_SUMMARY}.json.",
        "",
        "| fold | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for index, result in enumerate(results):
        lines.append(
            f"| {index + 1} | " + " | ".join(_shown(result, name) for name in columns) + " |"
        )
    cells = [spread_cell(stats[name]) if name in stats else "" for name in columns]
    lines.append("| **mean ± std** | " + " | ".join(cells) + " |")
    if refit is not None:
        tested = ", ".join(f"{name} {value:.4g}" for name, value in refit_tests(refit).items())
        lines += [
            "",
            f"Refit ({REFIT}/): trained on all the training and validation samples for the "
            f"folds' median best number of epochs, then tested once: {tested or 'not tested'}.",
        ]
    return lines


def summary_lines(results: list[Metrics], refit: Metrics | None, objective: str) -> str:
    """The console's summary: mean ± std of the shown metrics, then the refit's test."""
    columns = summary_columns(results, objective)
    stats = fold_statistics(results)
    width = max(map(len, columns), default=0)
    lines = [f"Cross-validation, {len(results)} folds (mean ± std, min to max):"]
    lines += [f"  {name:<{width}}  {spread_cell(stats[name])}" for name in columns if name in stats]
    if refit is not None:
        lines += ["Refit on all the training and validation samples:"]
        lines += [f"  {name:<{width}}  {value:.4g}" for name, value in refit_tests(refit).items()]
    return "\n".join(lines)


def refit_tests(refit: Metrics) -> Metrics:
    """The refit's test results that the summary shows."""
    names = [f"test/{name}" for name in HEADLINE_METRICS]
    return {name: refit[name] for name in names if name in refit}


def _value(result: Metrics, name: str) -> str:
    value = result.get(name)
    return json.dumps(value) if value is not None and math.isfinite(value) else ""


def _shown(result: Metrics, name: str) -> str:
    value = result.get(name)
    return f"{value:.4g}" if value is not None else ""


def _finite(value: object) -> object:
    """JSON has no NaN: null instead."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
