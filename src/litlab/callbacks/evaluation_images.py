"""Confusion matrices (every validation epoch and at test) and a grid of misclassified test
images, as TensorBoard images; the grid also as ``plots/misclassified.png``."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn

from litlab.report import plots
from litlab.run_folder import CONFUSION_MATRIX_PLOT, MISCLASSIFIED_PLOT
from litlab.tensorboard import add_image, writers


class EvaluationImages(L.Callback):
    """``val/confusion_matrix``, ``test/confusion_matrix`` (counts and row-normalised, class
    names on the axes) and ``test/misclassified`` (up to ``misclassified`` images with their
    predicted and true labels; image data only)."""

    def __init__(self, plot_dir: str | Path, misclassified: int = 32) -> None:
        self.plot_dir = Path(plot_dir)
        self.max_misclassified = misclassified
        self._images: list[torch.Tensor] = []
        self._predicted: list[torch.Tensor] = []
        self._true: list[torch.Tensor] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING:
            self._log_confusion(trainer, pl_module, "val")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._images, self._predicted, self._true = [], [], []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        inputs, targets = batch
        found = sum(len(images) for images in self._images)
        if pl_module.hparams.task == "regression" or inputs.dim() != 4:
            return  # only images can be shown
        if found >= self.max_misclassified or not trainer.is_global_zero:
            return
        predicted = outputs.argmax(-1) if outputs.dim() == 2 else (outputs > 0.5).long()
        wrong = predicted != targets.long()
        keep = slice(0, self.max_misclassified - found)
        self._images.append(inputs[wrong][keep].float().cpu())
        self._predicted.append(predicted[wrong][keep].cpu())
        self._true.append(targets.long()[wrong][keep].cpu())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_confusion(trainer, pl_module, "test")
        images = torch.cat(self._images) if self._images else torch.empty(0)
        if not trainer.is_global_zero or len(images) == 0:
            return
        figure = plots.misclassified_figure(
            images.numpy(),
            torch.cat(self._predicted).tolist(),
            torch.cat(self._true).tolist(),
            trainer.datamodule.class_names,
        )
        image = plots.render(figure)  # drawn once, for TensorBoard and plots/
        plots.save_image(image, self.plot_dir / MISCLASSIFIED_PLOT)
        add_image(trainer, "test/misclassified", image, trainer.global_step)

    def _log_confusion(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        counts = pl_module.confusion_matrices.get(stage)
        if counts is None or not trainer.is_global_zero:
            return
        if stage == "val" and not writers(trainer):
            return  # the per-epoch images are for TensorBoard only
        # at the step of Lightning's epoch-end scalars (val/acc...): the epoch's last step
        step = max(trainer.global_step - 1, 0) if stage == "val" else trainer.global_step
        names = trainer.datamodule.class_names
        when = f"epoch {trainer.current_epoch}" if stage == "val" else "best checkpoint"
        title = f"{stage} confusion matrix, {when}, step {step}"
        image = plots.render(plots.confusion_matrix_figure(counts.numpy(), names, title))
        add_image(trainer, f"{stage}/confusion_matrix", image, step)
        if stage == "test":  # the report links it; litlab-report draws it from report_data
            plots.save_image(image, self.plot_dir / CONFUSION_MATRIX_PLOT)
