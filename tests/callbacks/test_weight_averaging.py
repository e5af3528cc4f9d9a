"""Weight averaging (callbacks/weight_averaging=ema|swa): validation, test, best.ckpt's
state_dict and eval.py use the averaged weights; a resumed run continues both the current and
the averaged weights exactly; bad settings are refused before training."""

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.demos.boring_classes import BoringModel

from litlab.build import build_trainer, load_trained
from litlab.callbacks import EMAWeightAveraging, SWAWeightAveraging
from litlab.config import validate_config
from litlab.config.domains import ArgumentError
from litlab.errors import ConfigError, TrainingInterrupted
from litlab.evaluate import evaluate
from litlab.run_folder import HISTORY, read_history
from litlab.train import train
from tests.helpers import (
    EXACT,
    assert_same,
    compose_quiet,
    final_state,
    make_tiny_mnist,
)

# iris: 90 training flowers in batches of 16, 6 steps per epoch
IRIS = ["data=iris", "model=mlp", "trainer.max_epochs=12", "callbacks.early_stopping=null"]
EMA = ["callbacks/weight_averaging=ema", "callbacks.weight_averaging.decay=0.9"]
WEIGHTS = ("net.layers.1.weight", "net.layers.1.bias", "net.layers.5.weight")


def checkpoint(run: Path, name: str = "best") -> dict:
    return torch.load(run / "checkpoints" / f"{name}.ckpt", weights_only=True)


def evaluated(make_config, run: Path, split: str, name: str = "best") -> dict[str, float]:
    """eval.py on the run's best.ckpt (or another): the model load_trained builds from its
    state_dict."""
    ckpt = f"ckpt_path={run}/checkpoints/{name}.ckpt"
    overrides = (ckpt, f"split={split}", "++callbacks.evaluation_images=null")
    return evaluate(make_config(*overrides, config_name="eval", run_dir=f"eval_{name}_{split}"))


def test_the_config_composes_with_either_option_and_none_by_default(make_config):
    # none (an empty option, as scheduler=none): Hydra cannot sweep a group over null
    for off in ((), ("callbacks/weight_averaging=none",)):
        trainer = build_trainer(make_config(*off))
        assert not any(isinstance(cb, WeightAveraging) for cb in trainer.callbacks)
    ema = instantiate(make_config(*EMA).callbacks.weight_averaging)
    assert isinstance(ema, EMAWeightAveraging)
    assert (ema.decay, ema.update_every_n_steps, ema.update_starting_at_epoch) == (0.9, 1, None)
    swa = instantiate(make_config("callbacks/weight_averaging=swa").callbacks.weight_averaging)
    assert isinstance(swa, SWAWeightAveraging)
    assert (swa.update_starting_at_epoch, swa.update_interval) == (2, "epoch")
    for other in ("none", "evaluation"):  # no defaults list of their own
        assert "weight_averaging" not in make_config(f"callbacks={other}").callbacks


def test_validation_test_best_ckpt_and_eval_use_the_averaged_weights(make_config):
    cfg = make_config(*IRIS, *EMA)
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    best = checkpoint(run)
    averaged, current = best["state_dict"], best["current_model_state"]
    for name in WEIGHTS:  # an average of the last ~10 steps, not the weights of the last one
        assert (averaged[name] - current[name]).abs().max() > 1e-3, name
    # the metric states are the module's, only the weights are averaged
    assert averaged["best.max_value"] == current["best.max_value"] == metrics["val/acc_best"]
    tested = evaluated(make_config, run, "test")
    assert tested["test/loss"] == pytest.approx(metrics["test/loss"], abs=1e-6)
    assert tested["test/acc"] == metrics["test/acc"]
    validated = evaluated(make_config, run, "val")  # best.ckpt's epoch, as validation saw it
    history = read_history(run / HISTORY)
    assert validated["val/loss"] == pytest.approx(history[best["epoch"]]["val/loss"], abs=1e-6)
    # the current weights test otherwise: the comparison above could fail
    assert abs(loss_with(run, current) - metrics["test/loss"]) > 1e-3


def loss_with(run: Path, state: dict) -> float:
    """The test loss of best.ckpt's model with the weights ``state``."""
    trained = load_trained(str(run / "checkpoints" / "best.ckpt"), "unused")
    trained.module.load_state_dict(state)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    results = trainer.test(trained.module, datamodule=trained.datamodule, verbose=False)
    return results[0]["test/loss"]


