"""The life every tracker shares: started on rank zero only, ended once with how the block
ended, and an end that fails does not hide the run's own outcome. (The trackers themselves:
test_mlflow_logger.py, test_wandb_logger.py.)"""

from pathlib import Path
from types import SimpleNamespace

import pytest
from lightning.pytorch.loggers import CSVLogger

from litlab.errors import NonFiniteLossError
from litlab.loggers.run_facts import TrackedRun
from litlab.loggers.tracker import RunEnd, Tracker, trackers, tracking


class Recorder(Tracker):
    """A tracker that keeps what it was told."""

    key = "recorder"

    def __init__(self, folder: Path, fail_at_end: bool = False, fail_at_start=False) -> None:
        self.run = TrackedRun(folder, "run", "train", {})
        self.calls: list[str] = []
        self.fail_at_end, self.fail_at_start = fail_at_end, fail_at_start

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_at_start:
            raise OSError("the server refused")
        self.has_run = True

    def end(self, how: RunEnd) -> None:
        self.calls.append(how.value)
        if self.fail_at_end:
            raise OSError("the server went away")


@pytest.mark.parametrize(
    ("error", "ended"),
    [
        (None, "finished"),
        (NonFiniteLossError("loss is nan"), "failed"),
        (ValueError("a bug"), "failed"),
        (KeyboardInterrupt(), "killed"),
        (SystemExit(1), "killed"),  # Lightning's own exit after Ctrl+C under DDP
    ],
)
def test_trackers_end_as_the_run_ended(tmp_path, error, ended):
    tracker = Recorder(tmp_path)
    trainer = SimpleNamespace(loggers=[CSVLogger(tmp_path), tracker], is_global_zero=True)
    assert trackers(trainer) == [tracker]
    try:
        with tracking(trainer):
            if error is not None:
                raise error
    except BaseException as raised:  # noqa: BLE001
        assert raised is error
    assert tracker.calls == ["start", ended]


def test_other_ranks_start_nothing(tmp_path):
    tracker = Recorder(tmp_path)
    with tracking(SimpleNamespace(loggers=[tracker], is_global_zero=False)):
        pass
    assert tracker.calls == []


def test_an_end_that_fails_is_a_warning(tmp_path, caplog):
    tracker = Recorder(tmp_path, fail_at_end=True)
    with (
        pytest.raises(NonFiniteLossError),
        tracking(SimpleNamespace(loggers=[tracker], is_global_zero=True)),
    ):
        raise NonFiniteLossError("loss is nan")
    assert "Could not end the recorder run" in caplog.text and "server went away" in caplog.text


def test_artifacts_are_the_files_a_run_left(tmp_path):
    tracker = Recorder(tmp_path)
    assert tracker.artifacts() == []
    (tmp_path / "plots").mkdir()
    for name in ("config.yaml", "report.md", "plots/b.png", "plots/a.png", "history.csv"):
        (tmp_path / name).write_text("")
    assert [path.relative_to(tmp_path).as_posix() for path in tracker.artifacts()] == [
        "config.yaml",
        "report.md",
        "plots/a.png",
        "plots/b.png",
    ]


def test_a_tracker_that_cannot_start_fails_the_ones_started(tmp_path):
    started, refused = Recorder(tmp_path), Recorder(tmp_path, fail_at_start=True)
    with pytest.raises(OSError, match="refused"):
        with tracking(SimpleNamespace(loggers=[started, refused], is_global_zero=True)):
            raise AssertionError("the block does not run")
    assert started.calls == ["start", "failed"] and refused.calls == ["start", "failed"]


def test_trackers_record_the_config_the_run_trains_with(tmp_path):
    """tune.apply changes the learning rate after the trainer (and its loggers) were built."""
    tracker = Recorder(tmp_path)
    trained = {"optimizer": {"lr": 0.02}}
    with tracking(SimpleNamespace(loggers=[tracker], is_global_zero=True), trained):
        assert tracker.run.config == trained
