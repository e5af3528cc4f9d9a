"""Wall time of each training epoch, without validation.

Written by hand because Lightning's ``Timer`` sums whole stages and ``ThroughputMonitor`` logs per
step; this measures once per epoch (and around validation), so it adds no per-step cost or sync.
"""

import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    """Logs ``time/train_epoch_s`` (seconds spent on training batches in the epoch, validation
    runs excluded, also when they happen mid-epoch) and ``time/train_samples_per_s``; keeps the
    seconds in ``epoch_seconds``."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._clock_start: float | None = None  # None while the clock is stopped
        self._elapsed = 0.0
        self._samples = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._elapsed, self._samples = 0.0, 0
        self._clock_start = self._now(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._clock_start is None:  # first batch after a mid-epoch validation
            self._clock_start = self._now(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._samples += len(batch[0])

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(pl_module)  # validation runs inside the training epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(pl_module)
        if self._elapsed <= 0:
            return
        self.epoch_seconds.append(self._elapsed)
        pl_module.log("time/train_epoch_s", self._elapsed, on_epoch=True)
        pl_module.log("time/train_samples_per_s", self._samples / self._elapsed, on_epoch=True)

    def _stop(self, pl_module: L.LightningModule) -> None:
        if self._clock_start is not None:
            self._elapsed += self._now(pl_module) - self._clock_start
            self._clock_start = None

    @staticmethod
    def _now(pl_module: L.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # a few times per epoch: queued work counts
        return time.perf_counter()
