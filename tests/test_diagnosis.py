"""report/diagnosis.py: the fit verdict in the tutorials' terms and the training problems, on
crafted histories and on short real runs that provoke each."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from litlab.report.diagnosis import Evidence, diagnose_fit, diagnose_training
from litlab.report_data import Diagnostics
from litlab.train import train


def curve(train_loss, val_loss, train_acc=None, val_acc=None, **extra):
    """A history: one row per epoch; accuracies as one number or one per epoch."""
    rows = []
    for epoch, (t, v) in enumerate(zip(train_loss, val_loss, strict=True)):
        row = {"epoch": epoch, "train/loss": t, "val/loss": v}
        for key, value in (("train/acc", train_acc), ("val/acc", val_acc), *extra.items()):
            if value is not None:
                row[key.replace("_", "/", 1) if "/" not in key else key] = (
                    value[epoch] if isinstance(value, list) else value
                )
        rows.append(row)
    return rows


def test_rising_validation_loss_is_overfitting_from_the_epoch_it_turned():
    diagnosis = diagnose_fit(curve([1.0, 0.5, 0.3, 0.2, 0.1], [1.0, 0.6, 0.5, 0.6, 0.8], 0.99))
    assert diagnosis.verdict == "overfitting" and diagnosis.turn_epoch == 2
    assert "epoch 2" in diagnosis.explanation and "High variance" in diagnosis.explanation


def test_a_large_and_growing_accuracy_gap_is_overfitting():
    train_acc, val_acc = [0.80, 0.90, 0.96, 0.99], [0.78, 0.84, 0.86, 0.87]
    losses = [1.0, 0.6, 0.5, 0.45]  # validation loss has not risen (yet)
    diagnosis = diagnose_fit(curve(losses, losses, train_acc, val_acc))
    assert diagnosis.verdict == "overfitting" and "gap of 12.0%" in diagnosis.explanation
    assert "grew from 6.0% at epoch 1" in diagnosis.explanation


def test_a_model_near_the_top_whose_loss_still_falls_is_still_improving_not_underfitting():
    """99 % training and 97.5 % validation accuracy, loss still falling: not high bias."""
    train_acc, val_acc = [0.95, 0.975, 0.985, 0.99], [0.95, 0.965, 0.972, 0.975]
    diagnosis = diagnose_fit(
        curve([0.20, 0.10, 0.06, 0.04], [0.20, 0.12, 0.09, 0.08], train_acc, val_acc)
    )
    assert diagnosis.verdict == "still improving"
    assert "Train for more epochs" in diagnosis.explanation


@pytest.mark.parametrize(
    ("history", "verdict"),
    [
        (curve([2.0, 1.9, 1.85, 1.8], [2.0, 1.9, 1.85, 1.8], 0.4, 0.4), "underfitting"),
        (curve([1.0, 0.3, 0.2, 0.195], [1.0, 0.35, 0.3, 0.3], 0.97, 0.95), "good fit"),
        (curve([1.0, 0.3], [1.0, 0.35], 0.97, 0.95), "too short to tell"),
        # regression: R2 0.2 with training loss as high as validation loss: high bias
        (curve([1.0, 0.85, 0.8, 0.8], [1.0, 0.85, 0.8, 0.8], **{"val/r2": 0.2}), "underfitting"),
        (curve([1.0, 0.3, 0.2, 0.2], [1.0, 0.35, 0.3, 0.3], **{"val/r2": 0.7}), "good fit"),
    ],
)
def test_verdicts(history, verdict):
    assert diagnose_fit(history).verdict == verdict


def test_a_low_training_accuracy_with_the_loss_still_falling_is_undertraining():
    diagnosis = diagnose_fit(curve([2.0, 1.6, 1.3, 1.0], [2.0, 1.6, 1.3, 1.0], 0.6, 0.6))
    assert diagnosis.verdict == "undertrained"
    assert "still fell by 23% in the last epoch" in diagnosis.explanation
    assert "trainer.max_epochs=8" in diagnosis.explanation  # twice the 4 epochs it had


def validated_every_5(train_acc: float, epochs: int = 100) -> list[dict[str, float]]:
    """trainer.check_val_every_n_epoch=5: validation after epochs 4, 9, ...; the training
    loss falls by 2 % an epoch, 10 % between two validations."""
    losses = [2.0 * 0.98**epoch for epoch in range(epochs)]
    history = curve(losses, losses, train_acc, train_acc)
    for row in history:
        if (row["epoch"] + 1) % 5:
            row["val/loss"] = row["val/acc"] = math.nan
    return history


@pytest.mark.parametrize(("epochs", "last_validation"), [(100, 94), (102, 94)])
def test_epochs_are_counted_from_the_history_when_validation_skips_epochs(epochs, last_validation):
    """20 (or 21) validated epochs of 100 (102) trained: the advice doubles the 100 (102)."""
    diagnosis = diagnose_fit(validated_every_5(0.6, epochs))
    assert diagnosis.verdict == "undertrained"
    assert f"after {epochs} epochs" in diagnosis.explanation
    assert f"trainer.max_epochs={2 * epochs})" in diagnosis.explanation
    assert f"fell by 10% since the previous validation (epoch {last_validation})" in (
        diagnosis.explanation
    )
    assert "in the last epoch" not in diagnosis.explanation


def test_still_improving_between_validations_five_epochs_apart():
    diagnosis = diagnose_fit(validated_every_5(0.99))
    assert diagnosis.verdict == "still improving"
    assert diagnosis.explanation.startswith(
        "Training loss still fell by 10% since the previous validation (epoch 94) (0.2994 -> "
        "0.2707)"
    )


def test_a_low_training_accuracy_on_a_plateau_is_underfitting():
    diagnosis = diagnose_fit(curve([2.0, 1.2, 1.0, 1.0], [2.0, 1.2, 1.0, 1.0], 0.6, 0.6))
    assert diagnosis.verdict == "underfitting" and "High bias" in diagnosis.explanation


# The iris run of issue 27: 7 epochs on 90 training and 30 validation flowers, ended by early
# stopping; 4,675 parameters. The gap grew from 6.7 to 8.9 points: one flower is 3.3 points.
IRIS_TRAIN_ACC = [0.5, 0.62, 0.7, 0.76, 0.8222, 0.8333, 0.8889]
IRIS_VAL_ACC = [0.5, 0.6, 0.6667, 0.7, 0.7667, 0.7667, 0.8]
IRIS = curve(
    [1.05, 0.95, 0.86, 0.78, 0.7, 0.63, 0.57],
    [1.06, 0.97, 0.89, 0.82, 0.76, 0.7, 0.65],
    IRIS_TRAIN_ACC,
    IRIS_VAL_ACC,
)
STOPPED = "Early stopping ended the run after epoch 6: val/acc had not improved."


def iris_evidence(val_samples=30, train_samples=90, **given):
    return Evidence(train_samples, val_samples, params=4675, stopped_early=STOPPED, **given)


def test_a_gap_inside_the_noise_of_30_samples_cannot_be_told():
    diagnosis = diagnose_fit(IRIS, evidence=iris_evidence())
    assert diagnosis.verdict == "cannot tell"
    explanation = diagnosis.explanation
    assert "the validation split has 30 samples, one is 3.3 points" in explanation
    assert "8.9 points above" in explanation and "8.3 points" in explanation  # the noise
    # what can be told: undertrained, and why (and that early stopping ended it)
    assert "not been trained long enough" in explanation and STOPPED in explanation
    assert "trainer.max_epochs=14" in explanation and "seed=1,2,3,4,5" in explanation
    assert "add cv.folds=5" in explanation  # the estimate that uses every sample
    # the curves alone, without the split sizes, still read as overfitting
    assert diagnose_fit(IRIS).verdict == "overfitting"


def test_a_fold_that_cannot_tell_points_to_its_cross_validation_summary():
    """One fold of cv.folds=5: cross-validating it again, or seeding it, is no advice."""
    diagnosis = diagnose_fit(IRIS, evidence=iris_evidence(in_cross_validation=True))
    assert diagnosis.verdict == "cannot tell"
    explanation = diagnosis.explanation
    assert "This run is one fold of a cross-validation" in explanation
    assert "cv_summary.md in the folder above" in explanation and "mean ± std" in explanation
    assert "cv.folds=5" not in explanation and "seed=" not in explanation
    assert "not been trained long enough" in explanation  # still told


def test_the_same_gap_on_3000_samples_is_overfitting():
    evidence = iris_evidence(val_samples=3000, train_samples=9000)
    assert diagnose_fit(IRIS, evidence=evidence).verdict == "overfitting"


def test_a_rise_of_the_validation_loss_inside_its_noise_cannot_be_told():
    history = curve([1.0, 0.5, 0.3, 0.2, 0.1], [1.0, 0.6, 0.5, 0.6, 0.8], 0.99)
    # per-sample losses spreading by 1.0 on 30 samples: one standard error is 0.18
    noisy = Evidence(train_samples=90, val_samples=30, loss_spread=1.0)
    diagnosis = diagnose_fit(history, evidence=noisy)
    assert diagnosis.verdict == "cannot tell"
    assert "0.18 (one standard error)" in diagnosis.explanation
    quiet = Evidence(train_samples=90, val_samples=3000, loss_spread=1.0)  # 0.018
    assert diagnose_fit(history, evidence=quiet).verdict == "overfitting"


def test_a_large_model_stopped_early_short_of_its_data_is_undertrained():
    """Training accuracy 0.9 on a plateau: as trained as it gets, unless early stopping ended
    it with a model that can fit its data (10 and more parameters per sample)."""
    history = curve([1.0, 0.4, 0.35, 0.345], [1.0, 0.4, 0.36, 0.355], 0.9, 0.9)
    big = Evidence(1000, 200, params=50_000)
    assert diagnose_fit(history, evidence=big).verdict == "good fit"
    small_stopped = Evidence(1000, 200, params=500, stopped_early=STOPPED)
    assert diagnose_fit(history, evidence=small_stopped).verdict == "good fit"  # 0.9 >= 0.85
    stopped = diagnose_fit(history, evidence=Evidence(1000, 200, 50_000, stopped_early=STOPPED))
    assert stopped.verdict == "undertrained" and "50 per training sample" in stopped.explanation


def test_a_clear_accuracy_gap_wins_over_a_loss_rise_inside_its_noise():
    history = curve(
        [1.0, 0.5, 0.3, 0.2, 0.1], [1.0, 0.6, 0.5, 0.6, 0.8], [0.8, 0.9, 0.95, 0.99, 1.0], 0.79
    )
    evidence = Evidence(train_samples=9000, val_samples=3000, loss_spread=10.0)
    assert diagnose_fit(history, evidence=evidence).verdict == "overfitting"


LN10 = math.log(10)  # the loss of a 10-class model that guesses


def assert_diverged(diagnosis, measured: str) -> None:
    assert diagnosis.verdict == "diverged" and measured in diagnosis.explanation
    assert "learning rate 10x lower" in diagnosis.explanation
    assert "tune=lr_find" in diagnosis.explanation
    assert "trainer.gradient_clip_val" in diagnosis.explanation


def test_losses_that_grew_by_orders_of_magnitude_diverged_however_short_the_run():
    losses = [2.3, 1e6, 1.8e13]
    diagnosis = diagnose_fit(curve(losses, losses, lr=[0.1] * 3))
    assert_diverged(diagnosis, "grew from 2.3 in the first epoch to 1.8e+13")
    assert "optimizer.lr=0.01" in diagnosis.explanation
    assert_diverged(diagnose_fit(curve([2.3], [2.3]), test_loss=1.8e13), "test loss grew")


def test_a_one_cycle_run_that_diverged_is_told_to_lower_its_max_lr():
    """Under OneCycleLR the schedule sets the rate from scheduler.max_lr; optimizer.lr is
    unused, so lowering it would change nothing."""
    losses = [2.3, 1e6, 1.8e13]
    one_cycle = Evidence(lr_key="scheduler.max_lr")
    diagnosis = diagnose_fit(curve(losses, losses, lr=[0.004, 0.1, 0.05]), evidence=one_cycle)
    assert_diverged(diagnosis, "grew from 2.3 in the first epoch to 1.8e+13")
    assert "(scheduler.max_lr=0.01)" in diagnosis.explanation
    assert "optimizer.lr" not in diagnosis.explanation


def test_losses_far_above_chance_diverged_even_when_they_fall():
    """optimizer.lr=1e6 on MNIST: already huge in the first epoch, then falling."""
    history = curve([1.8e15, 1.1e12, 1.0e12], [1.9e12, 1.9e12, 7.1e11], 0.13, 0.13)
    diagnosis = diagnose_fit(history, test_loss=1.8e13, chance_loss=LN10)
    assert_diverged(diagnosis, "The test loss ended at 1.8e+13, over 30 times the 2.3")


def test_a_non_finite_loss_diverged():
    assert_diverged(diagnose_fit(curve([2.3, math.nan], [2.3, 1.0])), "training loss became nan")
    assert_diverged(diagnose_fit(curve([2.3], [math.inf])), "validation loss became inf")
    stopped = (
        "NonFiniteLossError: The training loss became nan at step 37 (epoch 0). Likely causes: "
        "a learning rate too high"
    )
    diagnosis = diagnose_fit([], stopped_by=stopped)
    assert_diverged(diagnosis, "The training loss became nan at step 37 (epoch 0); training")


@pytest.mark.parametrize(
    ("train_loss", "val_loss", "test_loss"),
    [
        ([1.0, 0.3], [1.0, 0.35], 0.34),  # short, and normal
        ([0.5], [0.4], 0.4),  # one epoch
        ([2.3, 1.5, 0.9, 0.6], [2.3, 1.5, 1.6, 3.0], 3.1),  # overfitting: validation loss x2
        ([0.02, 0.001, 0.0005], [0.001, 0.0004, 0.0003], 0.0003),  # easy data, tiny losses
        ([2.6, 2.4, 2.35], [2.5, 2.4, 2.4], 2.4),  # about chance: underfitting, not diverged
    ],
)
def test_normal_runs_did_not_diverge(train_loss, val_loss, test_loss):
    diagnosis = diagnose_fit(curve(train_loss, val_loss), test_loss=test_loss, chance_loss=LN10)
    assert diagnosis.verdict != "diverged"


# -- training problems from the sampled diagnostics ----------------------------------------------
def test_training_problems_from_crafted_samples():
    healthy = Diagnostics(
        steps=list(range(6)),
        grad_norm={"0": [0.5] * 6, "2": [0.8] * 6, "total": [1.0] * 6},
        dead_relu={"1": [0.1] * 6},
        gradient_clip_val=None,
    )
    assert diagnose_training(healthy) == []
    vanishing = replace(healthy, grad_norm={"0": [1e-5] * 6, "2": [0.3] * 6, "total": [0.3] * 6})
    (problem,) = diagnose_training(vanishing)
    assert problem.name == "vanishing gradients" and "30,000 times smaller" in problem.explanation
    exploding = replace(healthy, grad_norm={"0": [1] * 6, "total": [1, 1, 1, 1e3, 1e4, 1e5]})
    assert [p.name for p in diagnose_training(exploding)] == ["exploding gradients"]
    clipped = replace(healthy, gradient_clip_val=0.5)  # every sampled norm (1.0) over the clip
    (problem,) = diagnose_training(clipped)
    assert "cut the gradient in 100% of the sampled steps" in problem.explanation
    dying = replace(healthy, dead_relu={"1": [0.1, 0.5, 0.9, 0.9, 0.95, 0.95]})
    (problem,) = diagnose_training(dying)
    assert problem.name == "dying ReLU" and "1 90%" in problem.explanation  # median of the last 5
    assert diagnose_training(None) == []


# -- real short runs that provoke each verdict -----------------------------------------------------
def report_of(cfg) -> tuple[str, dict]:
    folder = Path(cfg.paths.output_dir)
    return (folder / "report.md").read_text(), json.loads((folder / "report_data.json").read_text())


BLOBS = ["data=synthetic_classification", "callbacks.diagnostics.every_n_steps=5"]


def test_a_deep_sigmoid_network_shows_vanishing_gradients(make_config):
    cfg = make_config(
        *BLOBS,
        "model=mlp",
        "model.hidden_sizes=[32,32,32,32,32,32,32,32]",
        "model.activation=sigmoid",
        "optimizer=sgd",
        "trainer.max_epochs=2",
    )
    train(cfg)
    report, _ = report_of(cfg)
    assert "**vanishing gradients**" in report


def test_a_too_high_learning_rate_kills_relu_units(make_config):
    cfg = make_config(
        *BLOBS, "model=mlp", "optimizer=sgd", "optimizer.lr=3", "trainer.max_epochs=2"
    )
    train(cfg)
    report, _ = report_of(cfg)
    assert "**dying ReLU**" in report and "**vanishing gradients**" not in report


def test_a_large_network_on_500_noisy_samples_overfits(make_config):
    cfg = make_config(
        "data=synthetic_classification",
        "data.num_samples=700",
        "data.val_size=100",
        "data.test_size=100",
        "data.noise=3.0",
        "model=mlp",
        "model.hidden_sizes=[512,512]",
        "trainer.max_epochs=30",
        "callbacks.early_stopping=null",
    )
    train(cfg)
    report, _ = report_of(cfg)
    assert "**overfitting**" in report


def test_gradients_clipped_in_most_steps_are_reported_as_too_large(make_config):
    cfg = make_config(
        *BLOBS,
        "model=mlp",
        "optimizer=sgd",
        "trainer.gradient_clip_val=0.01",
        "trainer.max_epochs=2",
    )
    train(cfg)
    report, data = report_of(cfg)
    assert data["diagnostics"]["gradient_clip_val"] == 0.01
    assert "**exploding gradients**: Gradient clipping (trainer.gradient_clip_val=0.01)" in report


def test_a_learning_rate_of_a_million_diverges(make_config):
    """`python train.py optimizer.lr=1e6`: finite but enormous losses, not "too short to tell"."""
    cfg = make_config(
        "data=synthetic_classification", "model=mlp", "optimizer.lr=1e6", "trainer.max_epochs=1"
    )
    train(cfg)
    report, _ = report_of(cfg)
    assert "**diverged**" in report and "optimizer.lr=100000" in report
