"""What reaches the console: litlab's lines and warnings once, the libraries' INFO lines and
notices only with verbose=true, a network-only summary, a short results table, and a last line
naming the run folder; the README's and the lessons' commands are run to check it."""

import logging
import re
import warnings
from pathlib import Path

import pytest

from litlab import PROJECT_ROOT
from litlab.console import (
    ConsoleFormatter,
    QuietLibraries,
    finished_line,
    quiet_warnings,
    results_table,
    route_library_loggers,
)
from tests.helpers import (
    REAL_DATA_DIR,
    TINY_MNIST,
    lesson_commands,
    make_folder_a_command_reads,
    requires_real_mnist,
    run_entry_point,
    runs_of,
    training_commands,
)

# What must never reach the console by default: the libraries' INFO lines, adverts, notices.
NOISE = re.compile(r"INFO|Tip:|💡|litlogger|deprecat|GPU available|FLOPs|train_metrics|Traceback")


def record(name: str, level: int, message: str = "a line") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("name", "level", "shown"),
    [
        ("litlab.train", logging.INFO, True),
        ("hydra._internal.core_plugins.basic_launcher", logging.INFO, True),
        ("lightning.pytorch.utilities.rank_zero", logging.INFO, False),  # GPU available, Tip
        ("onnxscript.rewriter", logging.INFO, False),
        ("lightning.pytorch.utilities.rank_zero", logging.WARNING, True),
        ("py.warnings", logging.WARNING, True),
    ],
)
def test_library_info_lines_are_dropped_unless_verbose(name, level, shown):
    assert QuietLibraries(show=False).filter(record(name, level)) is shown
    assert QuietLibraries(show=True).filter(record(name, level)) is True


def test_console_lines_carry_a_label_only_when_they_are_warnings_or_errors():
    formatter = ConsoleFormatter()
    assert formatter.format(record("litlab", logging.INFO, "Run folder: x")) == "Run folder: x"
    assert formatter.format(record("litlab", logging.WARNING, "w")) == "Warning: w"
    assert formatter.format(record("litlab", logging.ERROR, "e")) == "Error: e"


def test_library_notices_reach_the_log_but_not_the_console(caplog):
    """Every warning is logged as one line (the log file keeps it); the console's filter drops a
    library's deprecation notice, not the user's, and not a library's other warnings."""
    plain_format = warnings.formatwarning
    library = "/venv/lib/python3.11/site-packages/lightning/pytorch/utilities/_pytree.py"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            quiet_warnings(show=False)
            warnings.warn_explicit("old API", DeprecationWarning, library, 21)
            warnings.warn_explicit("bad batch", UserWarning, library, 22)
            warnings.warn("my own API is old", FutureWarning, stacklevel=1)
            advice = "The number of training batches (6) is smaller than the logging interval"
            warnings.warn(advice, stacklevel=1)  # advice that does not apply: dropped
            logging.captureWarnings(False)
    finally:
        warnings.formatwarning = plain_format
    logged = [r for r in caplog.records if r.name == "py.warnings"]
    messages = [r.getMessage() for r in logged]
    assert messages[:2] == [
        "old API (DeprecationWarning from lightning, _pytree.py:21)",
        "bad batch (UserWarning from lightning, _pytree.py:22)",
    ]
    assert len(messages) == 3
    assert messages[2].startswith("my own API is old (FutureWarning, test_console.py:")
    console = QuietLibraries(show=False)
    assert [console.filter(r) for r in logged] == [False, True, True]
    assert all(QuietLibraries(show=True).filter(r) for r in logged)


def test_lightnings_own_handlers_go_and_its_lines_reach_the_root_once():
    import lightning  # noqa: F401 - adds its handlers

    route_library_loggers()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        assert logging.getLogger(name).handlers == []
        assert logging.getLogger(name).propagate


def test_the_results_table_shows_one_stage_and_its_overall_metrics():
    metrics = {"test/acc": 0.95312, "test/f1/7": 0.9, "val/acc": 0.9, "test/loss": 0.153}
    table = results_table("Test results", "test", metrics).splitlines()
    assert table == [
        "Test results (per class: report.md):",
        "  test/acc   0.9531",
        "  test/loss  0.153",
    ]


