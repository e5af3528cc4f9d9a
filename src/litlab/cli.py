"""The entry layer: `litlab-train`, `litlab-eval`, `litlab-predict`, `litlab-export`,
`litlab-report` and `litlab-runs` (train.py, eval.py, predict.py and export.py call the first
four). Hydra over conf/ (its callbacks check the run folder first: ``litlab.run_start``), a
missing plugin named before Hydra starts, and user errors reported as one paragraph with an exit
status instead of a traceback.

Exit statuses: 0 done; 1 a multirun with a failed job, or a bug (with its traceback); 2 bad
input (also a library's refusal or a config Hydra cannot compose);
3 a non-finite loss; 128 + N stopped by signal N (130 Ctrl+C, 143 SIGTERM, 140 SIGUSR2).
"""

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from litlab import CONFIG_DIR, PROJECT_ROOT
from litlab.command import config_keys, default_keys, require_plugins, tidy_failed_run
from litlab.config import (
    apply_recommendations,
    hydra_choices,
    hydra_spelling,
    in_multirun,
    project_environment,
    validate_config,
)
from litlab.console import finished_line, quiet_warnings, route_library_loggers
from litlab.errors import (
    FULL_ERROR,
    SHOW_TRACEBACKS,
    ConfigError,
    LitlabError,
    TrainingInterrupted,
    exit_with,
    keep_traceback_choice,
    paragraph,
    tracebacks_wanted,
)
from litlab.library_errors import translated
from litlab.ranks import is_launched_worker
from litlab.record import local_time
from litlab.run_folder import (
    PREDICTIONS,
    is_run_folder,
)

log = logging.getLogger(__name__)


# -- one paragraph per user error ------------------------------------------------------------
def report_user_errors(
    task_function: Callable[[DictConfig], Any], started: list[float]
) -> Callable:
    """Inside Hydra's job: a user's error or a library's refusal (``library_errors``) ends the
    command as one paragraph and leaves nothing behind but a folder that says why; in a sweep
    the job is recorded as failed and the sweep goes on. ``started`` holds when the command
    began: files older than that are not its own to remove."""

    @wraps(task_function)
    def wrapper(cfg: DictConfig) -> Any:
        quiet_warnings(show=bool(cfg.get("verbose")))
        try:
            return task_function(cfg)
        except TrainingInterrupted as err:  # Ctrl+C or SIGTERM: also ends a sweep
            tidy_failed_run(cfg, err, started[0] if started else None)
            if tracebacks_wanted():
                raise
            exit_with(err)
        except KeyboardInterrupt as err:  # during training GracefulStop handles Ctrl+C instead
            removed = tidy_failed_run(cfg, err, started[0] if started else None)
            kept = "nothing was saved" if removed else "the run folder keeps what was written"
            sys.stderr.write(f"Stopped: interrupted (Ctrl+C); {kept}.\n")
            sys.exit(130)
        except Exception as err:
            user_error = translated(err, lambda: config_keys(cfg))
            if in_multirun() and not tracebacks_wanted():
                return _job_failed(cfg, user_error or err)
            tidy_failed_run(cfg, user_error or err, started[0] if started else None)
            if user_error is None or tracebacks_wanted():
                raise  # a bug: its traceback
            exit_with(user_error)

    return wrapper


def _job_failed(cfg: DictConfig, err: Exception) -> Any:
    """A multirun job that raised: say so and go on with the next job, returning the failure
    for the sweep callback to record (status.json, the sweep summary); with
    ``stop_on_failure=true``, record it and end the sweep here."""
    from litlab.report.sweep import write_sweep_summary  # matplotlib: lazily
    from litlab.sweep import FailedJob, record_failure

    if isinstance(err, LitlabError):
        log.error("%s", err)
    else:
        log.exception("The job failed with %s; the sweep goes on.", type(err).__name__)
    if cfg.get("stop_on_failure"):
        hydra_config = HydraConfig.get()
        record_failure(Path(hydra_config.runtime.output_dir), err)
        write_sweep_summary(Path(hydra_config.sweep.dir))
        sys.stderr.write("Stopped the sweep at its first failed job (stop_on_failure=true).\n")
        sys.exit(err.exit_code if isinstance(err, LitlabError) else 1)
    return FailedJob(err)


