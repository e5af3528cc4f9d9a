"""What litlab writes to TensorBoard beyond Lightning's scalars: figures, and the HPARAMS tab
with the run's real hyperparameters and final metrics."""

from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from litlab.library_internals import file_writer as file_writer_of


def writers(trainer: L.Trainer) -> list[SummaryWriter]:
    """The SummaryWriters of the run's TensorBoard loggers (none on ranks > 0)."""
    if not trainer.is_global_zero:
        return []
    return [
        logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)
    ]


def add_image(trainer: L.Trainer, tag: str, image: np.ndarray, step: int) -> None:
    """An ``(H, W, 3)`` uint8 image (a rendered figure) in every TensorBoard of the run."""
    for writer in writers(trainer):
        writer.add_image(tag, image, step, dataformats="HWC")


def run_hparams(cfg: DictConfig, choices: Mapping[str, str], num_params: int) -> dict[str, Any]:
    """The hyperparameters a sweep varies, as flat scalars: each group's chosen option
    (model=simple_nn) and its keys (model.hidden_size=256), batch size, seed, epochs."""
    values: dict[str, Any] = {}
    for group in ("model", "data", "loss", "optimizer", "scheduler"):
        node = cfg.get(group)
        default = node.get("_target_", "none").rsplit(".", 1)[-1] if node else "none"
        values[group] = choices.get(group, default)
        for key, value in (node or {}).items():
            if not str(key).startswith("_") and key not in SKIPPED_KEYS.get(group, ()):
                values[f"{group}.{key}"] = (
                    value if isinstance(value, (int, float, str, bool)) else str(value)
                )
    values.update(
        {
            "data.batch_size": cfg.data.batch_size,
            "seed": cfg.seed,
            "trainer.max_epochs": cfg.trainer.get("max_epochs"),
            "num_params": num_params,
            "tags": ",".join(str(tag) for tag in cfg.get("tags") or []) or None,
            "notes": cfg.get("notes"),
        }
    )
    return {key: value for key, value in values.items() if value is not None}


# Facts of the data set and plumbing, not choices a sweep makes.
SKIPPED_KEYS = {
    "data": (
        "data_dir",
        "download",
        "on_device",
        "seed",
        "task",
        "num_classes",
        "num_outputs",
        "num_features",
        "input_shape",
        "class_names",
        "mean",
        "std",
    ),
    "optimizer": ("fused", "foreach"),
    "model": ("in_features", "out_features", "input_shape"),
}


def log_hparams(trainer: L.Trainer, values: dict[str, Any], metrics: Mapping[str, float]) -> None:
    """Fill the HPARAMS tab. Written by hand: Lightning's ``log_hyperparams(params, metrics)``
    would also log every metric again as a scalar at step 0. TensorBoard reads each metric's
    value from the run's scalar of the same tag, so only tags that were logged are listed."""
    for writer in writers(trainer):
        experiment, start, end = hparams(values, dict(metrics))
        file_writer = file_writer_of(writer)  # reopened: Lightning closed it
        for summary in (experiment, start, end):
            file_writer.add_summary(summary)
        writer.close()  # and its writer thread: sweeps run many jobs in one process
