"""What a tracker records about a run besides its metrics: its name, the sweep it belongs to,
its tags and notes, the composed config, and the tracked run's id kept in the run folder so that
``resume=auto`` continues the same one (``trackers.json``). Only a run that continues from its
own folder's checkpoint continues its tracked runs; any other run in the folder (a rerun into a
fixed folder, a copy) starts new ones."""

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from litlab import PROJECT_ROOT
from litlab.config import comparable_config, in_multirun, plain_config
from litlab.record import git_state, package_versions
from litlab.run_folder import TRACKER_IDS, read_json_object, write_json


class TrackedRun:
    """One run folder as trackers see it. ``name``: the run folder's name, or ``<sweep>/<job>``
    for a sweep's job; ``sweep``: the sweep folder, which groups its jobs' runs. (A plain class:
    Hydra's instantiate would turn a dataclass argument into a config.)"""

    def __init__(
        self,
        folder: Path,
        name: str,
        task_name: str,
        config: dict[str, Any],
        sweep: str | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
        continuing: bool = False,
    ) -> None:
        self.folder, self.name, self.task_name, self.config = folder, name, task_name, config
        self.sweep, self.tags, self.notes = sweep, list(tags or []), notes
        self.continuing = continuing  # resume=auto|force: from this folder's own checkpoint
        self.written = False  # trackers.json written by this run (a new run starts it afresh)

    def facts(self) -> dict[str, str]:
        """Where the run came from: task, run folder, sweep, code commit, versions."""
        versions = package_versions()
        git = git_state(PROJECT_ROOT) or {}
        facts = {
            "task": self.task_name,
            "run_folder": str(self.folder),
            "sweep": self.sweep,
            "version": versions.get("litlab"),
            "torch_version": versions.get("torch"),
            "git_commit": git.get("commit"),
            "git_dirty": str(git["dirty"]).lower() if "dirty" in git else None,
            # the checkpoint continued from, or evaluated (eval.py)
            "ckpt_path": self.config.get("ckpt_path"),
        }
        return {key: str(value) for key, value in facts.items() if value is not None}

    def flat_config(self) -> dict[str, str]:
        """The composed config as ``model.hidden_size: "256"``, without the machine's paths."""
        return comparable_config(self.config)

    def previous_id(self, tracker: str) -> str | None:
        """The id this folder's run had in ``tracker`` when it ran before (resume=auto)."""
        value = self.recorded(tracker)
        return value if isinstance(value, str) else None

    def recorded(self, key: str, default: Any = None) -> Any:
        """What trackers.json holds under ``key`` for a continuing run; ``default`` else."""
        if not self.continuing:
            return default
        try:
            return read_json_object(self.folder / TRACKER_IDS).get(key, default)
        except (OSError, ValueError):
            return default

    def remember(self, key: str, value: Any) -> None:
        path = self.folder / TRACKER_IDS
        recorded: dict[str, Any] = {}
        if self.continuing or self.written:
            try:
                recorded = read_json_object(path)
            except (OSError, ValueError):
                pass
        write_json(path, {**recorded, key: value})
        self.written = True


def tracked_run(cfg: DictConfig) -> TrackedRun:
    folder = Path(cfg.paths.output_dir)
    sweep = None
    name = folder.name
    if in_multirun():
        hydra = HydraConfig.get()
        sweep = hydra.sweep.dir
        name = f"{Path(sweep).name}/{hydra.job.num}"
    return TrackedRun(
        folder=folder,
        name=name,
        task_name=str(cfg.get("task_name", "train")),
        sweep=str(sweep) if sweep else None,
        config=plain_config(cfg),
        tags=[str(tag) for tag in cfg.get("tags") or []],
        notes=cfg.get("notes"),
        continuing=_continues_in(folder, cfg.get("ckpt_path")),
    )


def _continues_in(folder: Path, ckpt_path: str | None) -> bool:
    """resume=auto|force set ckpt_path to the folder's own last.ckpt."""
    return bool(ckpt_path) and folder.resolve() in Path(str(ckpt_path)).resolve().parents
