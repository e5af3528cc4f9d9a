"""A fit diagnosis in the terms the tutorials teach, from the per-epoch curves: diverged,
underfitting (high bias), overfitting (high variance), still improving, or a good fit; and
training problems read from the sampled gradient diagnostics: vanishing or exploding gradients
and dying ReLU units, each with the fix the tutorials give."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from litlab.errors import NonFiniteLossError
from litlab.report_data import Diagnostics

MIN_EPOCHS = 3
# Divergence: a final loss this many times the loss of a model that guesses (ln(number of
# classes) for cross-entropy) comes from weights blown up by the updates. A trained model ends
# below that chance level, and even a badly overfitted one within a few times it (a 512x512 MLP
# on noisy 3-class data, 30 epochs: validation loss 1.8 times chance).
DIVERGED_OVER_CHANCE = 30.0
# ... or this many times the first epoch's training loss (which includes the untrained start):
# overfitting raises the validation loss by tens of percent, not by three orders of magnitude.
DIVERGED_GROWTH = 1000.0
# Validation loss this far (relative) above its minimum at the end, while the training loss
# kept falling, is overfitting.
OVERFIT_RISE = 0.10
# A gap between training and validation accuracy this large, and growing, is overfitting too.
LARGE_ACCURACY_GAP = 0.05
# Training loss still falling by this much (relative) over the last epoch: still improving.
STILL_LEARNING_DROP = 0.05
# A classifier below this training accuracy has not fitted its own training data.
UNDERFIT_TRAIN_ACC = 0.85
# A difference counts as evidence when it exceeds this many standard errors of the split(s) it
# was measured on (about 95 % of the differences between two equal models stay inside it).
NOISE_Z = 2.0
# A model with at least this many parameters per training sample can fit them all: a training
# accuracy below CAN_FIT_ACC then says it was not trained long enough, not that it is too small.
CAN_FIT_PARAMS_PER_SAMPLE = 10.0
CAN_FIT_ACC = 0.95
# A regression model explaining less than this share of the validation variance (R2), with
# validation loss close to training loss, has not fitted its data either.
UNDERFIT_R2 = 0.5
# Training problems: the first layer's gradient this many times smaller than the last's;
# the total gradient norm growing this many times; clipping in more than this share of the
# sampled steps; a ReLU layer with more than this share of its units dead.
VANISHING_RATIO = 100.0
EXPLODING_GROWTH = 100.0
CLIPPING_SHARE = 0.5
DEAD_SHARE = 0.5
# Gradient samples averaged (median) at the start and at the end of training.
WINDOW = 5


@dataclass(frozen=True)
class FitDiagnosis:
    # "diverged", "good fit", "overfitting", "underfitting", "undertrained", "still
    # improving", "cannot tell" (the evidence is inside the noise) or "too short to tell"
    verdict: str
    explanation: str
    turn_epoch: int | None = None  # overfitting: the epoch of the lowest validation loss


@dataclass(frozen=True)
class Evidence:
    """What the curves alone do not say: how many samples the splits hold (the noise of what
    was measured on them), the model's size, how the run ended and where it belongs. Unknown:
    None."""

    train_samples: int | None = None
    val_samples: int | None = None
    params: int | None = None
    loss_spread: float | None = None  # standard deviation of the per-sample test loss
    stopped_early: str | None = None  # early stopping's explanation, when it ended the run
    # a fold (or the refit) of a cross-validation, whose cv_summary.md is in the folder above
    in_cross_validation: bool = False
    # the config key that sets the learning rate: scheduler.max_lr under a one-cycle schedule
    lr_key: str = "optimizer.lr"


@dataclass(frozen=True)
class TrainingProblem:
    name: str  # "vanishing gradients", "exploding gradients" or "dying ReLU"
    explanation: str  # what was measured, and the fix


def diagnose_fit(
    history: Sequence[dict[str, float]],
    test_loss: float | None = None,
    chance_loss: float | None = None,
    stopped_by: str = "",
    evidence: Evidence = Evidence(),
) -> FitDiagnosis:
    """``history``: one dict per epoch with ``epoch``, ``train/loss``, ``val/loss`` and, for
    classifiers, ``train/acc`` and ``val/acc`` (regression: ``val/r2``). ``test_loss``: the
    final test loss; ``chance_loss``: the loss of a model that guesses, where the loss has one;
    ``stopped_by``: the error that ended the run (its status.json), if any; ``evidence``: the
    split sizes that say which differences are noise, the model's size, how the run ended."""
    diverged = _diverged(history, test_loss, chance_loss, stopped_by, evidence.lr_key)
    if diverged is not None:
        return diverged
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
    # rows holds the validated epochs only (trainer.check_val_every_n_epoch=5: every fifth);
    # the epochs trained are the history's, which counts from 0
    undertrained = _undertrained(rows, evidence, int(history[-1]["epoch"]) + 1)
    # each sign of overfitting is a verdict, or "cannot tell" when it is inside the noise: a
    # clear sign wins over one that cannot be told
    signs = [
        _rising_validation_loss(rows, evidence, undertrained),
        _growing_accuracy_gap(rows, evidence, undertrained),
    ]
    signs = sorted((sign for sign in signs if sign), key=lambda sign: sign.verdict != "overfitting")
    return (
        next(iter(signs), None)
        or _underfitting(rows, undertrained)
        or _still_improving(rows)
        or _good_fit(rows)
    )