def test_the_last_line_names_the_folder_and_its_main_file():
    assert finished_line(Path("out/run")) == "Run folder: out/run (report.md: out/run/report.md)"


# -- the commands, as a user runs them --------------------------------------------------------
def console_problems(output: str) -> list[str]:
    """Lines that are noise, or that come twice (blank lines and drawn rules aside)."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    problems = [line for line in lines if NOISE.search(line) or line.startswith("Warning")]
    seen: set[str] = set()
    for line in lines:
        if line in seen and not set(line) <= set("━─│┃┏┓┗┛┡┩└┘┌┐╇┳┻╋━ "):
            problems.append(f"twice: {line}")
        seen.add(line)
    return problems


def train_as_a_user(data_dir: Path, cwd: Path, *overrides: str, quiet: bool = False):
    """train.py with Python's own warning settings (the other tests' runs silence them)."""
    return run_entry_point(
        "train.py",
        *overrides,
        data_dir=data_dir,
        cwd=cwd,
        quiet=quiet,
        extra_env={"PYTHONWARNINGS": ""},
    )


def test_a_default_training_run_says_only_what_matters(tiny_mnist, tmp_path):
    """The progress bar and the model summary as a user sees them (not QUIET)."""
    result = train_as_a_user(
        tiny_mnist, tmp_path, *TINY_MNIST, "trainer.max_epochs=1", "hydra.run.dir=run"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert console_problems(output) == []
    assert "net.layers.1" in output and "Linear" in output  # the network's own layers
    assert "test/acc" in output and "test/f1/7" not in output  # per class: in the report
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) <= 30, "\n".join(lines)
    assert lines[-1] == f"Run folder: {tmp_path / 'run'} (report.md: {tmp_path / 'run/report.md'})"

    verbose = train_as_a_user(
        tiny_mnist,
        tmp_path,
        *TINY_MNIST,
        "trainer.max_epochs=1",
        "verbose=true",
        "hydra.run.dir=verbose",
        quiet=True,
    )
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert verbose.stdout.count("GPU available") == 1  # shown on request, and once


def one_job(command: str) -> list[str]:
    """The first job of a README or lessons command, shortened to a few batches."""
    return [
        *runs_of(command)[0],
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=3",
        "++trainer.limit_val_batches=1",
        "++trainer.limit_test_batches=1",
        "++callbacks.progress_bar=null",  # a bar redrawn into a pipe repeats its lines
    ]


# GPUs, clusters, Optuna studies and resuming are tested elsewhere; the rest is run here.
SKIPPED = re.compile(r"gpu|launcher|hparams_search|resume=|multi_gpu")
GROUPS = re.compile(r"\b(?:experiment|data|model|loss|optimizer|debug|tune)=\S+")


def documented_commands() -> list[str]:
    """One command per combination of parts (lesson 9's six variants of one recipe print the
    same lines): each costs a Python start with torch and Lightning."""
    found: dict[str, str] = {}
    for command in [*training_commands(), *lesson_commands("train.py")]:
        if not SKIPPED.search(command):
            found.setdefault(
                " ".join(sorted(GROUPS.findall(" ".join(runs_of(command)[0])))), command
            )
    return sorted(found.values())


DOCUMENTED = documented_commands()


@pytest.mark.slow
@requires_real_mnist
@pytest.mark.parametrize("command", DOCUMENTED)
def test_every_documented_command_says_only_what_matters(command, tmp_path):
    (tmp_path / "docs").symlink_to(PROJECT_ROOT / "docs")  # the docs' example tables
    make_folder_a_command_reads(command, tmp_path, real_digits=True)
    result = train_as_a_user(REAL_DATA_DIR, tmp_path, *one_job(command), "hydra.run.dir=run")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert console_problems(output) == [], output[-3000:]
    last = [line for line in result.stdout.splitlines() if line.strip()][-1]
    assert last.startswith(f"Run folder: {tmp_path / 'run'}"), output[-2000:]
