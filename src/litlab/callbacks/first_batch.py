"""What the model sees: the first training batch as it enters the model (after augmentation),
with its labels, as ``plots/batch.png`` and the TensorBoard image ``train/batch``; with
augmentation, each original beside its augmented version. Tabular and sequence data get the
batch's per-feature statistics (of the standardised inputs) in report.md instead."""

from pathlib import Path

import lightning as L
import torch

from litlab.report import plots
from litlab.report_data import BatchSummary, FeatureStatistics, write_section
from litlab.run_folder import BATCH_PLOT, PLOTS
from litlab.tensorboard import add_image

# Features listed in the report's table; wider data sets show their first ones.
MAX_FEATURES = 20


class FirstBatch(L.Callback):
    def __init__(self, run_dir: str | Path, count: int = 32) -> None:
        self.run_dir, self.count = Path(run_dir), count

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # the run's very first step (a resumed run drew it already), on rank zero
        if trainer.global_step != 0 or batch_idx != 0 or not trainer.is_global_zero:
            return
        inputs, targets = (tensor.detach() for tensor in batch)
        datamodule = trainer.datamodule
        labels = _labels(targets[: self.count], pl_module.hparams.task, datamodule.class_names)
        if inputs.dim() == 4:
            self._draw(trainer, inputs[: self.count].float().cpu(), labels)
        else:
            write_section(self.run_dir, "batch", _feature_statistics(inputs, datamodule))

    def _draw(self, trainer: L.Trainer, images: torch.Tensor, labels: list[str]) -> None:
        originals = _originals(trainer, len(images))
        title = f"the first training batch as the model sees it ({len(images)} shown)"
        if originals is not None:  # augmented: each original, then its augmented version
            images = torch.stack([originals, images], dim=1).flatten(0, 1)
            labels = [text for label in labels for text in (label, f"{label} aug")]
            title = f"the first training batch: original / augmented ({len(originals)} shown)"
        image = plots.image_grid(images.numpy(), labels, title)
        plots.save_image(image, self.run_dir / PLOTS / BATCH_PLOT)
        add_image(trainer, "train/batch", image, 0)


def _labels(targets: torch.Tensor, task: str, class_names: list[str] | None) -> list[str]:
    if task == "regression":
        return [f"{float(value):.3g}" for value in targets]
    return [class_names[int(value)] if class_names else str(int(value)) for value in targets]


def _originals(trainer: L.Trainer, count: int) -> torch.Tensor | None:
    """The same samples without augmentation, from the stored split and the loader's order
    (reading the order draws no random numbers and moves no loader state)."""
    datamodule = trainer.datamodule
    sampler = getattr(trainer.train_dataloader, "sampler", None)
    if not getattr(datamodule, "augment", False) or not hasattr(sampler, "indices"):
        return None
    stored = datamodule.splits["train"][0]
    indices = sampler.indices()[:count].to(stored.device)
    plain = datamodule.prepare_inputs(stored.index_select(0, indices).clone(), training=False)
    return plain.float().cpu()


def _feature_statistics(inputs: torch.Tensor, datamodule) -> BatchSummary:
    """Per feature over the batch (and a sequence's steps): mean, std, min, max."""
    flat = inputs.float().reshape(-1, inputs.shape[-1]).cpu()
    names = datamodule.feature_names if inputs.dim() == 2 else None
    features = [
        FeatureStatistics(
            name=names[index] if names else f"feature {index + 1}",
            mean=float(column.mean()),
            std=float(column.std()) if len(column) > 1 else 0.0,
            min=float(column.min()),
            max=float(column.max()),
        )
        for index, column in enumerate(flat.T[:MAX_FEATURES])
    ]
    return BatchSummary(
        samples=len(inputs),
        num_features=flat.shape[1],
        standardised=datamodule.input_scaling is not None,
        features=features,
    )
