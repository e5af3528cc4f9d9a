"""k-fold cross-validation (``cv.folds=K``): the K folds trained in one command, each a run
folder of its own inside the cross-validation's (fold_1 ... fold_K), then their summary
(``litlab.report.cv_summary``) and, with ``cv.refit=true``, one more run on all the training
and validation samples (refit/). Which samples each fold holds is the data module's part
(``TensorDataModule.fold_parts``); this module runs the folds.

A stopped cross-validation continues at its next fold: ``resume=auto`` finds it
(``litlab.resume``), the folds that finished are read back, and the one that was stopped
continues from its last checkpoint.
"""

import copy
import logging
import statistics
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, open_dict

from litlab import PROJECT_ROOT
from litlab.checkpoint import load_checkpoint
from litlab.config import escaped
from litlab.console import finished_line
from litlab.errors import ConfigError
from litlab.ranks import is_rank_zero
from litlab.record import record_training_run
from litlab.report.cv_summary import CrossValidationSummary, Metrics, headline
from litlab.run_folder import (
    BEST_CHECKPOINT,
    CHECKPOINTS,
    METRICS,
    REFIT,
    fold_folder,
    is_finished,
    read_json_object,
    write_metrics,
)

log = logging.getLogger(__name__)


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
        record_training_run(run, cfg, PROJECT_ROOT)
    objective, results = str(cfg.optimized_metric), []
    for index in range(folds):
        folder = fold_folder(run, index)
        log.info("Cross-validation: fold %d of %d (%s)", index + 1, folds, folder)
        results.append(_run_part(cfg, index, folder, resumed, train_one))
        log.info("  %s: %s", folder.name, headline(results[-1], objective))
    refit = None
    if cfg.cv.refit:
        epochs = refit_epochs(run, folds, cfg.trainer.get("max_epochs"))
        log.info(
            "Cross-validation: refit on all the training and validation samples, %d epochs", epochs
        )
        refit = _run_part(cfg, REFIT, run / REFIT, resumed, train_one, epochs)
        log.info("  %s: %s", REFIT, headline(refit, objective))
    summary = CrossValidationSummary(results, refit, objective)
    if is_rank_zero():
        written = summary.write(run)
        log.info(summary.console_lines())
        write_metrics(run, summary.means)
        log.info(finished_line(run, written.name))
    return summary.means


def _resumed_part(cfg: DictConfig, run: Path) -> Path | None:
    """The fold (or refit) folder that ``ckpt_path`` continues: only a checkpoint of this
    cross-validation's own folds is taken, as each fold starts its weights anew."""
    checkpoint = cfg.get("ckpt_path")
    if not checkpoint:
        return None
    if is_finished(run):
        raise ConfigError(
            f"{run} is a cross-validation that has finished: each of its folds is a finished "
            "run, which resume=force would read back, not train further. Start a new "
            "cross-validation (leave out resume), e.g. with a larger trainer.max_epochs."
        )
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
