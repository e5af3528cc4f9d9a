"""Lightning callbacks for what Lightning's own do not cover."""

from litlab.callbacks.epoch_timer import EpochTimer
from litlab.callbacks.finite_loss import StopOnNonFiniteLoss
from litlab.callbacks.graceful_stop import GracefulStop
from litlab.callbacks.last_checkpoint import LastCheckpoint

__all__ = ["EpochTimer", "GracefulStop", "LastCheckpoint", "StopOnNonFiniteLoss"]
