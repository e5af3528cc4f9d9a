"""A fit diagnosis from the per-epoch train and validation curves, in the words the tutorials
use: underfitting, overfitting (and the epoch where validation loss turned), or a good fit."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_EPOCHS = 3
# Validation loss this far (relative) above its minimum at the end, while the training loss
# kept falling, is overfitting.
OVERFIT_RISE = 0.10
# Training loss still falling by this much (relative) over the last epoch: not done learning.
STILL_LEARNING_DROP = 0.05
# A classifier below this training accuracy has not fitted its own training data.
UNDERFIT_TRAIN_ACC = 0.85


@dataclass(frozen=True)
class FitDiagnosis:
    verdict: str  # "good fit", "overfitting", "underfitting" or "too short to tell"
    explanation: str
    turn_epoch: int | None = None  # overfitting: the epoch of the lowest validation loss


def diagnose_fit(history: Sequence[dict[str, float]]) -> FitDiagnosis:
    """``history``: one dict per epoch with ``epoch``, ``train/loss``, ``val/loss`` and, for
    classifiers, ``train/acc``."""
    rows = [row for row in history if _finite(row, "train/loss") and _finite(row, "val/loss")]
    if history and not any(_finite(row, "val/loss") for row in history):
        return FitDiagnosis(
            "too short to tell",
            "No validation loss was recorded (validation was off, e.g. "
            "trainer.limit_val_batches=0), so over- or underfitting cannot be read.",
        )
    if len(rows) < MIN_EPOCHS:
        return FitDiagnosis(
            "too short to tell",
            f"{len(rows)} epoch(s) with both training and validation loss; at least "
            f"{MIN_EPOCHS} are needed to read a trend. Train longer (trainer.max_epochs).",
        )
    epochs = [int(row["epoch"]) for row in rows]
    train = np.array([row["train/loss"] for row in rows])
    val = np.array([row["val/loss"] for row in rows])
    best = int(np.argmin(val))
    if best < len(val) - 1 and val[-1] > val[best] * (1 + OVERFIT_RISE) and train[-1] < train[best]:
        return FitDiagnosis(
            "overfitting",
            f"Validation loss reached its minimum {val[best]:.4g} at epoch {epochs[best]} and "
            f"rose to {val[-1]:.4g} by epoch {epochs[-1]}, while training loss kept falling "
            f"({train[best]:.4g} -> {train[-1]:.4g}). The model memorises the training set "
            "after that epoch: stop earlier (early stopping), or regularise with dropout, "
            "weight decay, augmentation or a smaller model.",
            turn_epoch=epochs[best],
        )
    train_acc = rows[-1].get("train/acc")
    if train_acc is not None and train_acc < UNDERFIT_TRAIN_ACC:
        return FitDiagnosis(
            "underfitting",
            f"Training accuracy is only {train_acc:.4g} at the end: the model does not fit its "
            "own training data. Train longer, raise the learning rate, or use a larger model.",
        )
    drop = (train[-2] - train[-1]) / abs(train[-2]) if train[-2] else 0.0
    if drop > STILL_LEARNING_DROP and val[-1] <= val.min() * (1 + OVERFIT_RISE / 2):
        return FitDiagnosis(
            "underfitting",
            f"Training loss still fell by {drop:.0%} in the last epoch ({train[-2]:.4g} -> "
            f"{train[-1]:.4g}) and validation loss is at its lowest: the model is still "
            "learning. Train for more epochs.",
        )
    lowest = (
        "its lowest"
        if best == len(val) - 1
        else f"within {OVERFIT_RISE:.0%} of its lowest, {val[best]:.4g} at epoch {epochs[best]}"
    )
    return FitDiagnosis(
        "good fit",
        f"Validation loss ended at {val[-1]:.4g} ({lowest}) with training loss "
        f"{train[-1]:.4g}: no sign of overfitting (validation loss over {OVERFIT_RISE:.0%} above "
        "its lowest while training loss falls) or of underfitting.",
    )


def _finite(row: dict[str, float], key: str) -> bool:
    value = row.get(key)
    return value is not None and bool(np.isfinite(value))
