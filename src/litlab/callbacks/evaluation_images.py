"""Confusion matrices as TensorBoard images, after every validation epoch and at test; the test
one also as ``plots/confusion_matrix.png``. (The misclassified samples: TopLosses.)"""

from pathlib import Path

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn

from litlab.report import plots
from litlab.run_folder import CONFUSION_MATRIX_PLOT, PLOTS
from litlab.tensorboard import add_image, writers


class EvaluationImages(L.Callback):
    """``val/confusion_matrix`` and ``test/confusion_matrix``: counts and row-normalised, class
    names on the axes (eval.py split=val: ``val/confusion_matrix`` of the checkpoint); the test
    one also in the run folder ``run_dir``."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING:
            self._log_confusion(trainer, pl_module, "val")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_confusion(trainer, pl_module, "test")

    def _log_confusion(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        counts = pl_module.confusion_matrices.get(stage)
        if counts is None or not trainer.is_global_zero:
            return
        if stage == "val" and not writers(trainer):
            return  # the per-epoch images are for TensorBoard only
        # at the step of Lightning's epoch-end scalars (val/acc...): the epoch's last step
        step = max(trainer.global_step - 1, 0) if stage == "val" else trainer.global_step
        names = trainer.datamodule.class_names
        split = pl_module.test_name if stage == "test" else stage
        when = f"epoch {trainer.current_epoch}" if stage == "val" else "checkpoint"
        title = f"{split} confusion matrix, {when}, step {step}"
        scale = 2 if stage == "test" else 1  # the report shows the test's
        image = plots.confusion_matrix_image(counts.numpy(), names, title, scale)
        add_image(trainer, f"{split}/confusion_matrix", image, step)
        if stage == "test":  # the report links it; litlab-report draws it from report_data
            plots.save_image(image, self.run_dir / PLOTS / CONFUSION_MATRIX_PLOT)
