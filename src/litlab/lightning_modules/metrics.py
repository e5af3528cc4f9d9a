"""torchmetrics collections per task kind and stage."""

from collections.abc import Sequence

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score
from torchmetrics.wrappers import ClasswiseWrapper

from litlab.metric_names import (
    PER_CLASS_METRICS,
    TASK_METRICS,
    class_names_or_indices,
    shortest_float32,
)

MULTICLASS = {"precision": MulticlassPrecision, "recall": MulticlassRecall, "f1": MulticlassF1Score}
PER_CLASS = {name: MULTICLASS[name] for name in PER_CLASS_METRICS}


def stage_metrics(
    task: str, num_classes: int | None, stage: str, class_names: Sequence[str] | None = None
) -> MetricCollection:
    """Metrics logged as ``<stage>/<name>`` (names: ``metric_names.TASK_METRICS``). Training
    keeps the headline one (acc or mae) and skips input validation, which waits on the device
    every step; validation and test get the full set (macro averages for multiclass) and, for
    multiclass, precision, recall and F1 per class as ``<stage>/f1/<class name>``."""
    check = stage != "train"
    metrics = _task_metrics(task, num_classes, check)
    logged = TASK_METRICS[task][:1] if stage == "train" else TASK_METRICS[task]
    full: dict[str, Metric] = {name: metrics[name] for name in logged}
    if task == "multiclass" and stage != "train":
        names = class_names_or_indices(class_names, num_classes)
        for name, metric in PER_CLASS.items():
            per_class = metric(num_classes, average=None, validate_args=check)
            full[f"{name}_per_class"] = ClasswiseWrapper(per_class, names, prefix=f"{name}/")
    # Compute groups share state between metrics of one family: worth it for the full set,
    # pure per-step overhead for training's single metric. The per-class wrappers stay out:
    # in a group their inner metric counts no updates, and torchmetrics then warns on compute.
    groups: bool | list[list[str]] = stage != "train"
    if task == "multiclass" and stage != "train":
        groups = [list(MULTICLASS)]
    return MetricCollection(full, prefix=f"{stage}/", compute_groups=groups)


def _task_metrics(task: str, num_classes: int | None, check: bool) -> dict[str, Metric]:
    if task == "multiclass":
        return {
            "acc": MulticlassAccuracy(num_classes, average="micro", validate_args=check),
            **{
                name: metric(num_classes, average="macro", validate_args=check)
                for name, metric in MULTICLASS.items()
            },
        }
    if task == "binary":
        return {
            "acc": BinaryAccuracy(validate_args=check),
            "precision": BinaryPrecision(validate_args=check),
            "recall": BinaryRecall(validate_args=check),
            "f1": BinaryF1Score(validate_args=check),
        }
    if task == "regression":
        return {"mae": MeanAbsoluteError(), "mse": MeanSquaredError(), "r2": R2Score()}
    raise ValueError(f"unknown task {task!r}")


def confusion_matrix(task: str, num_classes: int | None) -> Metric | None:
    """Counts of (true, predicted) class pairs, rows are true classes; None for regression."""
    if task == "multiclass":
        return MulticlassConfusionMatrix(num_classes)
    if task == "binary":
        return BinaryConfusionMatrix()
    return None


def metric_float(value: torch.Tensor | float) -> float:
    """A logged metric as a float; float32 ones with the fewest digits that keep their value."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.float32:
        return shortest_float32(value.item())
    return float(value)


def float_metrics(metrics: dict) -> dict[str, float]:
    """Logged metrics (tensors) as floats, for metrics.json."""
    return {name: metric_float(value) for name, value in metrics.items()}