def _diverged(
    history: Sequence[dict[str, float]],
    test_loss: float | None,
    chance_loss: float | None,
    stopped_by: str,
    lr_key: str,
) -> FitDiagnosis | None:
    """A run stopped by a NaN loss, a final loss that is not finite, or one far above chance or
    above the first epoch's loss; ``lr_key``: the config key the advice names."""
    if stopped_by.startswith(NonFiniteLossError.__name__):
        sentence = stopped_by.removeprefix(f"{NonFiniteLossError.__name__}: ").split(". ")[0]
        return _divergence(f"{sentence}; training stopped there.", history, lr_key)
    finals = _final_losses(history, test_loss)
    broken = [
        f"the {name} loss became {value}"
        for name, value in finals.items()
        if not np.isfinite(value)
    ]
    if broken:
        return _divergence(f"{', '.join(broken).capitalize()}.", history, lr_key)
    if not finals:
        return None
    name, value = max(finals.items(), key=lambda item: item[1])
    if chance_loss and value > DIVERGED_OVER_CHANCE * chance_loss:
        return _divergence(
            f"The {name} loss ended at {value:.3g}, over {DIVERGED_OVER_CHANCE:g} times the "
            f"{chance_loss:.3g} of a model that guesses (the same probability for every class).",
            history,
            lr_key,
        )
    first = next((row["train/loss"] for row in history if _finite(row, "train/loss")), None)
    if first is not None and first > 0 and value > DIVERGED_GROWTH * first:
        return _divergence(
            f"The {name} loss grew from {first:.3g} in the first epoch to {value:.3g}.",
            history,
            lr_key,
        )
    return None


def _final_losses(history: Sequence[dict[str, float]], test_loss: float | None) -> dict[str, float]:
    """The last training loss (NaN included: it is logged every epoch), the last validation
    loss recorded (an epoch without validation leaves NaN) and the test loss."""
    finals = {}
    if history and "train/loss" in history[-1]:
        finals["training"] = history[-1]["train/loss"]
    val = [row["val/loss"] for row in history if not np.isnan(row.get("val/loss", np.nan))]
    if val:
        finals["validation"] = val[-1]
    if test_loss is not None:
        finals["test"] = test_loss
    return finals


def _divergence(what: str, history: Sequence[dict[str, float]], lr_key: str) -> FitDiagnosis:
    rates = [row["lr"] for row in history if _finite(row, "lr")]
    lower = f"10x lower ({lr_key}={max(rates) / 10:g})" if rates else "10x lower"
    return FitDiagnosis(
        "diverged",
        f"{what} The updates overshot and fed on themselves until the weights blew up, most "
        "often from a learning rate too high for this model: the run learned nothing usable. "
        f"Train again with a learning rate {lower}, or let the learning-rate finder pick one "
        "(tune=lr_find), and clip gradients (trainer.gradient_clip_val=1.0).",
    )


