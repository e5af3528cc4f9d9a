"""Weight averaging (EMA, SWA): Lightning's ``WeightAveraging``, with what a litlab run needs of
it that Lightning 2.6 lacks.

Lightning keeps an ``AveragedModel`` beside the LightningModule, swaps the averaged weights in
for each validation, writes them as a checkpoint's ``state_dict`` (the current weights as
``current_model_state``, for a resume) and copies them into the module when training ends.
Added here, each measured on a litlab run with Lightning's class:

- Testing the best checkpoint after fitting used the current weights, not the averaged ones:
  ``trainer.test(ckpt_path=best)`` restores callbacks too, and Lightning's ``on_load_checkpoint``
  loaded ``current_model_state`` because its averaged model was still there from fitting (iris,
  EMA decay 0.9: the run's test/loss 0.3278 was that of ``current_model_state``; best.ckpt's
  ``state_dict`` gives 0.3744). Outside fitting the ``state_dict`` stays, and validation
  (``trainer.validate``) evaluates it without a swap.
- Before its first update the average is the model as it was built: SWA from epoch 3 (iris)
  validated the untrained network at epochs 0-3 (val/loss 1.0934 four times, against 0.99 to
  0.71) and best.ckpt followed. Until then the average follows the current weights (its first
  update copies them anyway).
- The checkpoint's ``state_dict`` was the averaged copy's whole state, metric states included:
  ``best.max_value`` (the best validation value so far) was -inf, as ``setup`` had copied it,
  against 0.8667. Only the weights are taken from the average now.
- Lightning copies the average into the module in ``on_train_end``, where GracefulStop may
  still save last.ckpt (a SIGTERM during the last validation): its ``current_model_state`` was
  the average, and the resumed run's weights differed. The copy waits for ``on_fit_end``.
- The callback comes first in conf/callbacks/default.yaml: after graceful_stop, a SIGTERM
  checkpoint at step 41 held 40 updates, and the resumed run ended with 63 of 64.

Lightning's ``state_dict()`` keeps the step of the latest update but not its epoch; that is
enough: SWA per epoch resumed exactly from an epoch's end, a SIGTERM mid-epoch and one during
validation, without it (the epoch only keeps an epoch's end from updating twice, which a
resumed run does not repeat).
"""

import itertools
import logging
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import weight_averaging
from lightning.pytorch.trainer.states import TrainerFn

from litlab.config.domains import OPEN_FRACTION, int_at_least, one_of

log = logging.getLogger(__name__)
# an EMA whose first update still makes up more of it than this at the end: decay too high
FIRST_WEIGHTS_WARNING = 0.05


