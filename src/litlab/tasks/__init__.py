"""LightningModules: a task owns the loss, the metrics and the optimizer wiring of any nn.Module."""

from litlab.tasks.metrics import stage_metrics
from litlab.tasks.supervised import SupervisedTask

__all__ = ["SupervisedTask", "stage_metrics"]