def _curves(rows: Sequence[dict[str, float]]) -> tuple[list[int], np.ndarray, np.ndarray]:
    epochs = [int(row["epoch"]) for row in rows]
    return (
        epochs,
        np.array([r["train/loss"] for r in rows]),
        np.array([r["val/loss"] for r in rows]),
    )


def _rising_validation_loss(
    rows: Sequence[dict[str, float]], evidence: Evidence, undertrained: str
) -> FitDiagnosis | None:
    epochs, train, val = _curves(rows)
    best = int(np.argmin(val))
    if (
        best == len(val) - 1
        or val[-1] <= val[best] * (1 + OVERFIT_RISE)
        or train[-1] >= train[best]
    ):
        return None
    n, spread = evidence.val_samples, evidence.loss_spread
    if n and spread is not None and val[-1] - val[best] < NOISE_Z * spread / np.sqrt(n):
        return _cannot_tell(
            f"the validation loss rose from {val[best]:.4g} (epoch {epochs[best]}) to "
            f"{val[-1]:.4g}, but a loss measured on {n} samples whose losses spread by "
            f"{spread:.3g} moves by {spread / np.sqrt(n):.2g} (one standard error) by chance",
            evidence,
            undertrained,
            per_sample_points=False,
        )
    return FitDiagnosis(
        "overfitting",
        f"High variance: validation loss reached its minimum {val[best]:.4g} at epoch "
        f"{epochs[best]} and rose to {val[-1]:.4g} by epoch {epochs[-1]}, while training loss "
        f"kept falling ({train[best]:.4g} -> {train[-1]:.4g}). The model memorises the "
        "training set after that epoch (the best checkpoint is from there): stop earlier "
        "(early stopping), or regularise with dropout, weight decay, augmentation, more data "
        "or a smaller model.",
        turn_epoch=epochs[best],
    )


def _growing_accuracy_gap(
    rows: Sequence[dict[str, float]], evidence: Evidence, undertrained: str
) -> FitDiagnosis | None:
    if not all(_finite(row, "train/acc") and _finite(row, "val/acc") for row in rows):
        return None
    gaps = [row["train/acc"] - row["val/acc"] for row in rows]
    earlier = gaps[-MIN_EPOCHS]
    if gaps[-1] <= LARGE_ACCURACY_GAP or gaps[-1] <= earlier:
        return None
    last = rows[-1]
    noise = _gap_noise(last["train/acc"], last["val/acc"], evidence)
    if noise is not None and gaps[-1] < NOISE_Z * noise:
        return _cannot_tell(
            f"the training accuracy {last['train/acc']:.4g} is {gaps[-1] * 100:.1f} points above "
            f"the validation accuracy {last['val/acc']:.4g}, but a gap measured on these splits "
            f"moves by {noise * 100:.1f} points (one standard error) by chance",
            evidence,
            undertrained,
        )
    return FitDiagnosis(
        "overfitting",
        f"High variance: training accuracy {last['train/acc']:.4g} against validation accuracy "
        f"{last['val/acc']:.4g}, a gap of {gaps[-1]:.1%} that grew from {earlier:.1%} at "
        f"epoch {int(rows[-MIN_EPOCHS]['epoch'])}. The model learns its training set better "
        "than the task: regularise (dropout, weight decay, augmentation), get more data, or use "
        "a smaller model.",
    )