class _LitlabWeightAveraging(weight_averaging.WeightAveraging):
    """What EMA and SWA share: see the module's docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._epoch = 0  # the training epoch in progress, for should_update(step_idx=...)
        self._last_batch = False  # whether that step was its epoch's last
        self._weights: set[str] = set()  # the state_dict names of parameters and buffers

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            named = itertools.chain(pl_module.named_parameters(), pl_module.named_buffers())
            self._weights = {name for name, _ in named}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        # not on_train_epoch_start: a run resumed mid-epoch does not start that epoch again
        # (EMA from epoch 1, resumed at step 41 of 64: 41 updates instead of 48)
        self._epoch, self._last_batch = trainer.current_epoch, trainer.is_last_batch
        super().on_train_batch_end(trainer, pl_module, *args)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if _fitting(trainer):
            self._follow_until_started(pl_module)
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if _fitting(trainer):
            super().on_validation_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # Lightning copies the average into the module here: on_fit_end does, below

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After every on_train_end: GracefulStop's, signalled during the last validation, saves
        # last.ckpt there, whose current_model_state must be the trained weights.
        if self._average_model.n_averaged == 0:
            log.warning(
                "Weight averaging had not started when training ended, after %d steps: the "
                "weights validated, tested and saved are the trained ones, not an average. "
                "Start it earlier: callbacks.weight_averaging.update_starting_at_epoch (ema: "
                "also update_starting_at_step) below where the run ends.",
                trainer.global_step,
            )
        self._follow_until_started(pl_module)
        super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._average_model is not None:
            self._follow_until_started(pl_module)
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if "current_model_state" in checkpoint:
            current, averaged = checkpoint["current_model_state"], checkpoint["state_dict"]
            checkpoint["state_dict"] = {
                name: averaged[name] if name in self._weights else value
                for name, value in current.items()
            }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if not _fitting(trainer):
            return  # test, validate, predict: the state_dict, averaged, is what they evaluate
        if "current_model_state" in checkpoint:
            # the weights of the current model; the rest (metric states) as the module's own
            # on_load_checkpoint left them in state_dict (a DDP rank > 0 drops rank 0's sums)
            rest = {k: v for k, v in checkpoint["state_dict"].items() if k not in self._weights}
            current = {**checkpoint["current_model_state"], **rest}
            checkpoint = {**checkpoint, "current_model_state": current}
        super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def _follow_until_started(self, pl_module: L.LightningModule) -> None:
        """Before the first update, the average is the current weights."""
        assert self._average_model is not None
        if self._average_model.n_averaged > 0:
            return
        average = self._average_model.module
        pairs = zip(
            itertools.chain(average.parameters(), average.buffers()),
            itertools.chain(pl_module.parameters(), pl_module.buffers()),
            strict=True,
        )
        with torch.no_grad():
            for averaged, current in pairs:
                averaged.copy_(current)


def _fitting(trainer: L.Trainer) -> bool:
    return trainer.state.fn == TrainerFn.FITTING


class EMAWeightAveraging(_LitlabWeightAveraging, weight_averaging.EMAWeightAveraging):
    """An exponential moving average of the weights, ``average = decay * average + (1 - decay)
    * weights`` after every ``update_every_n_steps``-th optimizer step, from step
    ``update_starting_at_step`` and epoch ``update_starting_at_epoch`` on (both counted from 0;
    None: from the start). Validation, test and the checkpoints' ``state_dict`` use it.

    Lightning's ``update_starting_at_epoch`` does not hold the step updates back: it adds one
    more update at the end of each epoch from then on, while every step updates from step 0
    (2 epochs of 6 steps, ``update_starting_at_epoch=1``: 13 updates). Here it starts the step
    updates at that epoch (6 updates), as its name says. A run whose average still holds over 5 %
    of the first update's weights at its end is told to lower ``decay``.

    Example::

        EMAWeightAveraging(decay=0.999)  # reaches back about 1 / (1 - decay) = 1,000 steps
    """

    def __init__(
        self,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        **kwargs: Any,
    ) -> None:
        OPEN_FRACTION.check("decay", decay)
        int_at_least(1).check("update_every_n_steps", update_every_n_steps)
        for name, value in (
            ("update_starting_at_step", update_starting_at_step),
            ("update_starting_at_epoch", update_starting_at_epoch),
        ):
            if value is not None:
                int_at_least(0).check(name, value)
        super().__init__(
            decay=decay,
            update_every_n_steps=update_every_n_steps,
            update_starting_at_step=update_starting_at_step,
            update_starting_at_epoch=update_starting_at_epoch,
            **kwargs,
        )
        self.decay = decay

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # mnist_cnn, 2,150 updates at 0.999: 12 % of the average was the first update's
        # weights, and it tested worse than the trained weights (docs/configs.md)
        updates = int(self._average_model.n_averaged)
        first = self.decay ** (updates - 1) if updates else 0.0
        if first > FIRST_WEIGHTS_WARNING:
            log.warning(
                "The moving average is still %.0f %% the weights of its first update after %d "
                "updates: decay=%s reaches back about %d steps. Lower it to reach back a "
                "fraction of the run, e.g. callbacks.weight_averaging.decay=%.3g.",
                100 * first,
                updates,
                self.decay,
                round(1 / (1 - self.decay)),
                max(1 - 4 / updates, 0.5),
            )
        super().on_fit_end(trainer, pl_module)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        if step_idx is None:
            return False  # after optimizer steps only
        start = self.update_starting_at_epoch
        return (start is None or self._epoch >= start) and super().should_update(step_idx=step_idx)


class SWAWeightAveraging(_LitlabWeightAveraging):
    """Stochastic weight averaging: the equal average of the weights at the end of every epoch
    from ``update_starting_at_epoch`` on (counted from 0), or, with ``update_interval="step"``,
    after every optimizer step from that epoch on. Validation, test and the checkpoints'
    ``state_dict`` use it once it has started; before, the current weights.

    Example::

        SWAWeightAveraging(update_starting_at_epoch=3)  # the average of epochs 3, 4, ...
    """

    def __init__(
        self, update_starting_at_epoch: int = 0, update_interval: str = "epoch", **kwargs: Any
    ) -> None:
        int_at_least(0).check("update_starting_at_epoch", update_starting_at_epoch)
        one_of("epoch", "step").check("update_interval", update_interval)
        super().__init__(**kwargs)  # no averaging function: AveragedModel's equal average
        self.update_starting_at_epoch = update_starting_at_epoch
        self.update_interval = update_interval

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        # "epoch": after the epoch's last step, not at its end as Lightning's epoch updates
        # are: the epoch's validation runs before on_train_epoch_end, and validated the
        # previous epoch's average while best.ckpt, saved after it, held this one's (iris, SWA
        # from epoch 1: epochs 1 and 2 validated the same weights, val/loss 0.3212 twice)
        if step_idx is None or self._epoch < self.update_starting_at_epoch:
            return False
        return self.update_interval == "step" or self._last_batch