def test_swa_validates_the_current_weights_until_it_starts(make_config):
    plain = make_config(*IRIS, "trainer.max_epochs=5", run_dir="plain")
    train(plain)
    swa = make_config(
        *IRIS,
        "trainer.max_epochs=5",
        "callbacks/weight_averaging=swa",
        "callbacks.weight_averaging.update_starting_at_epoch=3",
    )
    train(swa)
    before = [row["val/loss"] for row in read_history(Path(plain.paths.output_dir) / HISTORY)]
    after = [row["val/loss"] for row in read_history(Path(swa.paths.output_dir) / HISTORY)]
    # epochs 0-2: the trained weights (Lightning's own validated the untrained network);
    # epoch 3: the average of one sample, epoch 3's own last weights
    assert after[:4] == pytest.approx(before[:4], abs=1e-7)
    assert abs(after[4] - before[4]) > 1e-4  # epoch 4: the average of epochs 3 and 4
    # what each validation saw is what the checkpoint saved after it holds (Lightning's epoch
    # updates come after the validation: it saw the previous epoch's average)
    run = Path(swa.paths.output_dir)
    last = checkpoint(run, "last")
    validated = evaluated(make_config, run, "val", "last")
    assert validated["val/loss"] == pytest.approx(after[last["epoch"]], abs=1e-6)


def fit_boring(callback: L.Callback, epochs: int = 2) -> None:
    L.Trainer(
        max_epochs=epochs,
        limit_train_batches=6,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[callback],
    ).fit(BoringModel())


@pytest.mark.parametrize(
    ("callback", "updates"),
    [
        (EMAWeightAveraging(), 12),  # every step of 2 epochs of 6
        (EMAWeightAveraging(update_every_n_steps=4), 3),  # steps 0, 4, 8
        (EMAWeightAveraging(update_starting_at_step=8), 4),
        # Lightning's: every step, and once more at the end of epoch 1 (13)
        (EMAWeightAveraging(update_starting_at_epoch=1), 6),
        (SWAWeightAveraging(update_starting_at_epoch=0), 2),  # each epoch's last step
        (SWAWeightAveraging(update_starting_at_epoch=1, update_interval="step"), 6),
    ],
)
def test_updates_start_where_the_settings_say(callback, updates):
    fit_boring(callback)
    assert callback._average_model.n_averaged.item() == updates


def test_a_run_that_ends_before_averaging_starts_says_so(make_config, caplog):
    late = [
        "callbacks/weight_averaging=swa",
        "callbacks.weight_averaging.update_starting_at_epoch=9",
    ]
    cfg = make_config(*IRIS, "trainer.max_epochs=2", *late)
    train(cfg)
    assert "Weight averaging had not started when training ended, after 12 steps" in caplog.text
    best = checkpoint(Path(cfg.paths.output_dir))
    for name in WEIGHTS:  # not averaged: the current weights, never the untrained ones
        assert torch.equal(best["state_dict"][name], best["current_model_state"][name])


def test_a_decay_too_high_for_the_run_says_so(make_config, caplog):
    train(make_config(*IRIS, "trainer.max_epochs=2", "callbacks/weight_averaging=ema"))
    assert (  # 0.999 ** 11
        "The moving average is still 99 % the weights of its first update after 12 updates: "
        "decay=0.999 reaches back about 1000 steps. Lower it to reach back a fraction of the "
        "run, e.g. callbacks.weight_averaging.decay=0.667." in caplog.text
    )
    caplog.clear()
    train(make_config(*IRIS, *EMA, run_dir="lower"))  # 0.9 ** 71
    assert "The moving average is still" not in caplog.text


def test_a_decay_outside_0_1_is_refused_before_training(make_config):
    cfg = make_config(
        *IRIS, "callbacks/weight_averaging=ema", "callbacks.weight_averaging.decay=1.5"
    )
    with pytest.raises(ConfigError) as refused:
        train(cfg)
    assert str(refused.value) == (
        "callbacks.weight_averaging.decay=1.5 is invalid: it must be a number in (0, 1), the "
        "share of the average each update keeps: it reaches back about 1 / (1 - decay) steps "
        "(0.999: 1,000), e.g. callbacks.weight_averaging.decay=0.999."
    )
    assert not Path(cfg.paths.output_dir).exists()