def _underfitting(rows: Sequence[dict[str, float]], undertrained: str) -> FitDiagnosis | None:
    """``undertrained``: :func:`_undertrained`'s finding, which comes first."""
    last = rows[-1]
    _, train, val = _curves(rows)
    # training accuracy is measured under dropout and augmentation: validation accuracy above
    # it shows what the model fits without them
    fitted = max(last.get("train/acc", np.nan), last.get("val/acc", np.nan))
    if undertrained:
        return FitDiagnosis("undertrained", undertrained)
    if np.isfinite(fitted) and fitted < UNDERFIT_TRAIN_ACC:
        return FitDiagnosis(
            "underfitting",
            f"High bias: training accuracy is only {last['train/acc']:.4g} at the end (validation "
            f"{last.get('val/acc', np.nan):.4g}), its loss no longer falling; the model does not "
            "fit its own training data. Use a larger model (wider or deeper), raise the learning "
            "rate, or reduce regularisation.",
        )
    r2 = last.get("val/r2")
    if r2 is not None and np.isfinite(r2) and r2 < UNDERFIT_R2 and train[-1] >= 0.8 * val[-1]:
        still = _drop(train) > STILL_LEARNING_DROP
        more = " Its loss is still falling: more epochs will help first." if still else ""
        return FitDiagnosis(
            "underfitting",
            f"High bias: the model explains only R2 = {r2:.3g} of the validation targets' "
            f"variance, and its training loss ({train[-1]:.4g}) is as high as its validation "
            f"loss ({val[-1]:.4g}): it does not fit the training data either. Use a larger "
            f"model, train longer, or add features.{more}",
        )
    return None


def _can_fit(evidence: Evidence) -> bool:
    n, params = evidence.train_samples, evidence.params
    return bool(n and params and params >= CAN_FIT_PARAMS_PER_SAMPLE * n)


def _short_of_fit(rows: Sequence[dict[str, float]], evidence: Evidence) -> bool:
    """Whether a classifier fits its training data less than a model like it does: below
    UNDERFIT_TRAIN_ACC, or below CAN_FIT_ACC for a model that can fit every sample."""
    last = rows[-1]
    fitted = max(last.get("train/acc", np.nan), last.get("val/acc", np.nan))
    if not np.isfinite(fitted):
        return False
    return fitted < UNDERFIT_TRAIN_ACC or (_can_fit(evidence) and fitted < CAN_FIT_ACC)


def _undertrained(rows: Sequence[dict[str, float]], evidence: Evidence, epochs: int) -> str:
    """Why a training accuracy short of fitting (:func:`_short_of_fit`) after ``epochs`` epochs
    is a training too short rather than a model too small ("": no sign of that, or not short):
    its loss still falling, or early stopping having ended the run; a model with enough
    parameters to fit every sample says so too (and is held to CAN_FIT_ACC)."""
    if not _short_of_fit(rows, evidence):
        return ""
    last = rows[-1]
    _, train, _ = _curves(rows)
    reasons = []
    if _drop(train) > STILL_LEARNING_DROP:
        reasons.append(f"its loss still fell by {_drop(train):.0%} {_since_previous(rows)}")
    if not reasons and not evidence.stopped_early:
        return ""  # on a plateau, and not stopped: the model is as trained as it gets
    if _can_fit(evidence):
        per_sample = evidence.params / evidence.train_samples
        reasons.append(
            f"a model of {evidence.params:,} parameters ({per_sample:,.0f} per training sample) "
            "can fit its training data"
        )
    if not reasons:
        return ""
    advice = f"Train for more epochs (e.g. trainer.max_epochs={2 * epochs})"
    if evidence.stopped_early:
        advice = (
            f"{evidence.stopped_early} {advice}, with early stopping more patient "
            "(callbacks.early_stopping.patience_steps) or off (callbacks.early_stopping=null)"
        )
    accuracy = last.get("train/acc", np.nan)
    return (
        f"The training accuracy is {accuracy:.4g} after {epochs} epochs, and "
        f"{' and '.join(reasons)}: the model has not been trained long enough. {advice}."
    )


def _gap_noise(train_acc: float, val_acc: float, evidence: Evidence) -> float | None:
    """The standard error of a difference between two accuracies measured on the training and
    validation splits (binomial; add-one smoothing, so that 1.0 on 30 samples is not exact)."""
    if not evidence.val_samples:
        return None
    variance = _binomial_variance(val_acc, evidence.val_samples)
    if evidence.train_samples:
        variance += _binomial_variance(train_acc, evidence.train_samples)
    return float(np.sqrt(variance))


