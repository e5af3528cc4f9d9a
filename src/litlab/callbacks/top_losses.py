"""The test samples the model got most wrong, sorted by their loss (fastai's "top losses"):
a table in report.md (``top_losses`` in report_data.json) and, for images, a grid of them as
``plots/top_losses.png`` and the TensorBoard image ``test/top_losses``."""

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F

from litlab.lightning_modules import class_probabilities
from litlab.report import plots
from litlab.report_data import TopLoss, write_section
from litlab.run_folder import PLOTS, TOP_LOSSES_PLOT
from litlab.tensorboard import add_image


def per_sample_results(
    task: str, predictions: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(loss, predicted, confidence, wrong)`` per sample, from a test step's predictions
    (multiclass logits, binary probabilities, regression values). The loss is the
    cross-entropy of the true class (squared error for regression) whatever loss trained the
    model: one ranking for every run. ``wrong``: misclassified (regression: every sample)."""
    predictions = predictions.float()
    loss = per_sample_loss(task, predictions, targets)
    if task == "regression":
        return loss, predictions, None, torch.ones_like(loss, dtype=torch.bool)
    confidence, predicted = class_probabilities(task, predictions).max(dim=-1)
    return loss, predicted, confidence, predicted != targets.long()


def per_sample_loss(task: str, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss of each sample, as :func:`per_sample_results` measures it."""
    predictions = predictions.float()
    if task == "regression":
        return (predictions - targets.float()) ** 2
    if task == "multiclass":  # from the logits: exact where a probability would round to 0
        return F.cross_entropy(predictions, targets.long(), reduction="none")
    probability = predictions.clamp(1e-7, 1 - 1e-7)
    return F.binary_cross_entropy(probability, targets.float(), reduction="none")


class TopLosses(L.Callback):
    """Keeps the ``count`` misclassified test samples with the highest loss (regression: the
    worst-predicted), over every batch and, under DDP, every rank."""

    def __init__(self, run_dir: str | Path, count: int = 32) -> None:
        self.run_dir, self.count = Path(run_dir), count
        self._kept: dict[str, torch.Tensor] = {}
        self._seen = 0
        self._order: torch.Tensor | None = None  # the split's positions, in the loader's order

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._kept, self._seen = {}, 0
        sampler = getattr(trainer.test_dataloaders, "sampler", None)
        self._order = sampler.indices().cpu() if hasattr(sampler, "indices") else None

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        inputs, targets = batch
        loss, predicted, confidence, wrong = per_sample_results(
            pl_module.hparams.task, outputs, targets
        )
        positions = self._sample_indices(len(targets))
        self._seen += len(targets)
        found = {
            "loss": loss,
            "index": positions.to(loss.device),
            "true": targets.float(),
            "predicted": predicted.float(),
            "confidence": confidence if confidence is not None else torch.full_like(loss, -1),
            "inputs": inputs.float(),
        }
        found = {name: values[wrong].detach().cpu() for name, values in found.items()}
        self._kept = _worst(_joined(self._kept, found), self.count)

    def _sample_indices(self, size: int) -> torch.Tensor:
        """Positions in the split of this batch's samples (on this rank's share of it)."""
        order = self._order
        if order is None or len(order) < self._seen + size:
            return torch.arange(self._seen, self._seen + size)
        return order[self._seen : self._seen + size]

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        kept = _worst(_gathered(self._kept), self.count)
        if not trainer.is_global_zero:
            return
        task, datamodule = pl_module.hparams.task, trainer.datamodule
        if task == "regression" and kept:  # in the target's units, as predict.py gives them
            kept["true"], kept["predicted"] = (
                datamodule.target_units(kept[name]) for name in ("true", "predicted")
            )
            kept["loss"] = (kept["predicted"] - kept["true"]) ** 2
        rows = _rows(kept, task, datamodule.class_names)
        for row in rows:  # a user's file or table line, to look the sample up
            row.name = datamodule.sample_name(datamodule.test_split, row.index)
        write_section(self.run_dir, "top_losses", rows)
        images = kept.get("inputs")
        if images is None or images.dim() != 4 or not rows:
            return  # a table is all that tabular and sequence data get
        labels = [f"{row.predicted} / {row.true}" for row in rows]
        title = f"{pl_module.test_name} samples with the highest loss: predicted / true"
        image = plots.image_grid(images.numpy(), labels, title)
        plots.save_image(image, self.run_dir / PLOTS / TOP_LOSSES_PLOT)
        add_image(trainer, f"{pl_module.test_name}/top_losses", image, trainer.global_step)


def _joined(kept: dict[str, torch.Tensor], found: dict[str, torch.Tensor]):
    return {
        name: torch.cat([kept[name], values]) if kept else values for name, values in found.items()
    }


def _worst(results: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
    if not results:
        return results
    order = results["loss"].argsort(descending=True, stable=True)[:count]
    return {name: values[order] for name, values in results.items()}


def _gathered(results: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every rank's kept samples (all ranks call this)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return results
    shards: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shards, results)
    merged: dict[str, torch.Tensor] = {}
    for shard in shards:
        if shard:
            merged = _joined(merged, shard)
    return merged


def _rows(kept: dict[str, torch.Tensor], task: str, names: list[str] | None) -> list[TopLoss]:
    if not kept:
        return []
    rows = []
    for rank in range(len(kept["loss"])):
        index, loss = int(kept["index"][rank]), float(kept["loss"][rank])
        if task == "regression":
            true, predicted = float(kept["true"][rank]), float(kept["predicted"][rank])
            rows.append(TopLoss(index, loss, true, predicted))
        else:
            label = names or [str(c) for c in range(2)]
            true, predicted = label[int(kept["true"][rank])], label[int(kept["predicted"][rank])]
            rows.append(TopLoss(index, loss, true, predicted, float(kept["confidence"][rank])))
    return rows
