"""Lightning callbacks for what Lightning's own do not cover."""

from litlab.callbacks.epoch_timer import EpochTimer

__all__ = ["EpochTimer"]
