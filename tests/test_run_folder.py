"""litlab.run_folder: the atomic writer, the next free name, 'finished', and the records a
later step trusts (metrics.json, status.json, history.csv)."""

import json
import math
import os
import time
from pathlib import Path

import pytest

from litlab.run_folder import (
    BEST_CHECKPOINT,
    CHECKPOINTS,
    METRICS,
    TENSORBOARD,
    failed_job_status,
    free_path,
    is_finished,
    is_run_folder,
    leave_failure,
    read_history,
    read_job_status,
    remove_empty_parents,
    remove_if_unused,
    write_atomically,
    write_job_status,
    write_metrics,
)
from tests.helpers import compose_quiet


def test_an_atomic_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "report.md"
    write_atomically(target, "first\n")
    write_atomically(target, b"second\n")
    write_atomically(target, memoryview(b"third\n"))
    assert target.read_text() == "third\n"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text("good")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "half")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_free_names_number_before_the_suffix(tmp_path):
    assert free_path(tmp_path / "metrics.json") == tmp_path / "metrics.json"
    for name in ("metrics.json", "metrics.1.json", ".hydra"):
        (tmp_path / name).write_text("")
    assert free_path(tmp_path / "metrics.json").name == "metrics.2.json"
    assert free_path(tmp_path / ".hydra").name == ".hydra.1"


def test_a_run_is_finished_when_it_wrote_its_metrics(tmp_path):
    assert not is_finished(tmp_path)
    write_metrics(tmp_path, {"test/acc": 0.98, "val/acc": 0.97})
    assert is_finished(tmp_path)
    assert list(json.loads((tmp_path / METRICS).read_text())) == ["test/acc", "val/acc"]


def test_a_run_folder_is_known_by_its_config(tmp_path):
    assert not is_run_folder(tmp_path)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("")  # a run that failed before training
    assert is_run_folder(tmp_path)


def test_job_status_round_trip_and_damage(tmp_path):
    assert read_job_status(tmp_path) is None
    write_job_status(tmp_path, failed_job_status(ValueError("bad lr\nsecond line")))
    assert read_job_status(tmp_path) == {"status": "failed", "error": "ValueError: bad lr"}
    (tmp_path / "status.json").write_text("{not json")
    assert read_job_status(tmp_path) is None


def test_history_counts_are_integers_and_gaps_are_nan(tmp_path: Path):
    (tmp_path / "history.csv").write_text("epoch,step,train/loss,val/loss\n0,16,0.5,\n")
    (row,) = read_history(tmp_path / "history.csv")
    assert row["epoch"] == 0 and isinstance(row["step"], int) and row["train/loss"] == 0.5
    assert math.isnan(row["val/loss"])


def test_the_configs_write_where_the_contract_says(tmp_path):
    """conf/ names the folders of a run too (configs are the interface): they must agree."""
    run = tmp_path / "run"
    cfg = compose_quiet([], run, images=True)
    callbacks = cfg.callbacks
    assert Path(callbacks.best_checkpoint.dirpath) == run / CHECKPOINTS
    assert f"{callbacks.best_checkpoint.filename}.ckpt" == BEST_CHECKPOINT
    writing = [node.run_dir for node in callbacks.values() if node and "run_dir" in node]
    assert len(writing) >= 8 and {Path(folder) for folder in writing} == {run}
    assert cfg.logger.tensorboard.name == TENSORBOARD


def started_folder(run: Path, *produced: str) -> Path:
    """What a command writes before it produces anything, and ``produced`` files besides."""
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("a: 1\n")
    for name in ("train.log", "config.yaml", "run.json", *produced):
        (run / name).write_text("x")
    return run


def test_a_failed_command_that_produced_nothing_leaves_nothing(tmp_path):
    run = started_folder(tmp_path / "run")
    leave_failure(run, "train.log", ValueError("bad"), made_since=0.0)
    assert not run.exists() and tmp_path.exists()


def test_a_failed_command_that_produced_something_says_why_in_status_json(tmp_path):
    run = started_folder(tmp_path / "run", "history.csv")
    leave_failure(run, "train.log", ValueError("bad value\nsecond line"), made_since=0.0)
    assert read_job_status(run) == {"status": "failed", "error": "ValueError: bad value"}
    assert (run / "history.csv").exists() and (run / ".hydra").exists()


def test_only_a_commands_own_files_are_removed(tmp_path):
    run = started_folder(tmp_path / "run", "notes.txt")  # the user's, in a chosen folder
    assert not remove_if_unused(run, "train.log", made_since=0.0)
    assert sorted(p.name for p in run.iterdir())[-1] == "train.log"
    assert (run / "notes.txt").read_text() == "x"


def test_a_folder_that_held_the_same_names_before_the_command_is_kept(tmp_path):
    """hydra.run.dir pointed at a folder of the user's with a config.yaml and a train.log."""
    run = started_folder(tmp_path / "run")
    old = time.time() - 3600
    os.utime(run / "config.yaml", (old, old))
    assert not remove_if_unused(run, "train.log", made_since=time.time() - 60)
    assert (run / "config.yaml").exists()


def test_the_empty_parents_of_a_removed_run_go_up_to_the_log_folder(tmp_path):
    outputs = tmp_path / "outputs"
    runs = outputs / "train" / "runs"
    runs.mkdir(parents=True)
    (outputs / "eval" / "runs" / "kept").mkdir(parents=True)
    remove_empty_parents(runs / "2026-12-05_10-00-00", outputs)
    assert sorted(p.name for p in outputs.iterdir()) == ["eval"]  # train/runs went, eval stays
    assert outputs.is_dir()
