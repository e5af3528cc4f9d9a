"""litlab.run_start: the Hydra callback that works on Hydra's composed config before the run
folder exists. (Through the real command line: tests/test_cli.py and tests/test_resume.py.)"""

from pathlib import Path

import pytest

from litlab.run_start import PrepareRunFolder, check_writable
from tests.helpers import compose_quiet


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