@pytest.mark.parametrize(
    ("option", "key", "value", "expected"),
    [
        ("ema", "decay", 0, "a number in (0, 1)"),
        ("ema", "update_every_n_steps", 0, "an integer >= 1"),
        ("ema", "update_starting_at_step", -1, "an integer >= 0 (or null: from the first step)"),
        ("swa", "update_starting_at_epoch", -1, "an integer >= 0 (counted from 0)"),
        ("swa", "update_interval", "batch", "epoch or step"),
    ],
)
def test_bad_settings_name_the_key_and_a_value_that_works(
    make_config, option, key, value, expected
):
    cfg = make_config(
        f"callbacks/weight_averaging={option}", f"callbacks.weight_averaging.{key}={value}"
    )
    with pytest.raises(ConfigError, match=rf"^callbacks\.weight_averaging\.{key}=") as refused:
        validate_config(cfg)
    assert f"it must be {expected}" in str(refused.value)
    assert f", e.g. callbacks.weight_averaging.{key}=" in str(refused.value)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: EMAWeightAveraging(decay=1.0), "decay"),
        (lambda: EMAWeightAveraging(update_starting_at_epoch=-1), "update_starting_at_epoch"),
        (lambda: SWAWeightAveraging(update_starting_at_epoch=None), "update_starting_at_epoch"),
        (lambda: SWAWeightAveraging(update_interval="batch"), "update_interval"),
    ],
)
def test_the_constructors_refuse_what_the_config_checks_refuse(build, argument):
    with pytest.raises(ArgumentError) as refused:
        build()
    assert refused.value.argument == argument


# -- exact resume ----------------------------------------------------------------------------
# Tiny MNIST with dropout and augmentation (tests.helpers.EXACT: 4 epochs of 16 steps), EMA
# from epoch 1: 48 updates.
EMA_FROM_EPOCH_1 = [*EMA, "callbacks.weight_averaging.update_starting_at_epoch=1"]
SIGTERM = ["+callbacks.signal._target_=tests.probes.SignalAt"]
STOPS = {
    "after_epoch_2": ["trainer.max_epochs=2", "test=false"],
    "sigterm_mid_epoch_2": [*SIGTERM, "+callbacks.signal.step=40"],
    # GracefulStop saves last.ckpt in on_train_end, before the average goes into the module
    "sigterm_in_the_last_validation": [
        *SIGTERM,
        "+callbacks.signal.step=64",
        "+callbacks.signal.in_validation=true",
    ],
}


def ema_config(data_dir: Path, run_dir: Path, *extra: str):
    return compose_quiet([f"paths.data_dir={data_dir}", *EXACT, *EMA_FROM_EPOCH_1, *extra], run_dir)


def last_checkpoint(run: Path) -> tuple[dict, torch.Tensor]:
    last = checkpoint(run, "last")
    return last["current_model_state"], last["averaging_state"]["n_averaged"]


@pytest.fixture(scope="module")
def uninterrupted_ema(tmp_path_factory):
    root = tmp_path_factory.mktemp("ema")
    data_dir = make_tiny_mnist(root / "data")
    metrics = train(ema_config(data_dir, root / "straight"))
    return data_dir, root / "straight", final_state(root / "straight", metrics)


@pytest.mark.slow
@pytest.mark.parametrize("stop", STOPS)
def test_an_ema_run_resumed_from_last_ckpt_matches_an_uninterrupted_one(
    uninterrupted_ema, tmp_path, stop
):
    """The averaged weights (last.ckpt's state_dict), the current ones, the optimizer state and
    every metric equal those of a run that was never stopped."""
    data_dir, straight_run, straight = uninterrupted_ema
    run = tmp_path / "resumed"
    if stop == "after_epoch_2":
        train(ema_config(data_dir, run, *STOPS[stop]))
    else:
        with pytest.raises(TrainingInterrupted):
            train(ema_config(data_dir, run, *STOPS[stop]))
    resumed = train(ema_config(data_dir, run, f"ckpt_path={run}/checkpoints/last.ckpt"))
    weights, optimizer, metrics = final_state(run, resumed)
    if stop == "sigterm_in_the_last_validation":  # nothing left to fit: the test's metrics
        straight = (*straight[:2], {k: v for k, v in straight[2].items() if k in metrics})
        assert {"test/acc", "test/loss"} <= set(metrics)
    assert_same((weights, optimizer, metrics), straight)
    current, updates = last_checkpoint(run)
    straight_current, straight_updates = last_checkpoint(straight_run)
    assert updates == straight_updates == 48  # epochs 1 to 3
    for name, tensor in current.items():
        assert torch.equal(tensor, straight_current[name]), name
    assert resumed["test/acc"] > 0.5