def _stop_writing_to_closed_pipe() -> None:
    """Python's advice for a reader that closed the pipe: no more output, no traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


# -- the entry points ------------------------------------------------------------------------
def hydra_entry_point(config_name: str) -> Callable:
    """Decorate ``fn(cfg)`` into a console-script ``main()`` that composes conf/<config_name>."""

    def decorate(task_function: Callable[[DictConfig], Any]) -> Callable[[], None]:
        started: list[float] = []  # when main() began, for the failure's clean-up
        run = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(
            report_user_errors(task_function, started)
        )

        def main() -> None:
            started[:] = [time.time() - 1]  # a second's slack: file systems round mtimes
            for name, value in project_environment().items():
                os.environ.setdefault(name, value)
            previous = {name: os.environ.get(name) for name in (SHOW_TRACEBACKS, FULL_ERROR)}
            keep_traceback_choice()
            os.environ[FULL_ERROR] = "1"  # Hydra raises; litlab translates below
            sys.argv[1:] = hydra_spelling(sys.argv[1:])
            try:
                if not is_launched_worker():  # rank zero checked the command line
                    require_plugins(sys.argv[1:])
                run()  # a sweep with a failed job ends with status 1 in its callback
            except BrokenPipeError:  # `python train.py --help | head` stopped reading
                _stop_writing_to_closed_pipe()
            except Exception as err:
                user_error = translated(err, lambda: default_keys(config_name))
                if user_error is None or tracebacks_wanted():
                    raise
                exit_with(user_error)
            finally:  # a notebook or a test that calls main() keeps its own settings
                for name, value in previous.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value

        return main

    return decorate


@hydra_entry_point("train")
def train_main(cfg: DictConfig) -> Any:
    apply_recommendations(cfg)
    validate_config(cfg, hydra_choices())
    # Imported after validation: a typo in a general key is answered in a fraction of a second
    # instead of after the ~7 s that importing torch, Lightning and torchvision takes.
    from litlab.cross_validation import is_cross_validation
    from litlab.hparams_search.trial import (
        job_outcome,
        recorded_outcome,
        report_to_trial,
        this_jobs_trial,
    )
    from litlab.train import train

    route_library_loggers()
    trial = this_jobs_trial(cfg)  # a job of an Optuna search: None otherwise
    if trial is not None:
        recorded = recorded_outcome(trial)
        if recorded is not None:
            return recorded
        if not is_cross_validation(cfg):  # the folds' epochs make no one learning curve
            report_to_trial(cfg, trial)
    metrics = train(cfg)
    return job_outcome(cfg, metrics, trial)


@hydra_entry_point("eval")
def eval_main(cfg: DictConfig) -> None:
    validate_config(cfg, hydra_choices())
    from litlab.evaluate import evaluate  # after validation, as above

    route_library_loggers()
    evaluate(cfg)


@hydra_entry_point("predict")
def predict_main(cfg: DictConfig) -> None:
    validate_config(cfg, hydra_choices())
    from litlab.predict import predict, prediction_table  # after validation, as above

    route_library_loggers()
    rows = predict(cfg)
    print(prediction_table(rows))
    log.info(finished_line(Path(cfg.paths.output_dir), PREDICTIONS))


@hydra_entry_point("export")
def export_main(cfg: DictConfig) -> None:
    validate_config(cfg, hydra_choices())
    from litlab.export import export  # after validation, as above

    route_library_loggers()
    path, check = export(cfg)
    print(f"Check against PyTorch: {check}" if check else "Not checked (verify=false).")
    log.info(finished_line(path.parent, path.name))


def report_main(argv: list[str] | None = None) -> int:
    """`litlab-report PATH`: rebuild report.md and plots/ of a run folder, or the summary of a
    sweep folder, from the files on disk."""
    from litlab.report.cv_summary import CrossValidationSummary, is_cross_validation_folder
    from litlab.report.run import write_run_report  # matplotlib: after parsing the arguments
    from litlab.report.sweep import is_sweep_folder, write_sweep_summary

    parser = argparse.ArgumentParser(prog="litlab-report", description=report_main.__doc__)
    parser.add_argument("path", type=Path, help="a run folder or a multirun (sweep) folder")
    path = parser.parse_args(argv).path
    if not path.is_dir():
        return _report_failed(
            f"{path} is not a folder. Give a run folder (outputs/<task_name>/runs/<time>) or "
            "a sweep folder (outputs/<task_name>/multiruns/<time>)."
        )
    try:
        if is_cross_validation_folder(path):
            written = CrossValidationSummary.read(path).write(path)
            print(f"Wrote {written} and the .csv and .json beside it")
            return 0
        if is_run_folder(path):
            report, missing = write_run_report(path)
            print(f"Wrote {report} and its plots in {path / 'plots'}")
            if missing:
                print(
                    f"Incomplete run: {', '.join(missing)} missing or unreadable; the report "
                    "covers what exists."
                )
            return 0
        if is_sweep_folder(path):
            written = write_sweep_summary(path)
            print("Wrote " + ", ".join(str(file) for file in written))
            return 0
    except Exception as err:  # noqa: BLE001 - damaged files the readers did not foresee
        return _report_failed(
            f"could not build the report for {path}: {type(err).__name__}: {err}. A file in "
            "the folder is probably damaged or was edited by hand; the traceback is not shown."
        )
    return _report_failed(
        f"{path} is neither a run folder (it has no config.yaml or .hydra/config.yaml) nor a "
        "sweep folder (no multirun.yaml, no job folders with .hydra/overrides.yaml). Point "
        "litlab-report at a folder that `python train.py` (a run) or `python train.py -m` "
        "(a sweep) made under outputs/."
    )


def runs_main(argv: list[str] | None = None) -> int:
    """`litlab-runs FOLDER`: every finished run under a folder in one table (the config keys
    that differ, the final metrics), with runs that differ only in seed grouped; written as
    runs_comparison.csv, .md and .png."""
    from litlab.report.compare import RunFilter, compare_runs  # matplotlib: after parsing

    parser = argparse.ArgumentParser(prog="litlab-runs", description=runs_main.__doc__)
    parser.add_argument("folder", type=Path, nargs="?", default=Path("outputs"))
    parser.add_argument("--task", help="only runs of this task_name")
    parser.add_argument("--tag", action="append", default=[], help="only runs with this tag")
    parser.add_argument(
        "--since", type=_date, help="only runs started at or after, e.g. 2026-12-01"
    )
    parser.add_argument("--until", type=_date, help="only runs started before")
    parser.add_argument("--glob", help="only run folders whose path below FOLDER matches")
    parser.add_argument("--sort", help="a metric, a config key, run or started")
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--ascending", action="store_true", default=None, help="smallest first")
    order.add_argument("--descending", dest="ascending", action="store_false", help="largest first")
    parser.add_argument("--out", type=Path, help="where the files go (default: FOLDER)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        return _report_failed(
            f"{args.folder} is not a folder. Give the folder your runs are in, e.g. "
            "litlab-runs outputs"
        )
    keep = RunFilter(args.task, args.tag, args.since, args.until, args.glob)
    try:
        written, table = compare_runs(args.folder, keep, args.sort, args.ascending, args.out)
    except ConfigError as err:
        return _report_failed(str(err))
    except OSError as err:  # a folder that cannot be written
        return _report_failed(
            f"could not write the comparison ({err.strerror or err}: "
            f"{err.filename or args.out or args.folder}). Choose a folder you can write with "
            "--out DIR."
        )
    print(table, end="")
    print("Wrote " + ", ".join(str(file) for file in written))
    return 0


def _date(text: str) -> datetime:
    try:
        return local_time(datetime.fromisoformat(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; give one as 2026-12-01 or 2026-12-01T14:30"
        ) from err


def runs_entry_point() -> None:
    sys.exit(runs_main())


def _report_failed(message: str) -> int:
    sys.stderr.write(f"Error: {message}\n")
    return 2


def report_entry_point() -> None:
    sys.exit(report_main())


# -- `litlab`: one command for what exists and what runs --------------------------------------
RUNNERS = {
    "train": lambda: train_main(),
    "eval": lambda: eval_main(),
    "predict": lambda: predict_main(),
    "export": lambda: export_main(),
}


def litlab_main(argv: list[str] | None = None) -> None:
    """`litlab ls|cat|cp|check|show|train|eval|predict|export|report|runs`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "runs":  # its own options, in any order
        sys.exit(runs_main(argv[1:]))
    if argv and argv[0] in RUNNERS:  # Hydra parses the rest as the entry point would
        # the script's own path: run.json records a command that reruns, and Lightning's DDP
        # starts its workers with it
        sys.argv = [str(PROJECT_ROOT / f"{argv[0]}.py"), *argv[1:]]
        RUNNERS[argv[0]]()
        return
    parser = _litlab_parser()
    args = parser.parse_args(argv)
    try:
        status = args.run(args)
    except LitlabError as err:
        sys.stderr.write(f"{paragraph(err)}\n")
        status = err.exit_code
    except BrokenPipeError:  # `litlab ls | head` stopped reading
        sys.stderr.close()
        status = 0
    sys.exit(status)


