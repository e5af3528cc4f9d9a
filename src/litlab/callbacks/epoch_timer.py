"""Wall time of each training epoch, without validation.

Written by hand because Lightning's ``Timer`` sums whole stages and ``ThroughputMonitor`` logs per
step; this measures once per epoch, so it adds no per-step cost or device sync.
"""

import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    """Logs ``time/train_epoch_s`` (seconds from the epoch's first batch to the end of its last,
    validation excluded) and ``time/train_samples_per_s``; keeps them in ``epoch_seconds``."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._start: float | None = None
        self._end: float | None = None
        self._samples = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._end, self._samples = self._now(pl_module), None, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._samples += len(batch[0])

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is not None and self._end is None and not trainer.sanity_checking:
            self._end = self._now(pl_module)  # validation runs inside the training epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is None:
            return
        seconds = (self._end or self._now(pl_module)) - self._start
        self.epoch_seconds.append(seconds)
        pl_module.log("time/train_epoch_s", seconds, on_epoch=True)
        pl_module.log("time/train_samples_per_s", self._samples / seconds, on_epoch=True)
        self._start = None

    @staticmethod
    def _now(pl_module: L.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # once per epoch: queued work counts
        return time.perf_counter()
