"""torchmetrics collections per task kind and stage."""

from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score


def stage_metrics(task: str, num_classes: int | None, stage: str) -> MetricCollection:
    """Metrics logged as ``<stage>/<name>``. Training keeps a single cheap one (acc or mae);
    validation and test get the full set (macro averages for multiclass)."""
    if task == "multiclass":
        full = {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        }
    elif task == "binary":
        full = {
            "acc": BinaryAccuracy(),
            "precision": BinaryPrecision(),
            "recall": BinaryRecall(),
            "f1": BinaryF1Score(),
        }
    elif task == "regression":
        full = {"mae": MeanAbsoluteError(), "mse": MeanSquaredError(), "r2": R2Score()}
    else:
        raise ValueError(f"unknown task {task!r}")
    if stage == "train":
        first = next(iter(full))
        full = {first: full[first]}
    return MetricCollection(full, prefix=f"{stage}/")