def _litlab_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="litlab",
        description="List, show and copy litlab's configs, check a config, or run a command. "
        "train, eval, predict and export take Hydra overrides as train.py does.",
    )
    commands = parser.add_subparsers(required=True, metavar="command")
    ls = commands.add_parser("ls", help="every config group's options, with their description")
    ls.add_argument("group", nargs="?", help="only this group, e.g. model")
    ls.set_defaults(run=_ls)
    cat = commands.add_parser("cat", help="print a config, e.g. litlab cat experiment/mnist_cnn")
    cat.add_argument("name", help="group/option, or train, eval, predict, export")
    cat.set_defaults(run=_cat)
    cp = commands.add_parser(
        "cp", help="copy a config to edit it, e.g. litlab cp experiment/mnist_cnn my_conf"
    )
    cp.add_argument("name", help="group/option")
    cp.add_argument(
        "destination",
        type=Path,
        help="a folder (the copy: <folder>/<group>/my_<option>.yaml) or a .yaml file",
    )
    cp.set_defaults(run=_cp)
    check = commands.add_parser("check", help="every problem of a training config at once")
    check.add_argument("overrides", nargs="*", help="as for train.py, e.g. model=cnn data=iris")
    check.set_defaults(run=_check)
    show = commands.add_parser(
        "show", help="the config a training command runs with (its parts' recommendations applied)"
    )
    show.add_argument("overrides", nargs="*", help="as for train.py, e.g. model=transformer")
    show.set_defaults(run=_show)
    report = commands.add_parser("report", help="rebuild a run's report or a sweep's summary")
    report.add_argument("path")
    report.set_defaults(run=lambda args: report_main([args.path]))
    commands.add_parser("runs", help="every finished run under a folder in one table")
    for name in RUNNERS:
        commands.add_parser(name, help=f"as python {name}.py, with Hydra overrides")
    return parser


