"""logger=wandb, offline as by default: each run's files read back with W&B's own reader
(`wandb leet inspect`), its end status, and a resume that continues the run's id."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from litlab.loggers.mlflow_logger import MlflowLogger
from litlab.loggers.run_facts import TrackedRun
from litlab.loggers.tracker import tracking
from litlab.loggers.wandb_logger import LOGGED_STEPS, WandbLogger
from litlab.run_folder import CONFIG, METRICS, PLOTS, REPORT, TRACKER_IDS
from tests.helpers import inspect_wandb_run, logged_wandb_steps


def a_run_folder(folder: Path) -> TrackedRun:
    (folder / PLOTS).mkdir(parents=True)
    for name in (CONFIG, REPORT, METRICS):
        (folder / name).write_text("{}\n")
    (folder / PLOTS / "learning_curves.png").write_bytes(b"png")
    config = {"seed": 1, "optimizer": {"lr": 0.01}}
    return TrackedRun(folder, "sweep_1/0", "study", config, "/sweeps/sweep_1", ["baseline"], "why")


def offline_runs(folder: Path) -> list[Path]:
    return sorted((folder / "wandb").glob("offline-run-*"))


def test_offline_runs_fail_and_continue_as_the_run_did(tmp_path):
    run = a_run_folder(tmp_path / "run")
    first = WandbLogger(run, project="study", save_dir=str(run.folder))
    trainer = SimpleNamespace(loggers=[first], is_global_zero=True)
    with pytest.raises(RuntimeError), tracking(trainer):
        for step in range(3):
            first.log_metrics({"val/acc": 0.1 * step}, step=step)
        raise RuntimeError("the loss became NaN")
    (offline,) = offline_runs(run.folder)
    failed = inspect_wandb_run(offline)
    assert (failed["state"], failed["exit_code"]) == ("failed", 1)
    assert (failed["name"], failed["project"], failed["tags"], failed["notes"]) == (
        "sweep_1/0",
        "study",
        ["baseline"],
        "why",
    )
    assert failed["config"]["optimizer"] == {"lr": 0.01}
    assert failed["config"]["litlab"]["sweep"] == "/sweeps/sweep_1"
    assert failed["summary"]["val/acc"] == pytest.approx(0.2)
    kept = offline / "files" / "litlab"
    assert {path.relative_to(kept).as_posix() for path in kept.rglob("*.*")} == {
        CONFIG,
        REPORT,
        METRICS,
        "plots/learning_curves.png",
    }
    ids = json.loads((run.folder / TRACKER_IDS).read_text())
    assert ids == {"wandb": failed["run_id"], LOGGED_STEPS: {"val/acc": 2}}

    run.continuing = True  # resume=auto
    second = WandbLogger(run, project="study", save_dir=str(run.folder))
    with tracking(SimpleNamespace(loggers=[second], is_global_zero=True)):
        for step in range(2, 5):  # the steps after the last checkpoint run again
            second.log_metrics({"val/acc": 0.1 * step}, step=step)
        second.log_metrics({"test/acc": 0.5}, step=4)  # new at a logged step: kept
    continued = inspect_wandb_run(offline_runs(run.folder)[-1])  # W&B syncs both files into one run
    assert continued["run_id"] == failed["run_id"] and continued["state"] == "finished"
    assert logged_wandb_steps(offline_runs(run.folder)[0]) == [0, 1, 2]
    assert logged_wandb_steps(offline_runs(run.folder)[-1]) == [3, 4, 4]  # not step 2 again
    assert continued["summary"]["test/acc"] == 0.5


def test_mlflow_and_wandb_keep_their_ids_side_by_side(tmp_path):
    run = a_run_folder(tmp_path / "run")
    loggers = [
        MlflowLogger(run, f"sqlite:///{tmp_path}/mlflow.db"),
        WandbLogger(run, project="study", save_dir=str(run.folder)),
    ]
    with tracking(SimpleNamespace(loggers=loggers, is_global_zero=True)):
        loggers[1].log_metrics({"val/acc": 0.5}, step=3)
    ids = json.loads((run.folder / TRACKER_IDS).read_text())
    assert ids["mlflow"] == loggers[0].run_id and ids["wandb"] == loggers[1].experiment.id
