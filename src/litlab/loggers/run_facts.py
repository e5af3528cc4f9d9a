"""What a tracker records about a run besides its metrics: its name, the sweep it belongs to,
its tags and notes, the composed config, and the tracked run's id kept in the run folder so that
``resume=auto`` continues the same one (``trackers.json``)."""

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from litlab import PROJECT_ROOT
from litlab.config import flatten, in_multirun, plain_config
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
    ) -> None:
        self.folder, self.name, self.task_name, self.config = folder, name, task_name, config
        self.sweep, self.tags, self.notes = sweep, list(tags or []), notes

    def facts(self) -> dict[str, str]:
        """Where the run came from: task, run folder, sweep, code commit, versions."""
        versions = package_versions()
        git = git_state(PROJECT_ROOT) or {}
        facts = {
            "task": self.task_name,
            "run_folder": str(self.folder),
            "sweep": self.sweep,
            "litlab_version": versions.get("litlab"),
            "torch_version": versions.get("torch"),
            "git_commit": git.get("commit"),
            "git_dirty": str(git["dirty"]).lower() if "dirty" in git else None,
        }
        return {key: str(value) for key, value in facts.items() if value is not None}

    def flat_config(self) -> dict[str, str]:
        """The composed config as ``model.hidden_size: "256"``, without the machine's paths."""
        return {
            key: value
            for key, value in flatten(self.config).items()
            if not key.startswith(MACHINE_KEYS)
        }

    def previous_id(self, tracker: str) -> str | None:
        """The id this folder's run had in ``tracker`` when it ran before (resume=auto)."""
        value = self.recorded(tracker)
        return value if isinstance(value, str) else None

    def recorded(self, key: str, default: Any = None) -> Any:
        try:
            return read_json_object(self.folder / TRACKER_IDS).get(key, default)
        except (OSError, ValueError):
            return default

    def remember(self, key: str, value: Any) -> None:
        path = self.folder / TRACKER_IDS
        try:
            recorded = read_json_object(path)
        except (OSError, ValueError):
            recorded = {}
        write_json(path, {**recorded, key: value})


# where files live on this machine: not a choice to compare runs by
MACHINE_KEYS = ("paths.", "hydra.")


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
    )
