"""Building a run's parts (data module, LightningModule, trainer) from the composed config."""

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelSummary, ProgressBar
from lightning.pytorch.profilers import PassThroughProfiler
from omegaconf import DictConfig, OmegaConf

from litlab.checkpoint import AtomicCheckpointIO, load_checkpoint
from litlab.config import plain_config
from litlab.config.entries import MODEL_SWITCHES
from litlab.config.losses import loss_entry
from litlab.data import TensorDataModule
from litlab.data.base import Fold
from litlab.errors import CheckpointError, ConfigError, LitlabError
from litlab.lightning_modules import SupervisedModule, make_scheduler
from litlab.loggers.run_facts import TrackedRun, tracked_run
from litlab.loggers.tracker import Tracker
from litlab.metric_names import class_names_or_indices
from litlab.run_folder import REFIT

log = logging.getLogger(__name__)


def instantiate_part(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that turns a constructor's complaint into a ConfigError."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, LitlabError):
            raise cause from err
        argument = getattr(cause, "argument", None)  # a model constructor's ArgumentError
        if argument is not None:
            raise ConfigError(
                f"{key}.{argument}={cause.value!r} is invalid: {cause}. Check the keys under "
                f"`{key}` (print them with `python train.py --cfg job --package {key}`)."
            ) from err
        reason = f"{type(cause).__name__}: {cause}" if cause else str(err).splitlines()[0]
        raise ConfigError(
            f"Could not build {key} ({node.get('_target_')}): {reason}. Check the keys under "
            f"`{key}` (print them with `python train.py --cfg job --package {key}`)."
        ) from err


def build_datamodule(cfg: DictConfig) -> TensorDataModule:
    datamodule = instantiate_part(cfg.data, "data")
    datamodule.fold = cv_fold(cfg)
    return datamodule


def cv_fold(cfg: DictConfig) -> Fold | None:
    """The part of a cross-validation this run trains (its folds and refit are runs whose
    ``cv.fold`` litlab sets: 0 ... folds - 1, or "refit"); None for a plain run."""
    cv = cfg.get("cv") or {}
    fold = cv.get("fold")
    if fold is None:
        return None
    return Fold(None if fold == REFIT else int(fold), int(cv.folds))


def build_module(cfg: DictConfig) -> SupervisedModule:
    """The LightningModule for ``cfg``; its checkpoints carry ``cfg`` as plain data."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    switches = {name: model.pop(name, False) for name in MODEL_SWITCHES}
    net = instantiate_part(OmegaConf.create(model), "model")
    if switches["channels_last"]:
        net.to(memory_format=torch.channels_last)  # 4-d weights only: convolutions
    if switches["compile"]:
        net.compile()  # in place: state_dict keys stay free of torch.compile's "_orig_mod."
    optimizer = instantiate_part(cfg.optimizer, "optimizer")
    scheduler = instantiate_part(cfg.scheduler, "scheduler") if cfg.get("scheduler") else None
    _try_partials(optimizer, scheduler)
    return SupervisedModule(
        net=net,
        loss=instantiate_part(cfg.loss, "loss"),
        loss_inputs=loss_entry(cfg.loss._target_).inputs,
        compiled=switches["compile"],
        optimizer=optimizer,
        scheduler=scheduler,
        task=cfg.data.task,
        num_classes=cfg.data.num_classes,
        class_names=class_names_or_indices(cfg.data.get("class_names"), cfg.data.num_classes),
        monitor=cfg.monitor.metric,
        monitor_mode=cfg.monitor.mode,
        run_config=plain_config(cfg),
    )


@dataclass
class TrainedModel:
    """A checkpoint's model with its weights, and the data module and config it was trained
    with: what evaluate, predict and export start from."""

    run_config: DictConfig
    datamodule: TensorDataModule
    module: SupervisedModule


def load_trained(ckpt_path: str, data_dir: str) -> TrainedModel:
    """Rebuild the model of ``ckpt_path`` from the config stored in it (plain: a compiled
    model's network without compilation) and load its weights. ``data_dir`` is this
    machine's: the stored config has the training machine's path resolved into it."""
    checkpoint = load_checkpoint(ckpt_path)
    run_config = OmegaConf.create(checkpoint["hyper_parameters"]["run_config"])
    run_config.paths.data_dir = data_dir
    if "data_dir" in run_config.data:
        run_config.data.data_dir = data_dir
    for switch in MODEL_SWITCHES:  # speed only: the plain network computes the same
        if switch in run_config.model:
            run_config.model[switch] = False
    datamodule = build_datamodule(run_config)
    fitted = checkpoint.get(type(datamodule).__qualname__)  # Lightning keeps its state_dict
    if fitted:  # statistics fitted on the training data (a user's folder or table)
        datamodule.load_state_dict(fitted)
    module = build_module(run_config)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(
            f"The weights in {ckpt_path} do not fit the model of its own config "
            f"({run_config.model._target_}): {str(err).splitlines()[0]} The file was altered or "
            "assembled from different runs; use an unmodified checkpoint."
        ) from err
    module.eval()
    return TrainedModel(run_config, datamodule, module)


def _try_partials(optimizer: Any, scheduler: Any) -> None:
    """Build the optimizer and scheduler once on a stand-in parameter: their constructors' own
    checks (Adam's betas, OneCycleLR's pct_start...) then fail here, as a ConfigError naming
    the group, and not inside fit() as a traceback."""
    stand_in = [torch.nn.Parameter(torch.zeros(1))]
    built = _try_building("optimizer", lambda: optimizer(params=stand_in))
    if scheduler is not None:
        _try_building("scheduler", lambda: make_scheduler(scheduler, built, lambda: 1000))


def _try_building(key: str, build: Any) -> Any:
    try:
        return build()
    except (ValueError, TypeError, KeyError, RuntimeError) as err:
        raise ConfigError(
            f"Could not build {key}: {type(err).__name__}: {_first_line(err)}. Check the keys "
            f"under `{key}` (print them with `python train.py --cfg job --package {key}`)."
        ) from err


def _first_line(err: Exception) -> str:
    return (str(err).strip("'\"\n ").splitlines() or [""])[0]


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler records nothing, yet opens a generator-based context
    manager around every hook of every callback: about 30 per training step plus 6 per
    callback, 0.15 ms per step with litlab's callbacks (7 % of a SimpleNN epoch on a small CPU).
    This one hands out one reusable empty context. ``trainer.profiler=simple`` still profiles."""

    _nothing = nullcontext()

    def profile(self, action_name: str) -> nullcontext:
        return self._nothing


# The trainer's batch limits per split, and the batch size each split is read with.
BATCH_LIMITS = {
    "train": ("limit_train_batches", "batch_size"),
    "val": ("limit_val_batches", "eval_batch_size"),
    "test": ("limit_test_batches", "eval_batch_size"),
}


def check_batch_limits(trainer: DictConfig, datamodule: TensorDataModule) -> None:
    """A fraction of a split's batches that rounds down to none: Lightning refuses it only when
    it reaches that split (validation: after a whole epoch of training), so it is refused here,
    once the splits' sizes are known."""
    for split, (key, size_key) in BATCH_LIMITS.items():
        fraction = trainer.get(key)
        if (
            not isinstance(fraction, float)
            or not 0 < fraction < 1
            or split not in datamodule.splits
        ):
            continue
        samples = len(datamodule.splits[split][0])
        batches = math.ceil(samples / getattr(datamodule, size_key))
        if int(fraction * batches) < 1:
            raise ConfigError(
                f"trainer.{key}={fraction} keeps {fraction} of the {split} split's {batches} "
                f"batch(es) ({samples} samples, data.{size_key}={getattr(datamodule, size_key)}): "
                f"less than one. Give a number of batches, e.g. trainer.{key}=1, or a fraction "
                f"of at least {1 / batches:.3g}."
            )


def _tracker_arguments(node: DictConfig, run: TrackedRun) -> dict[str, Any]:
    """A tracker (``litlab.loggers``) is given the run's facts, which no config holds; every
    tracker of a run the same (they share its trackers.json)."""
    try:
        is_tracker = issubclass(get_class(node._target_), Tracker)
    except (ImportError, ValueError, AttributeError):
        return {}  # instantiate_part names the target that does not import
    return {"run": run} if is_tracker else {}


def build_trainer(cfg: DictConfig) -> L.Trainer:
    if torch.cuda.is_available() and cfg.trainer.get("accelerator") in ("gpu", "cuda", "auto"):
        torch.set_float32_matmul_precision("high")  # TF32 matmuls: the GPU's fast path
    callbacks = [
        instantiate_part(node, f"callbacks.{name}")
        for name, node in (cfg.get("callbacks") or {}).items()
        if node
    ]
    run = tracked_run(cfg)
    loggers = [
        instantiate_part(node, f"logger.{name}", **_tracker_arguments(node, run))
        for name, node in (cfg.get("logger") or {}).items()
        if node
    ]
    if not loggers:  # Lightning refuses it without a logger to write to
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
    try:
        return instantiate(
            cfg.trainer,
            callbacks=callbacks,
            # one switch each: the callback configured or not (callbacks.progress_bar=null)
            enable_progress_bar=any(isinstance(cb, ProgressBar) for cb in callbacks),
            enable_model_summary=any(isinstance(cb, ModelSummary) for cb in callbacks),
            logger=loggers or False,
            plugins=[AtomicCheckpointIO()],
            **({} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}),
        )
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(
            f"The trainer could not be set up: {str(cause).strip()} Check the trainer keys "
            "(e.g. trainer.accelerator=cpu when no GPU is visible, trainer.devices=1)."
        ) from err
