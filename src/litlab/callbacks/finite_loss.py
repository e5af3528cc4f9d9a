"""Stop training when the loss becomes NaN or infinite, before it reaches a checkpoint."""

from pathlib import Path
from typing import Any

import lightning as L
import torch

from litlab.errors import NonFiniteLossError
from litlab.resume import last_good_checkpoint
from litlab.run_folder import CHECKPOINTS


class StopOnNonFiniteLoss(L.Callback):
    """Check the training loss every ``check_every_n_steps`` steps and before every checkpoint
    save; on NaN or inf raise an error that names the step, the loss and the likely causes.

    ``null`` means every step on one CPU, where the check is free, and every 20 steps on
    accelerators (reading the loss makes the host wait for the device) and under DDP (the ranks
    agree through a collective). A NaN spreads into
    the weights and stays, so a later check still catches it, and none is saved meanwhile.
    Written by hand: Lightning's EarlyStopping(check_finite) looks only at the monitored
    validation metric, once per epoch, and then stops as if training had succeeded.
    """

    def __init__(self, run_dir: str | Path, check_every_n_steps: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.check_every_n_steps = check_every_n_steps
        self._loss: torch.Tensor | None = None
        self._checked_step = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        self._loss = loss.detach()
        cheap = self._loss.device.type == "cpu" and trainer.world_size == 1  # no collective
        every = self.check_every_n_steps or (1 if cheap else 20)
        if trainer.global_step - self._checked_step >= every:
            self._check(trainer, pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self._check(trainer, pl_module)  # raising here keeps the file on disk as it was

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step, since = trainer.global_step, self._checked_step
        self._checked_step = step
        finite = self._loss is None or bool(torch.isfinite(self._loss).item())
        # under DDP every rank must raise at the same step, or the others wait in a collective
        if not trainer.strategy.reduce_boolean_decision(not finite, all=False):
            return
        if finite:
            self._loss = torch.tensor(float("nan"))  # another rank's loss diverged
        where = f"step {step}" if step - since <= 1 else f"a step between {since + 1} and {step}"
        raise NonFiniteLossError(
            f"The training loss became {self._loss.item()} at {where} (epoch "
            f"{trainer.current_epoch}). Likely causes: a learning rate too high for this model "
            f"(now {_learning_rate(trainer)}; try optimizer.lr 10x smaller), a loss that does not "
            "fit the model's outputs (e.g. loss=bce or loss=nll on data of another task), or "
            "exploding gradients (trainer.gradient_clip_val=1.0 caps them). Nothing was saved "
            f"after the fault; {last_good_checkpoint(self.run_dir / CHECKPOINTS)}"
        )


def _learning_rate(trainer: L.Trainer) -> str:
    rates = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
    return ", ".join(f"{rate:g}" for rate in rates) or "unknown"
