"""run.json's record of the code state: the git commit and the files changed since."""

import subprocess
from pathlib import Path

import pytest

from litlab.record import git_state, run_record


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_git_state_names_the_commit_and_every_changed_file(tmp_path):
    git(tmp_path, "init", "-q")
    for name in ("one.py", "two.py"):
        (tmp_path / name).write_text("x = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "one.py").write_text("x = 2\n")  # " M one.py": the status starts with a space
    (tmp_path / "two.py").unlink()
    state = git_state(tmp_path)
    assert len(state["commit"]) == 40
    assert state["dirty"] is True and state["changed"] == ["one.py", "two.py"]


def test_outside_a_checkout_there_is_no_git_state(tmp_path):
    assert git_state(tmp_path) is None


@pytest.mark.parametrize("package", ["python", "torch", "lightning", "hydra-core", "torchmetrics"])
def test_the_record_holds_the_versions_that_matter(tmp_path, package):
    assert run_record(tmp_path)["versions"][package]