def _ls(args: argparse.Namespace) -> int:
    from litlab.config.catalog import entry_configs, groups, options

    shown = [args.group] if args.group else groups()
    if args.group and args.group not in groups():
        raise ConfigError(f"{args.group} is not a config group; the groups: {', '.join(groups())}.")
    if not args.group:
        _print_options("configs the commands start from", entry_configs())
    for group in shown:
        _print_options(group, options(group))
    return 0


def _print_options(title: str, found: dict[str, str]) -> None:
    width = max(map(len, found), default=0)
    print(f"{title}:")
    for name, text in found.items():
        print(f"  {name:<{width}}  {text}")


def _cat(args: argparse.Namespace) -> int:
    from litlab.config.catalog import config_file

    print(config_file(args.name).read_text(), end="")
    return 0


def _cp(args: argparse.Namespace) -> int:
    from litlab.config.catalog import copy_config

    target = copy_config(args.name, args.destination)
    group = args.name.rsplit("/", 1)[0] if "/" in args.name else ""
    folder = target.parents[group.count("/") + 1] if group else target.parent
    if group and target.parent.relative_to(folder).as_posix() != group:
        print(
            f"Wrote {target}; to use it, put it in a folder <dir>/{group}/ and run: "
            f"python train.py --config-dir <dir> {group}={target.stem}"
        )
        return 0
    use = f"{group}={target.stem}" if group else f"--config-name {target.stem}"
    print(f"Wrote {target}; edit it and run: python train.py --config-dir {folder} {use}")
    return 0


def _composed(overrides: list[str], recommend: bool = True) -> DictConfig:
    """The training config of ``overrides``; an unknown option or key: the closest named."""
    from hydra.errors import HydraException

    from litlab.config import compose_overrides

    try:
        return compose_overrides(overrides, "train", recommend)
    except HydraException as err:
        user_error = translated(err, lambda: default_keys("train", overrides))
        if user_error is None:
            raise
        raise user_error from None


def _show(args: argparse.Namespace) -> int:
    """Hydra's --cfg job prints its composition before the parts' recommended settings."""
    from litlab.config.recommended import applied_line

    cfg = _composed(args.overrides, recommend=False)
    applied = apply_recommendations(cfg, quiet=True)
    with open_dict(cfg):
        del cfg["hydra"]
    if applied:
        print(f"# {applied_line(applied)}")
    print(OmegaConf.to_yaml(cfg), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    from litlab.config import config_errors

    cfg = _composed(args.overrides)
    choices = {key: str(value) for key, value in cfg.hydra.runtime.choices.items()}
    errors = config_errors(cfg, choices)
    for err in errors:
        sys.stderr.write(f"{paragraph(err)}\n")
    if errors:
        sys.stderr.write(f"{len(errors)} problem(s) in the config.\n")
        return 2
    print("The config passes every check.")
    return 0
