"""What reaches the console, decided in one place: Hydra's job logging (conf/hydra/default.yaml)
formats and filters every line here, and the entry points call ``quiet_warnings`` first.

By default the console shows litlab's own lines and every warning or error, once; the libraries'
INFO lines (Lightning's "GPU available", its advertisements, checkpoint restoring, onnxscript's
passes) and their deprecation notices go to the run's log file only. ``verbose=true`` shows
them all on the console too.
"""

import logging
import re
import sys
import warnings
from pathlib import Path

from litlab.metric_names import is_overall_metric

# Loggers whose INFO lines are litlab's own (and Hydra's, which names sweep jobs as they start).
OWN_LOGGERS = ("litlab", "__main__", "hydra")
# Loggers that their library gives a console handler of its own.
LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "mlflow")
# Lightning's advice that does not apply to litlab: it logs once per epoch, not every N steps;
# it never writes a run into a folder holding another run's checkpoints (resume.py refuses),
# so a non-empty checkpoint folder is a run continued in place; the monitored metric's name is
# checked before training, so a checkpoint that cannot find it ran before any validation
# (train.py says so in its own words).
IRRELEVANT_ADVICE = (
    r".*smaller than the logging interval",
    r"Checkpoint directory .* exists and is not empty",
    r"`ModelCheckpoint\(monitor=.*could not find the monitored key",
)
# A library's warning about its own future, not about the run, as _one_line writes it.
LIBRARY_NOTICE = re.compile(r"\((?:\w*DeprecationWarning|FutureWarning) from [\w.]+, [^)]*\)$")
INSTALLED = ("site-packages", "dist-packages")


class ConsoleFormatter(logging.Formatter):
    """A line as a user reads it: the message alone, a warning or error with its label (the log
    file keeps the time and the logger's name)."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.ERROR:
            return f"Error: {message}"
        if record.levelno >= logging.WARNING:
            return f"Warning: {message}"
        return message


class QuietLibraries(logging.Filter):
    """Lets through litlab's lines and every warning but the libraries' deprecation notices;
    the libraries' INFO lines and notices only when ``show`` is true (``verbose=true``)."""

    def __init__(self, show: bool = False) -> None:
        super().__init__()
        self.show = bool(show)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.show:
            return True
        if record.levelno < logging.WARNING:
            return _is_own(record.name)
        return not (record.name == "py.warnings" and LIBRARY_NOTICE.search(record.getMessage()))


def _is_own(name: str) -> bool:
    return any(name == own or name.startswith(f"{own}.") for own in OWN_LOGGERS)


def quiet_warnings(show: bool = False) -> None:
    """Warnings go through logging, as one line each: the log file keeps them all, the console
    drops the libraries' deprecation notices unless ``show`` (QuietLibraries)."""
    logging.captureWarnings(True)
    warnings.formatwarning = _one_line
    if not show:
        for message in IRRELEVANT_ADVICE:
            warnings.filterwarnings("ignore", message=message)


def _one_line(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """A warning as one line: its text, its category, and where it came from (an installed
    library by name), not the source line."""
    parts = Path(filename).parts
    installed = next((i for i, part in enumerate(parts) if part in INSTALLED), None)
    library = (
        f" from {parts[installed + 1]}"
        if installed is not None and len(parts) > installed + 1
        else ""
    )
    return f"{message} ({category.__name__}{library}, {Path(filename).name}:{lineno})"


def route_library_loggers() -> None:
    """Lightning, MLflow and Optuna give their loggers console handlers of their own when
    imported, so each of their lines came twice (their handler and Hydra's), or unfiltered: they
    go through Hydra's handlers alone, once on the console (filtered) and once in the log file.
    Call after importing them."""
    warnings.formatwarning = _one_line  # Lightning puts in its own when it is imported
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    if "optuna" in sys.modules:  # it adds its handler at its first line: its own switch
        optuna = sys.modules["optuna"]
        optuna.logging.disable_default_handler()
        optuna.logging.enable_propagation()


def results_table(title: str, stage: str, metrics: dict[str, float]) -> str:
    """The stage's overall metrics as lines that fit a screen (per-class ones: report.md)."""
    shown = {
        name: value
        for name, value in sorted(metrics.items())
        if is_overall_metric(name) and name.startswith(f"{stage}/")
    }
    width = max(map(len, shown), default=0)
    lines = [f"  {name:<{width}}  {value:.4g}" for name, value in shown.items()]
    return "\n".join([f"{title} (per class: report.md):", *lines])


def finished_line(output_dir: Path, main_file: str = "report.md") -> str:
    """The last line of every command: its run folder and the file to open first."""
    return f"Run folder: {output_dir} ({main_file}: {output_dir / main_file})"
