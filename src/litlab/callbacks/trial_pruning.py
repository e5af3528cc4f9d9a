"""Reports to an Optuna trial after every validation, and prunes."""

import logging
import math
from typing import Any

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn

from litlab.hparams_search.study import PRUNED_EPOCH, TrialLink, pruner_name, prunes

log = logging.getLogger(__name__)


class TrialPruning(L.Callback):
    """Reports ``metric`` to trial ``trial`` of the study ``study_name`` in ``storage`` after
    every validation (step = validations so far: epochs, unless validation runs within an
    epoch), and stops training when the study's pruner says the trial is not promising: the run
    then ends as an early stop does (last.ckpt saved, the best checkpoint tested, report.md
    saying why). Writes through the storage, so it works in any process or machine that
    reaches the database; under DDP rank zero decides and the others follow.

    Hand-written: optuna-integration's PyTorchLightningPruningCallback raises TrialPruned inside
    Lightning's validation hook, which ends fit as an error, before the epoch's checkpoint and
    without the run's report and test.

    Args:
        storage: the study's storage URL.
        study_name: the study's name.
        trial: the trial's number in the study.
        metric: the validation metric the study optimizes (``val/acc_best``).
        pruner: the study's pruner, a name (median, hyperband, ...) or a mapping with
            ``_target_``; ``none`` only reports.

    Example::

        TrialPruning("sqlite:///outputs/study.db", "mnist", trial=7, metric="val/acc_best",
                     pruner="median")
    """

    def __init__(
        self, storage: str, study_name: str, trial: int, metric: str, pruner: Any = "none"
    ) -> None:
        self.link = TrialLink(storage, study_name, int(trial), pruner)
        self.metric = metric
        self.validations = 0
        self.pruned_epoch: int | None = None
        self.pruned_value = math.nan
        self._trial: Any = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self.validations += 1
        prune = self._report(trainer) if trainer.is_global_zero else False
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune, src=0)
        if prune:
            trainer.should_stop = True
            self.pruned_epoch = trainer.current_epoch + 1

    def _report(self, trainer: L.Trainer) -> bool:
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            log.warning(
                "%s was not logged in validation: trial %d gets no report.",
                self.metric,
                self.link.number,
            )
            return False
        try:
            if self._trial is None:
                self._trial = self.link.trial()
            self._trial.report(float(value), step=self.validations)
            prune = prunes(self.link.pruner) and self._trial.should_prune()
        except Exception as err:  # noqa: BLE001 - a busy database must not end the training
            log.warning("Could not report to trial %d (%s); it trains on.", self.link.number, err)
            return False
        if not prune:
            return False
        self.pruned_value = float(value)
        self._trial.set_user_attr(PRUNED_EPOCH, trainer.current_epoch + 1)
        return True

    def stop_explanation(self) -> str | None:
        """Why the trial stopped, in one sentence; None if it was not pruned."""
        if self.pruned_epoch is None:
            return None
        value = (
            f" ({self.metric} {self.pruned_value:.4g})" if math.isfinite(self.pruned_value) else ""
        )
        return (
            f"Pruned after epoch {self.pruned_epoch}: the {pruner_name(self.link.pruner)} pruner "
            f"judged trial {self.link.number}{value} not promising beside the study's other "
            "trials at that point, so training stopped here."
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        explanation = self.stop_explanation()
        if explanation and trainer.is_global_zero:
            log.info(explanation)

    def state_dict(self) -> dict[str, Any]:
        return {"validations": self.validations, "pruned_epoch": self.pruned_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.validations = state_dict.get("validations", 0)
        self.pruned_epoch = state_dict.get("pruned_epoch")
