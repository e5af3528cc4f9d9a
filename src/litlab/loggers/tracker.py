"""What every tracker does around a run: ``start`` before training (the tracked run created or
continued, its config and tags recorded, its id kept in the run folder), ``end`` after the
report with the run's true status and the folder's files. ``tracking`` calls both for the
trackers among a trainer's loggers, on rank zero only.

Lightning ends a logger's run itself after every ``fit`` and ``test`` ("success") or at an
exception ("failed"); neither is the end of a litlab run (the test, the report and their
failures come later, and Ctrl+C is no failure), so the trackers take their end from here."""

import enum
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L

from litlab.errors import TrainingInterrupted
from litlab.loggers.run_facts import TrackedRun
from litlab.run_folder import CONFIG, METRICS, PLOTS, REPORT

log = logging.getLogger(__name__)

# the files of a run folder that a tracker keeps as artifacts, when they exist
ARTIFACT_FILES = (CONFIG, REPORT, METRICS)
RESUMED_CONFIGS = "config.*.yaml"  # config.1.yaml ...: run_folder.free_path's names


class RunEnd(enum.Enum):
    FINISHED = "finished"
    FAILED = "failed"  # an error, or a loss that became NaN
    KILLED = "killed"  # Ctrl+C, SIGTERM


class Tracker:
    """Mixed into a Lightning logger: the run-level part of tracking."""

    key = ""  # its name in trackers.json
    run: TrackedRun  # set by the logger's constructor
    # per metric, the last step a continued run had logged: the epochs after the last
    # checkpoint run again, and exact resume computes the same values, so they are not logged
    # twice; a metric new at that step (a test after the resume) still is
    logged_up_to: dict[str, int]
    has_run = False  # set by start() once the tracked run exists: only such a run is ended

    def not_logged_yet(self, metrics: Mapping[str, Any], step: int | None) -> dict[str, Any]:
        if step is None:
            return dict(metrics)
        return {
            key: value for key, value in metrics.items() if step > self.logged_up_to.get(key, -1)
        }

    def start(self) -> None:
        raise NotImplementedError

    def end(self, how: RunEnd) -> None:
        raise NotImplementedError

    def artifacts(self) -> list[Path]:
        """The run folder's files worth keeping beside the metrics, as they are now."""
        folder = self.run.folder
        files = [folder / name for name in ARTIFACT_FILES if (folder / name).is_file()]
        resumed = sorted(folder.glob(RESUMED_CONFIGS))  # each resume's config, beside the first
        return files + resumed + sorted((folder / PLOTS).glob("*.png"))


def trackers(trainer: L.Trainer) -> list[Tracker]:
    return [logger for logger in trainer.loggers if isinstance(logger, Tracker)]


@contextmanager
def tracking(trainer: L.Trainer, config: dict[str, Any] | None = None) -> Iterator[None]:
    """Start the trainer's trackers with the run's ``config`` as it trains (after the
    learning-rate finder), run the block, end them with how it ended."""
    started: list[Tracker] = []
    try:
        for tracker in trackers(trainer) if trainer.is_global_zero else []:
            if config is not None:
                tracker.run.config = config
            started.append(tracker)  # ended as failed if its own start fails half-way
            tracker.start()
        yield
    except (TrainingInterrupted, KeyboardInterrupt, SystemExit):
        _end(started, RunEnd.KILLED)
        raise
    except BaseException:
        _end(started, RunEnd.FAILED)
        raise
    _end(started, RunEnd.FINISHED)


def _end(started: list[Tracker], how: RunEnd) -> None:
    """A tracker that cannot record the end does not hide the run's own outcome."""
    for tracker in started:
        try:
            tracker.end(how)
        except Exception as err:  # noqa: BLE001 - a server gone, a full disk: say so, go on
            log.warning(
                "Could not end the %s run of %s as %s: %s: %s",
                tracker.key,
                tracker.run.folder,
                how.value,
                type(err).__name__,
                err,
            )
