"""`train(cfg)`: fit a model, test its best checkpoint, write metrics.json (`litlab-train`)."""

import json
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from litlab import PROJECT_ROOT
from litlab.build import build_datamodule, build_task, build_trainer, plain_config
from litlab.checkpoint import load_checkpoint
from litlab.cli import RESUME_RESOLVED, hydra_choices
from litlab.config import validate_config
from litlab.errors import ConfigError, TrainingInterrupted
from litlab.record import run_record
from litlab.report.run import write_run_report
from litlab.tasks.metrics import metric_float
from litlab.tensorboard import log_hparams, run_hparams

log = logging.getLogger(__name__)


def _skip_nvml_probe_without_gpu() -> None:
    """`import lightning` sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (fork-safe GPU checks). With a
    CUDA build of torch on a machine without a GPU, every optimizer step then pays an uncached
    NVML probe (87 us per fused Adam step on the development VM); torch's own check is cached.
    With a GPU the variable stays, for Lightning's fork-based strategies."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_available():
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test as ``cfg`` says; return the final metrics (also in <run>/metrics.json)."""
    validate_config(cfg, hydra_choices())
    if cfg.get("resume") and not os.environ.get(RESUME_RESOLVED):
        raise ConfigError(
            f"resume={cfg.resume} is looked up by the command line (`python train.py ... "
            f"resume={cfg.resume}`) before Hydra makes a run folder, and that did not happen "
            "here (train(cfg) from Python, -m sweeps, --config-dir...). Pass "
            "ckpt_path=<run>/checkpoints/last.ckpt (and that run's folder) instead."
        )
    output_dir = Path(cfg.paths.output_dir)
    _refuse_to_overwrite(output_dir, cfg.get("ckpt_path"))
    if cfg.get("ckpt_path"):
        # refuses a missing, corrupt or unsafe file, or one of another model, up front
        _check_resume_fits(cfg, load_checkpoint(cfg.ckpt_path))
    _skip_nvml_probe_without_gpu()

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")  # reads the data now, so that data errors come before the trainer
    task = build_task(cfg)
    trainer = build_trainer(cfg)
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(plain_config(cfg), _free_path(output_dir / "config.yaml"))
        record = {**run_record(PROJECT_ROOT), "resumed_from": cfg.get("ckpt_path")}
        _free_path(output_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")

    finished = output_dir / "metrics.json"
    if trainer.is_global_zero and finished.exists():  # resume=force: the old result stays
        finished.rename(_free_path(finished))
    with _sigterm_as_interruption():
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        metrics = float_metrics(trainer.callback_metrics)
        if cfg.get("test"):
            best = _best_checkpoint(trainer)
            trainer.test(task, datamodule=datamodule, ckpt_path=best, weights_only=True)
            metrics.update(float_metrics(trainer.callback_metrics))

    if trainer.is_global_zero:
        write_metrics(output_dir / "metrics.json", metrics)
        num_params = sum(parameter.numel() for parameter in task.net.parameters())
        hparams = run_hparams(cfg, hydra_choices(), num_params)
        log_hparams(trainer, hparams, {k: v for k, v in metrics.items() if _is_overall(k)})
        drew_test_confusion = cfg.get("test") and (cfg.get("callbacks") or {}).get(
            "evaluation_images"
        )
        _write_report(output_dir, drawn=["confusion_matrix.png"] if drew_test_confusion else [])
        log.info("Run folder: %s", output_dir)
    return metrics


def _is_overall(metric: str) -> bool:
    """test/acc, val/acc_best... but not per-class values (test/f1/7) or timings."""
    return metric.count("/") == 1 and not metric.startswith("time/")


def _write_report(output_dir: Path, drawn: list[str]) -> None:
    """report.md and plots/. The run's results are safe in metrics.json by now, so a failure
    here is a warning, not a failed run."""
    try:
        report, _ = write_run_report(output_dir, drawn)
        log.info("Report: %s", report)
    except Exception as err:  # noqa: BLE001
        log.warning(
            "The run finished but report.md could not be written (%s: %s); rebuild it with "
            "`litlab-report %s`.",
            type(err).__name__,
            err,
            output_dir,
        )


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


def write_metrics(path: Path, metrics: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(metrics.items())), indent=2) + "\n")


def _free_path(path: Path) -> Path:
    """``path``, or ``name.1.ext``, ``name.2.ext``...: a resumed run keeps the first record."""
    candidate, number = path, 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}.{number}{path.suffix}")
    return candidate


def float_metrics(metrics: dict) -> dict[str, float]:
    return {name: metric_float(value) for name, value in metrics.items()}


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if callback is not None and callback.best_model_path:
        return callback.best_model_path
    log.warning("No best checkpoint was saved; testing the weights at the end of training.")
    return None


# What the weights and optimizer state depend on; batch size, data location etc. may change.
RESUME_MUST_MATCH = {
    "model": None,  # every key
    "loss": None,
    "data": ("task", "num_classes", "num_outputs", "num_features", "input_shape"),
}


def _check_resume_fits(cfg: DictConfig, checkpoint: dict) -> None:
    """Resuming needs the model, loss and kind of data of the checkpoint's own run."""
    stored, current = checkpoint["hyper_parameters"]["run_config"], plain_config(cfg)
    differing = []
    for group, keys in RESUME_MUST_MATCH.items():
        old, new = stored.get(group) or {}, current.get(group) or {}
        for key in keys or sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                differing.append(f"{group}.{key}")
    if differing:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} was trained with other settings for "
            f"{', '.join(differing)} (its run: "
            + ", ".join(f"{key}={_lookup(stored, key)!r}" for key in differing[:3])
            + "). Resume with the first run's overrides, listed in its .hydra/overrides.yaml."
        )


def _lookup(config: dict, dotted: str) -> object:
    group, key = dotted.split(".", 1)
    return config.get(group, {}).get(key)


def _refuse_to_overwrite(output_dir: Path, ckpt_path: str | None) -> None:
    """A run folder that already holds checkpoints belongs to another run, unless we resume it."""
    existing = list(output_dir.rglob("*.ckpt")) if output_dir.is_dir() else []
    if not existing:
        return
    if ckpt_path and Path(ckpt_path).resolve() in [path.resolve() for path in existing]:
        return
    checkpoints = existing[0].parent
    raise ConfigError(
        f"The run folder {output_dir} already holds checkpoints of another run, and this run "
        "would overwrite them. Leave hydra.run.dir unset to get a fresh folder, or continue that "
        f"run with ckpt_path={checkpoints}/last.ckpt."
    )
