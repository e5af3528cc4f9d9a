"""The run folder's contract: the name of every file and folder a run leaves, how the files
that a later step or a resume trusts are written (whole or not at all), and what they mean.

    <run>/
      .hydra/ (.hydra.1/ ... per resume)   Hydra's record of the command line
      config.yaml (config.1.yaml ...)      the resolved config
      run.json (run.1.json ...)            command, versions, git state
      checkpoints/best.ckpt, last.ckpt     best validation epoch; the state to resume from
      tensorboard/                         event files
      history.csv, report_data.json        what report.md is built from
      metrics.json                         final metrics: its presence means "finished"
      status.json                          a sweep job's outcome (ok / failed); why a command failed
      trackers.json                        the run's id in MLflow / W&B (resume continues it)
      report.md, plots/                    what a person reads
    A cross-validation (cv.folds=K) is a run folder whose folds are run folders inside it:
      fold_1/ ... fold_K/, refit/          one run each (cv.refit=true: refit/)
      cv_summary.md, .csv, .json           each fold's metrics, mean ± std; metrics.json: the means
    predict.py's and export.py's run folders hold predictions.csv and predictions.png, or
    model.onnx / model.pt2; eval.py's hold a training run's test files for the split it tested.

Imports nothing heavy (no torch): ``litlab-report`` and the command line read folders with it.
"""

import csv
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

HYDRA_RECORD = ".hydra"  # Hydra's own record of a run: config.yaml, hydra.yaml, overrides.yaml
HYDRA_SETTINGS = "hydra.yaml"  # in HYDRA_RECORD: Hydra's settings (sweeper, choices ...)
HYDRA_OVERRIDES = "overrides.yaml"  # in HYDRA_RECORD: the run's command-line overrides
CONFIG = "config.yaml"
RUN_RECORD = "run.json"
CHECKPOINTS = "checkpoints"
BEST_CHECKPOINT = "best.ckpt"
LAST_CHECKPOINT = "last.ckpt"
TENSORBOARD = "tensorboard"
HISTORY = "history.csv"
REPORT_DATA = "report_data.json"
METRICS = "metrics.json"
STATUS = "status.json"
TRACKER_IDS = "trackers.json"
REPORT = "report.md"
PLOTS = "plots"
# plots/ files that callbacks draw when the run tests, and the report links
CONFUSION_MATRIX_PLOT = "confusion_matrix.png"
TOP_LOSSES_PLOT = "top_losses.png"
TEST_PLOTS = (CONFUSION_MATRIX_PLOT, TOP_LOSSES_PLOT)
# predict.py and export.py
PREDICTIONS = "predictions.csv"
PREDICTIONS_PLOT = "predictions.png"
EXPORTED_MODELS = {"onnx": "model.onnx", "pt2": "model.pt2"}
# drawn after every training epoch of a recurrent model
GRADIENT_BY_STEP_PLOT = "gradient_by_time_step.png"
# tune=lr_find: the learning-rate range test
LR_FIND_PLOT = "lr_find.png"
# the first training batch as the model sees it
BATCH_PLOT = "batch.png"

# cross-validation (litlab.cross_validation): the folds' and the refit's run folders, the summary
FOLD_PREFIX = "fold_"
REFIT = "refit"  # the refit's folder, and its cv.fold
CV_SUMMARY = "cv_summary"

# whole numbers in history.csv; every other column is a float
HISTORY_COUNTS = ("epoch", "step")


def last_checkpoint(run: Path) -> Path:
    return run / CHECKPOINTS / LAST_CHECKPOINT


def fold_folder(run: Path, index: int) -> Path:
    """The run folder of fold ``index`` (0-based) of a cross-validation in ``run``: fold_1 ..."""
    return run / f"{FOLD_PREFIX}{index + 1}"


def cv_part_folders(run: Path) -> list[Path]:
    """A cross-validation's folds in order, then its refit: those that exist."""
    folds = [
        path for path in run.glob(f"{FOLD_PREFIX}*") if path.name[len(FOLD_PREFIX) :].isdigit()
    ]
    folds.sort(key=lambda path: int(path.name[len(FOLD_PREFIX) :]))
    return [*folds, *([run / REFIT] if (run / REFIT).is_dir() else [])]


