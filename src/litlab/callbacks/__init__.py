"""Lightning callbacks for what Lightning's own do not cover."""

from litlab.callbacks.diagnostics import TrainingDiagnostics
from litlab.callbacks.early_stopping import EarlyStopping
from litlab.callbacks.epoch_timer import EpochTimer
from litlab.callbacks.evaluation_images import EvaluationImages
from litlab.callbacks.finite_loss import StopOnNonFiniteLoss
from litlab.callbacks.first_batch import FirstBatch
from litlab.callbacks.graceful_stop import GracefulStop
from litlab.callbacks.last_checkpoint import LastCheckpoint
from litlab.callbacks.network_summary import NetworkSummary
from litlab.callbacks.progress_bar import ProgressBar
from litlab.callbacks.report_data import ReportData
from litlab.callbacks.sequence_gradients import SequenceGradients
from litlab.callbacks.top_losses import TopLosses
from litlab.callbacks.trial_pruning import TrialPruning
from litlab.callbacks.weight_averaging import EMAWeightAveraging, SWAWeightAveraging

__all__ = [
    "EMAWeightAveraging",
    "EarlyStopping",
    "EpochTimer",
    "EvaluationImages",
    "FirstBatch",
    "GracefulStop",
    "LastCheckpoint",
    "NetworkSummary",
    "ProgressBar",
    "ReportData",
    "SequenceGradients",
    "SWAWeightAveraging",
    "StopOnNonFiniteLoss",
    "TopLosses",
    "TrainingDiagnostics",
    "TrialPruning",
]
