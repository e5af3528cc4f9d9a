"""`evaluate(cfg)`: test a checkpoint with the config it was trained with (`litlab-eval`), and
leave what a training run leaves about its test: metrics.json, report.md, the confusion
matrix, the per-class table and the samples with the highest loss."""

import logging
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from litlab import PROJECT_ROOT
from litlab.build import TrainedModel, build_trainer, load_trained
from litlab.callbacks.graceful_stop import stop_on_ctrl_c
from litlab.config import validate_config
from litlab.console import finished_line, results_table
from litlab.errors import ConfigError
from litlab.lightning_modules import float_metrics
from litlab.loggers.tracker import tracking
from litlab.record import write_run_records
from litlab.report.run import write_run_report_or_warn
from litlab.run_folder import write_metrics

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.split``; model, data and loss come from the checkpoint,
    while where to find the data (``paths``) and what to run on (``trainer``) come from ``cfg``.
    Every split goes through Lightning's test loop (metrics named after the split: val/acc...)."""
    validate_config(cfg)
    trained = load_trained(cfg.ckpt_path, cfg.paths.data_dir)
    datamodule, module = trained.datamodule, trained.module
    datamodule.test_split = cfg.split
    datamodule.setup()
    if not len(datamodule.splits[cfg.split][0]):
        raise ConfigError(
            f"split={cfg.split}: {cfg.ckpt_path} was trained with no {cfg.split} split (a "
            "cross-validation's refit trains on every training and validation sample). "
            "Evaluate it with split=test."
        )
    module.evaluate_as(cfg.split)
    trainer = build_trainer(cfg)
    with tracking(trainer):  # logger=mlflow|wandb: the evaluation, a tracked run of its own
        return _evaluate(cfg, trained, trainer)


def _evaluate(cfg: DictConfig, trained: TrainedModel, trainer: L.Trainer) -> dict[str, float]:
    datamodule, module = trained.datamodule, trained.module
    output_dir = Path(cfg.paths.output_dir)
    if trainer.is_global_zero:
        evaluated = {"ckpt_path": str(cfg.ckpt_path), "split": cfg.split}
        config = OmegaConf.to_container(trained.run_config, resolve=False)
        write_run_records(output_dir, config, PROJECT_ROOT, evaluated=evaluated)
    with stop_on_ctrl_c("while evaluating; no result was written."):
        trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = float_metrics(trainer.callback_metrics)  # tensors: float32 digits as in training
    if trainer.is_global_zero:
        write_metrics(output_dir, metrics)
        write_run_report_or_warn(output_dir)
        log.info(results_table(f"{cfg.ckpt_path} on the {cfg.split} split", cfg.split, metrics))
        log.info(finished_line(output_dir))
    return metrics
