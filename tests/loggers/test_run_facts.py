"""What trackers record about a run: its facts, its flat config, the ids a resume continues."""

import json
from pathlib import Path

from litlab.loggers.run_facts import TrackedRun, tracked_run
from litlab.run_folder import TRACKER_IDS


def test_tracked_run_of_a_single_run(make_config, tmp_path):
    cfg = make_config("tags=[baseline,7]", "notes=first try", "task_name=study")
    run = tracked_run(cfg)
    assert run.folder == tmp_path / "run" and run.name == "run"
    assert (run.task_name, run.sweep, run.notes) == ("study", None, "first try")
    assert run.tags == ["baseline", "7"]
    facts = run.facts()
    assert facts["task"] == "study" and facts["run_folder"] == str(tmp_path / "run")
    assert "sweep" not in facts and facts["torch_version"] and len(facts["git_commit"]) == 40
    flat = run.flat_config()
    assert flat["optimizer.lr"] == "0.001" and flat["model._target_"].startswith("litlab.models")
    assert not any(key.startswith(("paths.", "hydra.")) for key in flat)
    assert flat["tags"] == '["baseline", 7]'  # a list as JSON text


def test_ids_are_kept_in_the_run_folder_for_a_resume(tmp_path: Path):
    run = TrackedRun(tmp_path, "run", "train", {})
    assert run.previous_id("mlflow") is None and run.recorded("step", -1) == -1
    run.remember("mlflow", "abc")
    run.remember("steps", {"val/acc": 12})
    again = TrackedRun(tmp_path, "run", "train", {}, continuing=True)
    assert again.previous_id("mlflow") == "abc" and again.recorded("steps") == {"val/acc": 12}
    assert again.previous_id("steps") is None  # not an id
    rerun = TrackedRun(tmp_path, "run", "train", {})  # not from its checkpoint: all anew
    assert rerun.previous_id("mlflow") is None
    rerun.remember("wandb", "xyz")
    assert json.loads((tmp_path / TRACKER_IDS).read_text()) == {"wandb": "xyz"}
    (tmp_path / TRACKER_IDS).write_text("{broken")
    assert again.previous_id("mlflow") is None  # a damaged file: a new tracked run


def test_a_run_continues_when_its_checkpoint_is_in_its_folder(make_config, tmp_path):
    folder = tmp_path / "run"
    resumed = make_config(f"ckpt_path={folder}/checkpoints/last.ckpt")
    assert tracked_run(resumed).continuing
    assert tracked_run(resumed).facts()["ckpt_path"] == f"{folder}/checkpoints/last.ckpt"
    elsewhere = make_config(f"ckpt_path={tmp_path}/other/checkpoints/last.ckpt")
    assert not tracked_run(elsewhere).continuing  # a new folder: new tracked runs
