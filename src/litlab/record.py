"""How a run was made, for its folder's run.json: command line, versions and code state."""

import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from litlab.run_folder import CONFIG, RUN_RECORD, free_path, write_atomically, write_json

PACKAGES = (
    "litlab",
    "torch",
    "torchvision",
    "lightning",
    "hydra-core",
    "omegaconf",
    "torchmetrics",
    "numpy",
)


def run_record(project_root: Path) -> dict[str, Any]:
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "cwd": os.getcwd(),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "pid": os.getpid(),
        "platform": platform.platform(),
        "versions": {"python": platform.python_version(), **package_versions()},
        "git": git_state(project_root),
    }


def write_run_records(run: Path, config: dict[str, Any], project_root: Path, **facts: Any) -> None:
    """config.yaml (the resolved config) and run.json (:func:`run_record` plus ``facts``); a
    resumed run keeps the first ones beside (config.1.yaml, run.1.json ...)."""
    write_atomically(free_path(run / CONFIG), OmegaConf.to_yaml(OmegaConf.create(config)))
    write_json(free_path(run / RUN_RECORD), {**run_record(project_root), **facts})


def record_training_run(run: Path, cfg: Any, project_root: Path) -> None:
    """:func:`write_run_records` of a training run (or a cross-validation): its resolved
    config, the checkpoint it continues, its tags and notes."""
    from litlab.config import plain_config

    write_run_records(
        run,
        plain_config(cfg),
        project_root,
        resumed_from=cfg.get("ckpt_path"),
        tags=list(cfg.get("tags") or []),
        notes=cfg.get("notes"),
    )


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(folder: Path) -> dict[str, Any] | None:
    """Commit and uncommitted changes of the project, or None outside a git checkout."""
    try:
        commit = _git(folder, "rev-parse", "HEAD")
        status = _git(folder, "status", "--porcelain", "--untracked-files=no", strip=False)
        changed = status.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changed), "changed": [line[3:] for line in changed]}


def _git(folder: Path, *args: str, strip: bool = True) -> str:
    result = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=True
    )
    # porcelain lines start with a two-letter status that may begin with a space
    return result.stdout.strip() if strip else result.stdout


def local_time(moment: datetime) -> datetime:
    """A time without a zone, in this machine's: how runs' start times are compared."""
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment
