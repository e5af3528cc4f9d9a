"""tune=lr_find: Lightning's learning-rate range test before training (litlab/tune.py)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from litlab.errors import ConfigError
from litlab.run_folder import read_history
from litlab.train import train
from litlab.tune import find_learning_rate
from tests.helpers import (
    PROJECT_ROOT,
    REAL_DATA_DIR,
    claim,
    events,
    mnist_overrides,
    requires_real_mnist,
)

FINDER = ["tune=lr_find", "tune.num_training=30"]


def leftovers(*folders: Path) -> list[Path]:
    """Lightning's temporary checkpoints of the finder, wherever they were left."""
    return [path for folder in folders for path in folder.rglob(".lr_find*")]


def test_the_finder_alone_draws_its_curve_and_reports_its_suggestion(
    tiny_mnist, make_config, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    cfg = make_config(*mnist_overrides(tiny_mnist), *FINDER, "tune.only=true")
    metrics = train(cfg)
    folder = Path(cfg.paths.output_dir)
    suggestion = metrics["tune/lr_suggestion"]
    assert 1e-6 < suggestion < 1.0
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert (folder / "plots" / "lr_find.png").stat().st_size > 5000
    report = (folder / "report.md").read_text()
    assert f"suggests **lr = {suggestion:.3g}**" in report and "plots/lr_find.png" in report
    test = json.loads((folder / "report_data.json").read_text())["lr_find"]
    assert test["suggestion"] == suggestion and len(test["lr"]) == len(test["loss"]) <= 30
    accumulator = events(folder)
    (scalar,) = accumulator.Scalars("tune/lr_suggestion")
    assert scalar.value == pytest.approx(suggestion, rel=1e-6)
    assert accumulator.Images("tune/lr_find")
    assert not (folder / "checkpoints").exists() and not (folder / "history.csv").exists()
    assert leftovers(tmp_path) == []


def test_without_apply_training_is_exactly_a_run_without_the_finder(tiny_mnist, make_config):
    """Initial weights and random generators restored: dropout draws the same masks."""
    common = [
        *mnist_overrides(tiny_mnist),
        "model=mlp",
        "model.dropout=0.3",
        "trainer.max_epochs=2",
    ]
    plain = train(make_config(*common, run_dir="plain"))
    tuned_cfg = make_config(*common, *FINDER, run_dir="tuned")
    tuned = train(tuned_cfg)
    assert {k: v for k, v in tuned.items() if not k.startswith("time/")} == {
        k: v for k, v in plain.items() if not k.startswith("time/")
    }
    assert leftovers(Path(tuned_cfg.paths.output_dir)) == []


@pytest.mark.parametrize(
    ("optimizer", "scheduler", "initial_lr"),
    [
        ("sgd", "none", lambda lr: lr),
        pytest.param("adamw", "none", lambda lr: lr, marks=pytest.mark.slow),
        pytest.param("rmsprop", "none", lambda lr: lr, marks=pytest.mark.slow),
        ("adam", "onecycle", lambda lr: lr / 25),  # the peak max_lr; one-cycle starts at 1/25
    ],
)
def test_apply_trains_with_the_suggestion(
    tiny_mnist, make_config, optimizer, scheduler, initial_lr
):
    cfg = make_config(
        *mnist_overrides(tiny_mnist),
        f"optimizer={optimizer}",
        f"scheduler={scheduler}",
        *FINDER,
        "tune.apply=true",
        "trainer.max_epochs=1",
    )
    train(cfg)
    folder = Path(cfg.paths.output_dir)
    suggestion = json.loads((folder / "report_data.json").read_text())["lr_find"]["suggestion"]
    (epoch,) = read_history(folder / "history.csv")
    assert epoch["lr"] == pytest.approx(initial_lr(suggestion), rel=1e-6)
    assert "training used it" in (folder / "report.md").read_text()
    # the records show the rate training used
    key = ("scheduler", "max_lr") if scheduler == "onecycle" else ("optimizer", "lr")
    recorded = yaml.safe_load((folder / "config.yaml").read_text())
    assert recorded[key[0]][key[1]] == pytest.approx(suggestion)
    checkpoint = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["run_config"][key[0]][key[1]] == pytest.approx(suggestion)


def test_a_run_that_continues_from_a_checkpoint_skips_the_finder(tiny_mnist, make_config):
    cfg = make_config(*mnist_overrides(tiny_mnist), *FINDER, "ckpt_path=somewhere/last.ckpt")
    assert find_learning_rate(cfg, None, None, Path("unused")) is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.devices=2", r"tune=lr_find runs on one device, not trainer.devices=2"),
        ("tune.min_lr=2", r"tune.min_lr=2 must be below tune.max_lr=1.0"),
        ("tune.num_training=12", r"tune.num_training=12 is invalid: it must be an integer >= 20"),
    ],
)
def test_finder_settings_that_cannot_work_are_refused_before_anything_runs(
    tiny_mnist, make_config, override, message
):
    cfg = make_config(*mnist_overrides(tiny_mnist), *FINDER, override)
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert not Path(cfg.paths.output_dir).exists()


def test_a_finder_whose_loss_diverges_at_once_says_to_lower_the_rates(
    tiny_mnist, make_config, caplog
):
    cfg = make_config(
        *mnist_overrides(tiny_mnist), *FINDER, "tune.min_lr=50", "tune.max_lr=1e6", "tune.only=true"
    )
    assert train(cfg) == {}
    assert "the loss diverged after" in caplog.text and "lower tune.min_lr" in caplog.text
    report = (Path(cfg.paths.output_dir) / "report.md").read_text()
    assert "found no steepest descent" in report and "no training followed" in report
    assert "history.csv" not in report  # not listed as missing: nothing was meant to train


def test_ctrl_c_in_the_finder_ends_the_command_and_leaves_nothing(tiny_mnist, tmp_path):
    """Lightning caught the KeyboardInterrupt, ignored every further Ctrl+C and ended with
    status 1 and no word (or the finder, training and testing ran on)."""
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        *mnist_overrides(tiny_mnist, "tune=lr_find", "tune.num_training=100000"),
        "++callbacks.progress_bar=null",
        "hydra.run.dir=run",
    ]
    env = {**os.environ, "LITLAB_ROOT": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    output = ""
    while "Finding best initial lr" not in output:  # the finder's own bar, on stderr
        character = process.stderr.read(1)
        assert character, output[-2000:]
        output += character
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, rest[-2000:]
    assert "Stopped: SIGINT received during the learning-rate finder" in rest
    assert "Traceback" not in rest
    assert not (tmp_path / "run").exists()  # nothing was trained: no folder left


@pytest.mark.slow
@pytest.mark.claim
@requires_real_mnist
def test_the_suggestion_trains_at_least_as_well_as_the_default_rate(make_config):
    """`python train.py` (SimpleNN, Adam at 1e-3) for one epoch against the finder's rate
    (measured: 2e-3, 96.0 % against 95.3 % test accuracy)."""
    common = [f"paths.data_dir={REAL_DATA_DIR}", "trainer.max_epochs=1"]
    default = train(make_config(*common, run_dir="default"))
    tuned = train(make_config(*common, "tune=lr_find", "tune.apply=true", run_dir="tuned"))
    gain = tuned["test/acc"] - default["test/acc"]
    claim("tuned minus default test accuracy", gain, above=-1e-9)