def _binomial_variance(accuracy: float, n: int) -> float:
    p = (accuracy * n + 1) / (n + 2)
    return p * (1 - p) / n


def _cannot_tell(
    what: str,
    evidence: Evidence,
    undertrained: str,
    per_sample_points: bool = True,
) -> FitDiagnosis:
    """``undertrained``: :func:`_undertrained`'s finding, which can still be told;
    ``per_sample_points``: say what one sample weighs in points of accuracy."""
    n = evidence.val_samples
    one = f", one is {100 / n:.2g} points of accuracy" if n and per_sample_points else ""
    told = f" What can be told: {undertrained[0].lower()}{undertrained[1:]}" if undertrained else ""
    return FitDiagnosis(
        "cannot tell",
        f"Cannot tell over- from underfitting: the validation split has {n} samples{one}. "
        f"{what[0].upper()}{what[1:]}: a difference this small is inside the noise, and no "
        f"verdict is drawn from it.{told} {_judge_on_little_data(evidence)}",
    )


def _judge_on_little_data(evidence: Evidence) -> str:
    """How to judge the model beyond one noisy validation split: cross-validate, unless this
    run is a fold already, whose summary then does the judging."""
    if evidence.in_cross_validation:
        # seeds of one fold would not help: the summary's spread over the folds is the measure
        return (
            "This run is one fold of a cross-validation: judge the model by the cv_summary.md in "
            "the folder above, which gives the folds' mean ± std over every training and "
            "validation sample, not by one fold alone."
        )
    return (
        "To judge a model on little data, cross-validate it (add cv.folds=5: every training and "
        "validation sample is validated on once, and cv_summary.md gives the folds' mean ± std), "
        "or compare several seeds (python train.py -m seed=1,2,3,4,5 ...: the sweep summary gives "
        "the spread)."
    )


def _still_improving(rows: Sequence[dict[str, float]]) -> FitDiagnosis | None:
    _, train, val = _curves(rows)
    drop = _drop(train)
    if drop <= STILL_LEARNING_DROP or val[-1] > val.min() * (1 + OVERFIT_RISE / 2):
        return None
    return FitDiagnosis(
        "still improving",
        f"Training loss still fell by {drop:.0%} {_since_previous(rows)} ({train[-2]:.4g} -> "
        f"{train[-1]:.4g}) and validation loss is at its lowest: the model fits its data "
        "and is still learning. Train for more epochs (trainer.max_epochs).",
    )


def _good_fit(rows: Sequence[dict[str, float]]) -> FitDiagnosis:
    epochs, train, val = _curves(rows)
    best = int(np.argmin(val))
    lowest = (
        "its lowest"
        if best == len(val) - 1
        else f"within {OVERFIT_RISE:.0%} of its lowest, {val[best]:.4g} at epoch {epochs[best]}"
    )
    return FitDiagnosis(
        "good fit",
        f"Validation loss ended at {val[-1]:.4g} ({lowest}) with training loss "
        f"{train[-1]:.4g}, and the model fits its training data: none of the signs of "
        "underfitting (high bias), overfitting (high variance) or a model still improving "
        "that this diagnosis looks for.",
    )


def _since_previous(rows: Sequence[dict[str, float]]) -> str:
    """Over what the last two rows' change was measured: one epoch, or several where
    validation skips epochs (trainer.check_val_every_n_epoch)."""
    previous, last = (int(row["epoch"]) for row in rows[-2:])
    if last - previous == 1:
        return "in the last epoch"
    return f"since the previous validation (epoch {previous})"


def _drop(train: np.ndarray) -> float:
    return float((train[-2] - train[-1]) / abs(train[-2])) if train[-2] else 0.0


def _finite(row: dict[str, float], key: str) -> bool:
    value = row.get(key)
    return value is not None and bool(np.isfinite(value))


