"""EarlyStopping: patience in validations and in training steps; the report says why it stopped."""

import json
from pathlib import Path

import pytest
import torch

from litlab.callbacks import EarlyStopping
from litlab.run_folder import HISTORY, REPORT_DATA, read_history
from litlab.train import train

# iris: 90 training flowers in batches of 16, 6 steps per epoch
IRIS = ["data=iris", "model=mlp", "trainer.max_epochs=40", "callbacks.early_stopping.patience=2"]


def fit(make_config, *extra: str) -> tuple[list[dict], str | None, str]:
    cfg = make_config(*IRIS, *extra)
    train(cfg)
    run = Path(cfg.paths.output_dir)
    stopped = json.loads((run / REPORT_DATA).read_text()).get("stopped_early")
    return read_history(run / HISTORY), stopped, (run / "report.md").read_text()


def test_the_default_patience_steps_keep_a_small_table_training(make_config):
    history, stopped, report = fit(make_config)  # 1,000 steps: 167 epochs of iris
    assert len(history) == 40 and stopped is None
    assert "Early stopping ended" not in report


def test_without_patience_steps_it_stops_as_lightnings_does_and_the_report_says_why(make_config):
    history, stopped, report = fit(make_config, "callbacks.early_stopping.patience_steps=0")
    assert len(history) < 40
    last = history[-1]["epoch"]
    assert stopped.startswith(f"Early stopping ended the run after epoch {last}: val/acc had not")
    assert "for 2 validations" in stopped and stopped in report


def test_patience_steps_make_it_wait_that_many_steps_after_the_best_value(make_config):
    history, stopped, _ = fit(make_config, "callbacks.early_stopping.patience_steps=60")
    assert len(history) < 40, "iris at patience 2 stops within 40 epochs"
    waited = int(stopped.split(" and ")[1].split(" training steps")[0].replace(",", ""))
    assert 60 <= waited < 66  # 10 epochs of 6 steps, checked once per epoch


def test_a_stop_before_patience_steps_is_withheld_and_the_state_survives_a_resume():
    stopping = EarlyStopping(monitor="val/acc", mode="max", patience=1, patience_steps=100)
    verdicts = []
    for step, value in ((10, 0.5), (20, 0.6), (30, 0.6), (120, 0.6), (130, 0.6)):
        stopping._step = step
        verdicts.append(stopping._evaluate_stopping_criteria(torch.tensor(value))[0])
    assert verdicts == [False, False, False, True, True]  # the best was at step 20
    restored = EarlyStopping(monitor="val/acc", mode="max", patience=1, patience_steps=100)
    restored.load_state_dict(stopping.state_dict())
    assert restored.best_step == 20 and restored.wait_count == stopping.wait_count


@pytest.mark.parametrize("patience_steps", [-1, 1.5, True])
def test_a_bad_patience_steps_is_refused(patience_steps):
    with pytest.raises(ValueError, match="patience_steps"):
        EarlyStopping(monitor="val/acc", patience_steps=patience_steps)
