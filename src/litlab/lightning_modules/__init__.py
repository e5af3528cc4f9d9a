"""LightningModules: one owns the loss, the metrics and the optimizer wiring of any nn.Module."""

from litlab.lightning_modules.metrics import float_metrics, metric_float, stage_metrics
from litlab.lightning_modules.supervised import (
    SupervisedModule,
    as_predictions,
    class_probabilities,
    make_scheduler,
    task_outputs,
)

__all__ = [
    "SupervisedModule",
    "as_predictions",
    "class_probabilities",
    "float_metrics",
    "make_scheduler",
    "metric_float",
    "stage_metrics",
    "task_outputs",
]
