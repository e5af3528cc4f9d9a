"""`evaluate(cfg)`: test a checkpoint with the config it was trained with (`litlab-eval`)."""

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from litlab.build import build_datamodule, build_module, build_trainer
from litlab.checkpoint import load_checkpoint
from litlab.config import validate_config
from litlab.errors import CheckpointError
from litlab.lightning_modules import float_metrics
from litlab.run_folder import METRICS, write_metrics

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.split``; model, data and loss come from the checkpoint,
    while where to find the data (``paths``) and what to run on (``trainer``) come from ``cfg``."""
    validate_config(cfg)
    checkpoint = load_checkpoint(cfg.ckpt_path)
    run_cfg = OmegaConf.create(checkpoint["hyper_parameters"]["run_config"])
    # Where the data lives is a fact of this machine, not of the run: the stored config has
    # the training machine's path resolved into data.data_dir.
    run_cfg.paths.data_dir = cfg.paths.data_dir
    if "data_dir" in run_cfg.data:
        run_cfg.data.data_dir = cfg.paths.data_dir

    datamodule = build_datamodule(run_cfg)
    module = build_module(run_cfg)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(
            f"The weights in {cfg.ckpt_path} do not fit the model of its own config "
            f"({run_cfg.model._target_}): {str(err).splitlines()[0]} The file was altered or "
            "assembled from different runs; evaluate an unmodified checkpoint."
        ) from err
    trainer = build_trainer(cfg)
    run = trainer.test if cfg.split == "test" else trainer.validate
    run(module, datamodule=datamodule)
    metrics = float_metrics(trainer.callback_metrics)  # tensors: float32 digits as in training
    if trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        write_metrics(output_dir, metrics)
        log.info("Evaluated %s; results in %s", cfg.ckpt_path, output_dir / METRICS)
    return metrics
