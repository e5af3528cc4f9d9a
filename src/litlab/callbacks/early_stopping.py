"""Early stopping that cannot end a run before it has learned."""

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import early_stopping
from torch import Tensor

from litlab.config.domains import int_at_least

NOT_STOPPED = early_stopping.EarlyStoppingReason.NOT_STOPPED
PATIENCE_EXHAUSTED = early_stopping.EarlyStoppingReason.PATIENCE_EXHAUSTED
log = logging.getLogger(__name__)


class EarlyStopping(early_stopping.EarlyStopping):
    """Lightning's ``EarlyStopping`` with a patience in training steps as well as in
    validations: a run stops only when the monitored metric has not improved for ``patience``
    validations *and* for ``patience_steps`` optimizer steps.

    Lightning counts validations only. On a small table an epoch is a few steps (iris: 6), so
    five epochs without a better validation accuracy on 30 samples (one flower is 3.3 points)
    stopped a run at epoch 7 with the model at 0.89 on its own training data. On the adding
    problem the loss sits on a plateau for a thousand steps before it falls, and a patience of
    5 epochs ended the run there. ``patience_steps`` makes the patience proportional to the steps
    per epoch: on MNIST (430 steps per epoch) 1,000 steps are 2.3 epochs and ``patience``
    rules; on iris they are 167 epochs.

    Args:
        patience_steps: optimizer steps without improvement before a stop (0: Lightning's rule).
        **kwargs: Lightning's ``EarlyStopping`` arguments (``monitor``, ``mode``,
            ``patience``, ``min_delta``, ...).

    Example::

        EarlyStopping(monitor="val/acc", mode="max", patience=5, patience_steps=1000)

    Its state (the step and epoch of the best value) survives a resume; the class keeps
    Lightning's name, so a checkpoint of Lightning's callback restores into it.
    """

    def __init__(self, patience_steps: int = 1000, **kwargs: Any) -> None:
        # named apart from Trainer(min_steps), which forbids any stop before that many steps
        int_at_least(0).check("patience_steps", patience_steps)
        super().__init__(**kwargs)
        self.patience_steps = patience_steps
        self.best_step = 0
        self.best_epoch: int | None = None
        self._step = 0
        self._epoch = 0

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        self._step, self._epoch = trainer.global_step, trainer.current_epoch
        super()._run_early_stopping_check(trainer)

    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if self.wait_count == 0 and not should_stop:  # improved: a stop withheld earlier is void
            self.best_step, self.best_epoch = self._step, self._epoch
            self.stopping_reason = NOT_STOPPED
        waited = self._step - self.best_step
        exhausted = should_stop and self.stopping_reason == PATIENCE_EXHAUSTED
        if exhausted and waited < self.patience_steps:
            self.stopping_reason = NOT_STOPPED
            return False, None
        return should_stop, reason

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        explanation = self.stop_explanation()
        if explanation and trainer.is_global_zero:
            log.info(explanation)

    def stop_explanation(self) -> str | None:
        """Why it stopped the run, in one sentence; None if it did not."""
        if self.stopping_reason == NOT_STOPPED:
            return None
        if self.stopping_reason != PATIENCE_EXHAUSTED:
            return f"Early stopping ended the run after epoch {self.stopped_epoch}: " + str(
                self.stopping_reason_message
            ).removesuffix(" Signaling Trainer to stop.")
        best = f"{float(self.best_score):.4g}"
        at = f" (epoch {self.best_epoch})" if self.best_epoch is not None else ""
        return (
            f"Early stopping ended the run after epoch {self.stopped_epoch}: {self.monitor} had "
            f"not improved on {best}{at} for {self.wait_count} validations and "
            f"{self._step - self.best_step:,} training steps (callbacks.early_stopping.patience="
            f"{self.patience}, patience_steps={self.patience_steps})."
        )

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_step": self.best_step, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_step = state_dict.get("best_step", 0)
        self.best_epoch = state_dict.get("best_epoch")