def is_finished(run: Path) -> bool:
    """A run has finished when it wrote metrics.json (the last file it writes that counts)."""
    return (run / METRICS).is_file()


def is_run_folder(path: Path) -> bool:
    return (path / CONFIG).is_file() or (path / HYDRA_RECORD / CONFIG).is_file()


def write_atomically(
    path: Path, content: str | bytes | memoryview, concurrent: bool = False
) -> Path:
    """Write ``content`` to a temporary file beside ``path``, flush it to disk and rename it over
    ``path``: a reader, a crash or a full disk never leaves half a file where a good one was.
    The temporary file has a fixed name, so one left by a killed process is reused, not piled
    up; ``concurrent`` files (a sweep summary that parallel jobs rewrite) add the process id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = f".{os.getpid()}" if concurrent else ""
    partial = path.with_name(f".{path.name}{writer}.partial")
    data = content.encode() if isinstance(content, str) else content
    try:
        with open(partial, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, value: Any) -> Path:
    return write_atomically(path, json.dumps(value, indent=2) + "\n")


def read_json_object(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text())
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return value


def free_path(path: Path) -> Path:
    """``path`` if nothing is there, else the first free ``name.1.ext``, ``name.2.ext`` ...:
    a resumed run keeps the first run's records (``config.1.yaml``, ``run.1.json``,
    ``.hydra.1/``) and a forced resume its earlier ``metrics.1.json``."""
    candidate, number = path, 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}.{number}{path.suffix}")
    return candidate


def write_metrics(run: Path, metrics: dict[str, float]) -> Path:
    """metrics.json, sorted by name: the marker of a finished run, so written atomically."""
    return write_json(run / METRICS, dict(sorted(metrics.items())))


def read_history(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as file:
        return [
            {
                key: (int if key in HISTORY_COUNTS else float)(value) if value != "" else math.nan
                for key, value in row.items()
            }
            for row in csv.DictReader(file)
        ]


def write_job_status(job: Path, status: dict[str, Any]) -> Path:
    """``{"status": "ok", "return_value": ...}``, ``{"status": "pruned", "epoch": ...,
    "return_value": ...}`` or ``{"status": "failed", "error": ...}``."""
    return write_json(job / STATUS, status)


def failed_job_status(error: BaseException) -> dict[str, str]:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return {"status": "failed", "error": f"{type(error).__name__}: {first_line}"}


def read_job_status(job: Path) -> dict[str, Any] | None:
    """The job's status.json, or None when it has none or it cannot be read."""
    try:
        status = read_json_object(job / STATUS)
    except (OSError, ValueError):
        return None
    return status if isinstance(status.get("status"), str) else None


def remove_if_unused(run: Path, log_name: str, made_since: float) -> bool:
    """Remove a run folder that holds only what a command writes before it produces anything
    (Hydra's record, the log ``log_name``, config.yaml, run.json), all written since
    ``made_since`` (the command's start: a folder that held such files before is the user's);
    say whether it did."""
    if not run.is_dir():
        return True
    entries = list(run.iterdir())
    if not all(entry.name in (HYDRA_RECORD, CONFIG, RUN_RECORD, log_name) for entry in entries):
        return False
    files = [path for entry in entries for path in (entry, *entry.rglob("*"))]
    if any(path.stat().st_mtime < made_since for path in files):
        return False
    for entry in entries:
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    run.rmdir()
    return True


def remove_empty_parents(folder: Path, up_to: Path) -> None:
    """After a removed run folder: its parents below ``up_to`` that it leaves empty
    (outputs/<task_name>/runs/), so that a failed command leaves nothing at all."""
    parent, top = folder.parent, up_to.resolve()
    while top in parent.resolve().parents and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def leave_failure(run: Path, log_name: str, error: BaseException, made_since: float) -> None:
    """A command that failed leaves nothing, or one folder whose status.json says why."""
    if not remove_if_unused(run, log_name, made_since):
        write_job_status(run, failed_job_status(error))
