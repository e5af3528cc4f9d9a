"""Errors a user can fix by changing a config value, a path or a file.

The entry points print them as one paragraph and exit with the error's ``exit_code`` (2 for bad
input), without a traceback (set HYDRA_FULL_ERROR=1 to see one). The libraries' refusals become
these errors in ``litlab.library_errors``; anything else is a bug and keeps its traceback.
"""

import os
import sys
import textwrap

# The user's HYDRA_FULL_ERROR=1, kept here: the entry points set HYDRA_FULL_ERROR=1 themselves so
# that Hydra hands every error to litlab's translation instead of printing its own traceback.
# An environment variable, so that processes a command starts (DDP workers) inherit it.
SHOW_TRACEBACKS = "LITLAB_SHOW_TRACEBACKS"
FULL_ERROR = "HYDRA_FULL_ERROR"


class LitlabError(Exception):
    """A mistake in the user's input; the message names the bad value and the fix."""

    exit_code = 2
    label = "Error"


class ConfigError(LitlabError):
    """A config value that is missing, of the wrong type, out of range or incompatible."""


class DataError(LitlabError):
    """Data files that are missing, unreadable or inconsistent with the data config."""


class CheckpointError(LitlabError):
    """A checkpoint that is missing, unreadable, unsafe, does not fit its model, or could not
    be written."""


class ExportError(LitlabError):
    """An exported model that does not reproduce the PyTorch model's outputs."""


class MachineError(LitlabError):
    """The machine refused: a full disk, a folder that cannot be written, a missing file."""


class NonFiniteLossError(LitlabError):
    """Training diverged: the loss became NaN or infinite."""

    exit_code = 3


class TrainingInterrupted(LitlabError):
    """SIGINT or SIGTERM stopped training after saving a checkpoint to resume from."""

    label = "Stopped"

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number  # what a shell reports for a process the signal ended


def listed(names: list[str], most: int = 12) -> str:
    """The first ``most`` names of a list in a message, and how many more there are."""
    more = len(names) - most
    return ", ".join(names[:most]) + (f" and {more} more" if more > 0 else "")


def paragraph(err: LitlabError) -> str:
    return textwrap.fill(
        f"{err.label}: {err}", width=100, break_long_words=False, break_on_hyphens=False
    )


def keep_traceback_choice() -> None:
    """Remember whether the user asked for tracebacks, before the entry point asks Hydra for
    them (a started worker inherits the first process's answer)."""
    os.environ.setdefault(SHOW_TRACEBACKS, os.environ.get(FULL_ERROR, "0"))


def tracebacks_wanted() -> bool:
    return os.environ.get(SHOW_TRACEBACKS, os.environ.get(FULL_ERROR)) == "1"


def exit_with(err: LitlabError) -> None:
    """End the command with ``err`` as one paragraph and its exit status."""
    hint = (
        ""
        if isinstance(err, TrainingInterrupted)
        else "(Set HYDRA_FULL_ERROR=1 for a traceback.)\n"
    )
    sys.stderr.write(f"{paragraph(err)}\n{hint}")
    sys.exit(err.exit_code)


def missing_extra(choice: str, package: str, extra: str) -> ConfigError:
    """A choice whose optional package is not installed, with the pip extra that brings it."""
    return ConfigError(
        f"{choice} needs {package}, which is not installed. Install it with: "
        f'pip install -e ".[{extra}]"'
    )
