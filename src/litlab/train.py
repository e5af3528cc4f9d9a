"""`train(cfg)`: fit a model, test its best checkpoint, write metrics.json (`litlab-train`)."""

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from litlab import PROJECT_ROOT, resume
from litlab.build import (
    build_datamodule,
    build_module,
    build_trainer,
    check_batch_limits,
    cv_fold,
)
from litlab.callbacks.graceful_stop import stop_on_ctrl_c
from litlab.checkpoint import load_checkpoint
from litlab.config import apply_recommendations, hydra_choices, plain_config, validate_config
from litlab.console import finished_line, results_table
from litlab.cross_validation import cross_validate, is_cross_validation
from litlab.errors import TrainingInterrupted
from litlab.lightning_modules import float_metrics
from litlab.loggers.tracker import tracking
from litlab.metric_names import PARAMETER_COUNT, is_overall_metric
from litlab.record import record_training_run
from litlab.report.run import write_run_report_or_warn
from litlab.run_folder import write_metrics
from litlab.tensorboard import log_hparams, run_hparams
from litlab.tune import LearningRateTest, find_learning_rate, record_learning_rate_test

log = logging.getLogger(__name__)
UNTRAINED = "during the learning-rate finder, before training: nothing was trained."


def _skip_nvml_probe_without_gpu() -> None:
    """`import lightning` sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (fork-safe GPU checks). With a
    CUDA build of torch on a machine without a GPU, every optimizer step then pays an uncached
    NVML probe (87 us per fused Adam step on the development VM); torch's own check is cached.
    With a GPU the variable stays, for Lightning's fork-based strategies."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_available():
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test as ``cfg`` says; return the final metrics (also in <run>/metrics.json).
    With ``resume=auto|force`` it continues the latest run of ``task_name`` in its folder.
    The config is checked first (the command line checks it before importing Lightning too, to
    answer a typo at once; a second check of a checked config takes milliseconds)."""
    apply_recommendations(cfg)  # where the command line did not (tests, notebooks)
    validate_config(cfg, hydra_choices())
    resume.apply(cfg)
    output_dir = Path(cfg.paths.output_dir)
    resume.refuse_to_overwrite(output_dir, cfg.get("ckpt_path"))
    if is_cross_validation(cfg):  # its folds are runs of this function
        return cross_validate(cfg, train)
    if cfg.get("ckpt_path"):
        # refuses a missing, corrupt or unsafe file, or one of another model, up front
        resume.check_checkpoint_fits(cfg, load_checkpoint(cfg.ckpt_path))
    _skip_nvml_probe_without_gpu()

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg)  # before the data: a bad model key is answered without reading it
    datamodule.setup("fit")  # reads the data now, so that data errors come before the trainer
    check_batch_limits(cfg.trainer, datamodule)
    trainer = build_trainer(cfg)
    # before the records and the trackers: with tune.apply they show the rate training uses
    tested = None
    if cfg.get("tune"):
        with stop_on_ctrl_c(UNTRAINED):
            tested = find_learning_rate(cfg, module, datamodule, output_dir)
    # MLflow, W&B: started now, ended with how the run ends
    with tracking(trainer, plain_config(cfg)):
        return _train(cfg, module, datamodule, trainer, output_dir, tested)


def _train(
    cfg: DictConfig,
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    trainer: L.Trainer,
    output_dir: Path,
    tested: LearningRateTest | None,
) -> dict[str, float]:
    if trainer.is_global_zero:
        record_training_run(output_dir, cfg, PROJECT_ROOT)
        resume.set_aside_result(output_dir)  # resume=force: the old result stays beside
    if tested is not None:
        record_learning_rate_test(tested, trainer, output_dir)
        if cfg.tune.only:
            return _finish_after_tuning(trainer, output_dir, tested.suggestion)

    with _sigterm_as_interruption():
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True
        )
        metrics = float_metrics(trainer.callback_metrics)
        if cfg.get("test"):
            best = _best_checkpoint(trainer)
            with stop_on_ctrl_c(f"while testing; training had finished. {_evaluate_command(best)}"):
                trainer.test(
                    module, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False
                )
            metrics.update(float_metrics(trainer.callback_metrics))

    num_params = sum(parameter.numel() for parameter in module.net.parameters())
    metrics[PARAMETER_COUNT] = float(num_params)
    if trainer.is_global_zero:
        write_metrics(output_dir, metrics)
        hparams = run_hparams(cfg, hydra_choices(), num_params)
        log_hparams(trainer, hparams, {k: v for k, v in metrics.items() if is_overall_metric(k)})
        write_run_report_or_warn(output_dir)
        if cv_fold(cfg) is None:  # a fold's result is one line of its cross-validation's
            stage = "test" if cfg.get("test") else "val"
            log.info(results_table(f"{stage.capitalize()} results", stage, metrics))
            log.info(finished_line(output_dir))
    return metrics


def _finish_after_tuning(
    trainer: L.Trainer, output_dir: Path, suggestion: float | None
) -> dict[str, float]:
    """tune.only=true: the run's result is the suggestion (none when the loss never fell)."""
    metrics = {} if suggestion is None else {"tune/lr_suggestion": suggestion}
    if trainer.is_global_zero:
        write_metrics(output_dir, metrics)
        write_run_report_or_warn(output_dir)
        log.info("%s; tune.only=true: no training", finished_line(output_dir))
    return metrics


@contextmanager
def _sigterm_as_interruption() -> Iterator[None]:
    """Lightning's own SIGTERM handling (outside GracefulStop's training steps: the sanity
    check, testing) ends with a SystemExit of status 0, as if the run had succeeded."""
    try:
        yield
    except SIGTERMException as err:
        raise TrainingInterrupted(
            "SIGTERM received outside the training steps; the run stopped without testing. "
            "Its checkpoints are as the last epoch or step left them: continue with resume=auto "
            "or ckpt_path=<run>/checkpoints/last.ckpt.",
            signal.SIGTERM,
        ) from err


def _evaluate_command(checkpoint: str | None) -> str:
    if checkpoint is None:
        return "No checkpoint was saved to test."
    return f"Test it with: python eval.py ckpt_path={checkpoint}"


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if callback is not None and callback.best_model_path:
        return callback.best_model_path
    if trainer.fast_dev_run:  # debug=fast saves nothing, by design
        log.info("debug=fast saves no checkpoint: testing the weights at the end of training.")
    else:
        validated = any(name.startswith("val/") for name in trainer.callback_metrics)
        why = "" if validated else " (training ended before its first validation)"
        log.warning(
            "No best checkpoint was saved%s; testing the weights at the end of training.", why
        )
    return None
