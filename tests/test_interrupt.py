"""Stopping a real `python train.py` with SIGTERM or SIGKILL, and continuing it with
`resume=auto` in its own run folder."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from litlab import PROJECT_ROOT
from tests.conftest import QUIET, make_tiny_mnist
from tests.test_cli import TINY, error_paragraph, run

STEPS_PER_EPOCH = 16  # 500 training images, batch 32
# Long enough to be stopped from outside; resumed runs pass a smaller trainer.max_epochs.
ENDLESS = [*TINY, "model=mlp", "model.hidden_sizes=[16]", "callbacks.early_stopping=null"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_tiny_mnist(tmp_path / "data")
    return tmp_path


def start(root: Path, *args: str) -> subprocess.Popen:
    env_run = ["env", f"LITLAB_DATA_DIR={root / 'data'}", f"LITLAB_ROOT={root}"]
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *QUIET, *ENDLESS, *args]
    return subprocess.Popen(
        [*env_run, *command], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_step(process: subprocess.Popen, last: Path, step: int) -> list[int]:
    """Poll last.ckpt until it holds ``step`` or later; return the steps seen on the way."""
    seen: list[int] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if last.exists():
            saved = torch.load(last, weights_only=True)["global_step"]  # never half-written
            if not seen or seen[-1] != saved:
                seen.append(saved)
            if saved >= step:
                return seen
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no checkpoint at step {step}: {process.communicate()[1][-2000:]}")


def wait_for_run_dir(process: subprocess.Popen, root: Path, task_name: str) -> Path:
    deadline = time.monotonic() + 180
    while not list((root / "outputs").glob(f"{task_name}/runs/*/checkpoints")):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    return only_run(root, task_name)


def only_run(root: Path, task_name: str) -> Path:
    (run_dir,) = (root / "outputs" / task_name / "runs").iterdir()
    return run_dir


def test_sigterm_saves_and_resume_auto_continues_in_place(root):
    process = start(root, "task_name=term", "trainer.max_epochs=1000")
    run_dir = wait_for_run_dir(process, root, "term")
    last = run_dir / "checkpoints" / "last.ckpt"
    wait_for_step(process, last, 2 * STEPS_PER_EPOCH)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    message = " ".join(stderr[stderr.index("Stopped: ") :].split())
    assert "SIGTERM received" in message and str(last) in message
    assert "task_name=term trainer.max_epochs=1000 resume=auto" in message
    stopped = torch.load(last, weights_only=True)
    assert not (run_dir / "metrics.json").exists()

    epochs = stopped["epoch"] + 2
    args = [*ENDLESS, "task_name=term", f"trainer.max_epochs={epochs}", "resume=auto"]
    resumed = run("train.py", *args, data_dir=root / "data", cwd=root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert only_run(root, "term") == run_dir  # continued in place, not in a new folder
    final = torch.load(last, weights_only=True)
    assert final["global_step"] == epochs * STEPS_PER_EPOCH
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] > 0.5
    assert "resume=auto" not in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "resume=auto" in (run_dir / ".hydra-resume-1" / "overrides.yaml").read_text()
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) >= 2  # appended
    record = json.loads((run_dir / "run.1.json").read_text())
    assert record["resumed_from"] == str(last) and "resume=auto" in record["command"]

    again = run("train.py", *args, data_dir=root / "data", cwd=root)
    assert again.returncode == 2
    assert "has finished" in error_paragraph(again) and "resume=force" in error_paragraph(again)
    forced = run(
        "train.py",
        *[arg for arg in args if arg != "resume=auto"],
        f"trainer.max_epochs={epochs + 1}",
        "resume=force",
        data_dir=root / "data",
        cwd=root,
    )
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == (epochs + 1) * STEPS_PER_EPOCH


def test_sigkill_loses_at_most_the_steps_since_the_last_checkpoint(root):
    every = ["callbacks.checkpoint.every_n_train_steps=5"]
    process = start(root, "task_name=kill", "trainer.max_epochs=1000", *every)
    last = wait_for_run_dir(process, root, "kill") / "checkpoints" / "last.ckpt"
    seen = wait_for_step(process, last, 3 * STEPS_PER_EPOCH)
    process.kill()  # SIGKILL: no handler runs
    process.communicate(timeout=60)
    # saved every 5 steps (and at each epoch's end), so a kill loses at most 5 steps
    assert all(step % 5 == 0 or step % STEPS_PER_EPOCH == 0 for step in seen)
    killed = torch.load(last, weights_only=True)  # intact, even if killed while saving
    assert killed["global_step"] >= 3 * STEPS_PER_EPOCH

    epochs = killed["epoch"] + 2
    args = [*ENDLESS, *every, "task_name=kill", f"trainer.max_epochs={epochs}", "resume=auto"]
    resumed = run("train.py", *args, data_dir=root / "data", cwd=root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == epochs * STEPS_PER_EPOCH