# -- training problems, from callbacks.diagnostics' samples ------------------------------------
def diagnose_training(diagnostics: Diagnostics | None) -> list[TrainingProblem]:
    """From the sampled gradient norms (layers in forward order, plus ``total``) and dead-ReLU
    shares of report_data.json; none without samples."""
    if diagnostics is None:
        return []
    norms = {k: np.array(v, dtype=float) for k, v in diagnostics.grad_norm.items()}
    dying = _dying_relu(diagnostics.dead_relu)
    # dead units pass no gradient: the layers before them then look vanishing, for that reason
    vanishing = None if dying else _vanishing(norms)
    problems = [vanishing, _exploding(norms, diagnostics.gradient_clip_val), dying]
    return [problem for problem in problems if problem is not None]


def _recent(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)][-WINDOW:]
    return float(np.median(finite)) if len(finite) else float("nan")


def _vanishing(norms: dict[str, np.ndarray]) -> TrainingProblem | None:
    layers = [name for name in norms if name != "total"]
    if len(layers) < 2:
        return None
    first, last = layers[0], layers[-1]
    ratio = _recent(norms[last]) / _recent(norms[first]) if _recent(norms[first]) else np.inf
    if not ratio > VANISHING_RATIO:
        return None
    smaller = "is zero, against" if np.isinf(ratio) else f"is {ratio:,.0f} times smaller than"
    return TrainingProblem(
        "vanishing gradients",
        f"The first layer's gradient norm ({first}: {_recent(norms[first]):.2e}) {smaller} "
        f"the last layer's ({last}: {_recent(norms[last]):.2e}) over the last sampled steps: "
        "the early layers barely learn. Use ReLU (or leaky ReLU) "
        "instead of sigmoid or tanh, add batch norm (model.batch_norm=true), or a better "
        "initialisation (He for ReLU, Xavier for tanh); fewer layers help too.",
    )


def _exploding(norms: dict[str, np.ndarray], clip: float | None) -> TrainingProblem | None:
    total = norms.get("total")
    if total is None or len(total) == 0:
        return None
    if not np.all(np.isfinite(total)):
        return TrainingProblem(
            "exploding gradients",
            "The gradient norm became infinite or NaN: the updates overflowed. Lower the "
            "learning rate, clip gradients (trainer.gradient_clip_val=1.0) or add batch norm.",
        )
    start = float(np.median(total[:WINDOW]))
    growth = _recent(total) / start if start > 0 else 0.0
    if growth > EXPLODING_GROWTH:
        return TrainingProblem(
            "exploding gradients",
            f"The total gradient norm grew {growth:,.0f} times, from {start:.3g} in the first "
            f"sampled steps to {_recent(total):.3g} in the last: the updates feed on themselves. "
            "Lower the learning rate, clip gradients (trainer.gradient_clip_val=1.0), or add "
            "batch norm.",
        )
    share = float(np.mean(total > clip)) if clip else 0.0
    if share > CLIPPING_SHARE:
        return TrainingProblem(
            "exploding gradients",
            f"Gradient clipping (trainer.gradient_clip_val={clip:g}) cut the gradient in "
            f"{share:.0%} of the sampled steps (median norm {float(np.median(total)):.3g}): the "
            "raw gradients are too large for the learning rate. Lower the learning rate; "
            "clipping then only catches the outliers it is meant for.",
        )
    return None


def _dying_relu(dead: dict[str, list[float]]) -> TrainingProblem | None:
    shares = {layer: _recent(np.array(values, dtype=float)) for layer, values in dead.items()}
    dying = {layer: share for layer, share in shares.items() if share > DEAD_SHARE}
    if not dying:
        return None
    listed = ", ".join(f"{layer} {share:.0%}" for layer, share in dying.items())
    return TrainingProblem(
        "dying ReLU",
        f"Most units of {len(dying)} ReLU layer(s) output zero for every sample ({listed} dead "
        "over the last sampled steps): they pass no gradient and no longer learn. Lower the "
        "learning rate, use leaky ReLU (model.activation=leaky_relu), or a better "
        "initialisation.",
    )
