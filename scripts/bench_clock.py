"""A callback the benchmark adds to the `train.py` commands it times (PYTHONPATH=scripts):
wall-clock stamps of a run's phases, written as JSON when fitting ends.

    +callbacks.bench_clock._target_=bench_clock.EpochClock +callbacks.bench_clock.path=F

Stamps are `time.time()`, comparable with the benchmark's own clock at launch: launch to
`first_step` is the start-up a user waits through; `epoch_start` to the next one (the last
epoch: to `fit_end`) is everything an epoch costs, validation, checkpoints and images included.
"""

import json
import time
from pathlib import Path

import lightning as L
import torch


class EpochClock(L.Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.stamps: dict[str, float | list[float]] = {"epoch_start": []}

    def _now(self, pl_module: L.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # queued work belongs to the phase before
        return time.time()

    def setup(self, trainer, pl_module, stage) -> None:
        self.stamps.setdefault("setup", self._now(pl_module))

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self.stamps["sanity_start"] = self._now(pl_module)

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        self.stamps["sanity_end"] = self._now(pl_module)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.stamps["epoch_start"].append(self._now(pl_module))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.stamps.setdefault("first_step", self._now(pl_module))

    def on_fit_end(self, trainer, pl_module) -> None:
        self.stamps["fit_end"] = self._now(pl_module)
        self.path.write_text(json.dumps(self.stamps))


def epoch_seconds(stamps: dict) -> list[float]:
    """Each epoch's whole cost: from its start to the next epoch's (the last: to fit_end)."""
    bounds = [*stamps["epoch_start"], stamps["fit_end"]]
    return [end - start for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
