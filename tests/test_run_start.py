"""litlab.run_start: the Hydra callback that works on Hydra's composed config before the run
folder exists. (Through the real command line: tests/test_cli.py and tests/test_resume.py.)"""

import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from litlab.config import plain_config
from litlab.run_start import PrepareRunFolder, check_writable
from tests.helpers import compose_quiet, error_paragraph, folder_digest, run_entry_point


def test_resume_auto_points_hydra_at_the_run_to_continue(tmp_path):
    run = tmp_path / "outputs" / "train" / "runs" / "2026-01-01_10-00-00"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / ".hydra").mkdir()
    cfg = compose_quiet([f"paths.log_dir={tmp_path}/outputs", "resume=auto"], tmp_path / "new")
    PrepareRunFolder().on_run_start(config=cfg, config_name="train")
    assert Path(cfg.hydra.run.dir) == run and cfg.hydra.output_subdir == ".hydra.1"
    assert Path(cfg.ckpt_path) == run / "checkpoints" / "last.ckpt"
    assert cfg.resume is None  # looked up once: train() continues from ckpt_path


def test_a_file_in_the_way_of_the_run_folder_ends_the_command(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    cfg = compose_quiet([f"hydra.run.dir={tmp_path}/file/run"], tmp_path / "unused")
    with pytest.raises(SystemExit) as stopped:
        PrepareRunFolder().on_run_start(config=cfg, config_name="train")
    assert stopped.value.code == 2
    assert "is not a writable folder" in " ".join(capsys.readouterr().err.split())
    check_writable(tmp_path / "a" / "b")  # a folder still to be made under a writable one


# -- resume=auto: the stopped run's config ---------------------------------------------------
def stopped_run(tmp_path: Path, *overrides: str) -> Path:
    """outputs/train/runs/<time>/ of a run started from the command line with ``overrides`` and
    stopped: its config.yaml, Hydra's record of its group options, its last.ckpt."""
    run = tmp_path / "outputs" / "train" / "runs" / "2026-01-01_10-00-00"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    cfg = compose_quiet([f"paths.log_dir={tmp_path}/outputs", *overrides], run)
    (run / "config.yaml").write_text(OmegaConf.to_yaml(plain_config(cfg)))
    choices = {"hydra": {"runtime": {"choices": cfg.hydra.runtime.choices}}}
    (run / ".hydra").mkdir()
    OmegaConf.save(choices, run / ".hydra" / "hydra.yaml")
    return run


def test_resume_auto_continues_with_the_stopped_runs_config(tmp_path, caplog):
    run = stopped_run(tmp_path, "model=mlp", "trainer.max_epochs=2", "optimizer.lr=0.002")
    overrides = [f"paths.log_dir={tmp_path}/outputs", "resume=auto", "trainer.max_epochs=5"]
    cfg = compose_quiet(overrides, tmp_path / "new")
    callback = PrepareRunFolder()
    callback.on_run_start(config=cfg, config_name="train")
    assert cfg.optimizer.lr == 0.002  # left out: the run's, not conf/'s 0.001
    assert cfg.model._target_ == "litlab.models.MLP" and "hidden_size" not in cfg.model
    assert cfg.hydra.runtime.choices.model == "mlp"  # so the records name the run's options
    assert cfg.trainer.max_epochs == 5  # trains longer, as the command says
    with caplog.at_level(logging.INFO, logger="litlab.run_start"):
        callback.on_job_start(config=cfg)  # once the run's log file is open
    (line,) = [record.getMessage() for record in caplog.records]
    assert line.startswith(f"resume=auto: continuing {run} with its own config")
    assert "optimizer.lr=0.002" in line and "trainer.max_epochs (2 -> 5)" in line


def test_resume_auto_refuses_an_override_that_changes_the_run(tmp_path, capsys):
    run = stopped_run(tmp_path, "optimizer.lr=0.002")
    before = folder_digest(run)
    overrides = [f"paths.log_dir={tmp_path}/outputs", "resume=auto", "optimizer.lr=0.01", "seed=7"]
    cfg = compose_quiet(overrides, tmp_path / "new")
    with pytest.raises(SystemExit) as stopped:
        PrepareRunFolder().on_run_start(config=cfg, config_name="train")
    assert stopped.value.code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert f"resume=auto continues {run} with its own config" in message
    assert "optimizer.lr (0.002 -> 0.01)" in message and "seed (42 -> 7)" in message
    assert folder_digest(run) == before


# -- names that form paths -------------------------------------------------------------------
def test_a_task_name_that_leaves_the_outputs_folder_creates_nothing(tmp_path):
    cwd = tmp_path / "work"
    cwd.mkdir()
    result = run_entry_point("train.py", "task_name=../../escape", data_dir=cwd, cwd=cwd)
    assert result.returncode == 2
    message = error_paragraph(result)
    assert "task_name=../../escape" in message and "task_name=my_experiment" in message
    assert list(tmp_path.rglob("*")) == [cwd]  # no run folder, inside outputs/ or outside


@pytest.mark.parametrize(
    "name",
    [
        "task_name=a/b",
        "task_name=/abs",
        "task_name=..",
        "logger.tensorboard.name=../tensorboard",
        "logger.tensorboard.version=..\\x",
        "callbacks.best_checkpoint.filename=../../best",
    ],
)
def test_names_that_would_leave_their_folder_are_refused(tmp_path, capsys, name):
    cfg = compose_quiet([name], tmp_path / "unused")
    with pytest.raises(SystemExit) as stopped:
        PrepareRunFolder().on_multirun_start(config=cfg, config_name="train")
    assert stopped.value.code == 2
    assert f"Error: {name} would put files outside" in " ".join(capsys.readouterr().err.split())


def test_whole_folders_stay_the_users_to_choose(tmp_path):
    chosen = [f"hydra.run.dir={tmp_path}/any/folder", f"paths.log_dir={tmp_path}/logs"]
    cfg = compose_quiet([*chosen, "task_name=my_experiment", "logger.tensorboard.name="], tmp_path)
    PrepareRunFolder().on_run_start(config=cfg, config_name="train")
