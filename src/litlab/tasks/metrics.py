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
    """Metrics logged as ``<stage>/<name>``. Training keeps a single cheap one (acc or mae)
    and skips input validation, which waits on the device every step; validation and test get
    the full set (macro averages for multiclass)."""
    check = stage != "train"
    if task == "multiclass":
        full = {
            "acc": MulticlassAccuracy(num_classes, average="micro", validate_args=check),
            "precision": MulticlassPrecision(num_classes, average="macro", validate_args=check),
            "recall": MulticlassRecall(num_classes, average="macro", validate_args=check),
            "f1": MulticlassF1Score(num_classes, average="macro", validate_args=check),
        }
    elif task == "binary":
        full = {
            "acc": BinaryAccuracy(validate_args=check),
            "precision": BinaryPrecision(validate_args=check),
            "recall": BinaryRecall(validate_args=check),
            "f1": BinaryF1Score(validate_args=check),
        }
    elif task == "regression":
        full = {"mae": MeanAbsoluteError(), "mse": MeanSquaredError(), "r2": R2Score()}
    else:
        raise ValueError(f"unknown task {task!r}")
    if stage == "train":
        first = next(iter(full))
        full = {first: full[first]}
    # Compute groups share state between metrics of one family, worth it for the full set but
    # pure per-step overhead for training's single metric.
    return MetricCollection(full, prefix=f"{stage}/", compute_groups=stage != "train")
