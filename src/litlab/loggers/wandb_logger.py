"""``logger=wandb``: one Weights & Biases run per run folder, offline by default."""

import importlib.util
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only

from litlab.console import route_library_loggers
from litlab.errors import missing_extra
from litlab.library_internals import drop_wandb_anonymous
from litlab.loggers.run_facts import TrackedRun
from litlab.loggers.tracker import RunEnd, Tracker
from litlab.run_folder import BEST_CHECKPOINT, CHECKPOINTS

log = logging.getLogger(__name__)

# W&B's run states come from the exit code: 0 finished, anything else failed (W&B keeps
# "killed" for runs stopped from its web page); 130 says Ctrl+C or SIGTERM to a reader.
EXIT_CODES = {RunEnd.FINISHED: 0, RunEnd.FAILED: 1, RunEnd.KILLED: 130}
ARTIFACTS = "litlab"  # the run folder's files, in the W&B run's files/litlab/
# in trackers.json: each metric's last logged step, which a continued run does not log again
LOGGED_STEPS = "wandb_logged_steps"


class WandbLogger(Tracker, LightningWandbLogger):
    """Lightning's WandbLogger with the run's life around it (``litlab.loggers.tracker``): the
    run's id kept in the folder (``resume=auto`` continues it), the config, tags, notes and the
    sweep as W&B's group, the folder's files saved with the run, and the run finished with its
    status, so that the next job of a sweep gets a run of its own.

    Args:
        run: the run folder's facts (given by litlab's build, not by the config).
        project: the W&B project (default: task_name).
        save_dir: where W&B writes (default: the run folder; offline runs in ``wandb/``).
        offline: write the run to disk only; upload it later with ``wandb sync``.
        log_model: also keep the best checkpoint with the run's files.
        **kwargs: passed to ``wandb.init`` (entity, job_type, settings ...).
    """

    key = "wandb"

    def __init__(
        self,
        run: TrackedRun,
        project: str = "train",
        save_dir: str = ".",
        offline: bool = True,
        log_model: bool = False,
        **kwargs: Any,
    ) -> None:
        if importlib.util.find_spec("wandb") is None:
            raise missing_extra("logger=wandb", "wandb", "wandb")
        import wandb
        from wandb.sdk.lib.runid import generate_id

        route_library_loggers()
        self.run = run
        self.offline, self.log_best_checkpoint = bool(offline), bool(log_model)
        previous = run.previous_id(self.key)
        self.logged_up_to = dict(run.recorded(LOGGED_STEPS, {})) if previous else {}
        self.logged_steps = dict(self.logged_up_to)
        kwargs.setdefault("job_type", run.task_name)
        kwargs.setdefault("settings", wandb.Settings(console="off", silent=True))
        super().__init__(
            name=run.name,
            save_dir=save_dir,
            # W&B's own switch: Lightning's offline=True sets WANDB_MODE for the whole process,
            # and a later job of a sweep in it would be offline too
            mode="offline" if offline else "online",
            id=previous or generate_id(),
            project=project,
            group=run.sweep,
            tags=run.tags or None,
            notes=run.notes,
            **kwargs,
        )
        drop_wandb_anonymous(self)  # Lightning passes None, which W&B warns about

    def start(self) -> None:
        experiment = self.experiment  # W&B starts the run (and its service) here
        self.has_run = True
        # the config as the run trains (tune.apply may have changed the rate since __init__)
        config = {**self.run.config, "litlab": self.run.facts()}
        experiment.config.update(config, allow_val_change=True)  # a resume may extend epochs
        self.run.remember(self.key, experiment.id)
        if self.offline:
            folder = Path(experiment.dir).parent
            log.info(
                "W&B: run %s offline in %s (upload: wandb sync %s)", experiment.id, folder, folder
            )
        else:
            log.info("W&B: run %s at %s", experiment.id, experiment.url)

    def end(self, how: RunEnd) -> None:
        """Keep the folder's files, then finish the run (also when the copies fail): the next
        job of a sweep in this process gets a run of its own."""
        if not self.has_run:
            return
        experiment = self.experiment
        folder = self.run.folder
        best = folder / CHECKPOINTS / BEST_CHECKPOINT
        kept = [*self.artifacts(), *([best] if self.log_best_checkpoint and best.is_file() else [])]
        try:
            for path in kept:  # W&B uploads its run's files/ folder: copies, not wandb.save's
                copy = Path(experiment.dir) / ARTIFACTS / path.relative_to(folder)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copy)
        finally:
            experiment.finish(exit_code=EXIT_CODES[how])

    # -- what Lightning calls ------------------------------------------------------------
    def log_hyperparams(self, params: Any) -> None:
        """``start`` records the composed config; Lightning's call would add the
        LightningModule's arguments (the same config, nested once more)."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        fresh = self.not_logged_yet(metrics, step)
        if not fresh:
            return
        super().log_metrics(fresh, step)
        if step is not None:  # W&B cannot be asked offline: the folder keeps what was logged
            self.logged_steps.update(dict.fromkeys(fresh, step))
            self.run.remember(LOGGED_STEPS, self.logged_steps)
