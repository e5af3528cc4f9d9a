"""What `litlab-train` and `litlab-eval` share: Hydra over conf/, `resume=auto`, and user errors
reported as one paragraph with an exit status instead of a traceback."""

import errno
import importlib.util
import logging
import os
import sys
import tempfile
import textwrap
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from litlab import CONFIG_DIR, PROJECT_ROOT
from litlab.config import validate_config
from litlab.errors import ConfigError, LitlabError, TrainingInterrupted

log = logging.getLogger(__name__)

# Set once the entry point has looked up the run that resume=auto|force continues.
RESUME_RESOLVED = "LITLAB_RESUME_RESOLVED"


def prepare_environment() -> None:
    """Set what conf/ reads from the environment (the project root for paths)."""
    os.environ.setdefault("LITLAB_ROOT", str(PROJECT_ROOT))


def compose_config(
    overrides: list[str], output_dir: str | Path, config_name: str = "train"
) -> DictConfig:
    """Compose conf/<config_name> as the command line would, with the run folder at
    ``output_dir``: for tests, notebooks and scripts that call ``train(cfg)`` directly."""
    cfg = _compose(overrides, config_name)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def _compose(overrides: list[str], config_name: str) -> DictConfig:
    prepare_environment()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=overrides, return_hydra_config=True)


def hydra_choices() -> dict[str, str]:
    """Chosen config group options ({"model": "cnn", ...}) when running under Hydra."""
    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items()}


def _paragraph(err: LitlabError) -> str:
    return textwrap.fill(
        f"{err.label}: {err}", width=100, break_long_words=False, break_on_hyphens=False
    )


def _exit_with(err: LitlabError) -> None:
    sys.stderr.write(f"{_paragraph(err)}\n(Set HYDRA_FULL_ERROR=1 for a traceback.)\n")
    sys.exit(err.exit_code)


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def report_user_errors(task_function: Callable[[DictConfig], Any]) -> Callable:
    @wraps(task_function)
    def wrapper(cfg: DictConfig) -> Any:
        full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
        try:
            return task_function(cfg)
        except TrainingInterrupted as err:  # Ctrl+C or SIGTERM: also ends a sweep
            if full_error:
                raise
            _exit_with(err)
        except KeyboardInterrupt:  # during training GracefulStop handles Ctrl+C instead
            sys.stderr.write("Stopped: interrupted before training began; nothing was saved.\n")
            sys.exit(130)
        except Exception as err:
            if full_error or not (_in_multirun() or isinstance(err, LitlabError)):
                raise  # a bug in a single run: its traceback
            if _in_multirun():
                return _job_failed(cfg, err)
            _exit_with(err)

    return wrapper


def _job_failed(cfg: DictConfig, err: Exception) -> None:
    """A multirun job that raised: record it in the job folder (status.json, the sweep
    summary) and go on with the next job; with ``stop_on_failure=true``, end the sweep here.
    Returns None, not NaN: hydra-optuna-sweeper tells Optuna a NaN as a completed value, which
    Optuna refuses, ending the whole search; a value that is not a number is a failed trial."""
    from litlab.report.sweep import record_failure, write_sweep_summary  # matplotlib: lazily

    if isinstance(err, LitlabError):
        log.error("%s", _paragraph(err))
    else:
        log.exception("The job failed with %s; the sweep goes on.", type(err).__name__)
    hydra_config = HydraConfig.get()
    record_failure(Path(hydra_config.runtime.output_dir), err)  # rank zero only
    if cfg.get("stop_on_failure"):
        write_sweep_summary(Path(hydra_config.sweep.dir))
        sys.stderr.write("Stopped the sweep at its first failed job (stop_on_failure=true).\n")
        sys.exit(err.exit_code if isinstance(err, LitlabError) else 1)
    return None


def hydra_entry_point(
    config_name: str, prepare_argv: Callable[[list[str]], list[str]] | None = None
) -> Callable:
    """Decorate ``fn(cfg)`` into a console-script ``main()`` that composes conf/<config_name>;
    ``prepare_argv`` may rewrite the command line before Hydra reads it."""

    def decorate(task_function: Callable[[DictConfig], Any]) -> Callable[[], None]:
        run = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(
            report_user_errors(task_function)
        )

        def main() -> None:
            prepare_environment()
            if prepare_argv is not None:
                try:
                    sys.argv = prepare_argv(sys.argv)
                except LitlabError as err:
                    _exit_with(err)
            run()
            _exit_if_jobs_failed()

        return main

    return decorate


def _exit_if_jobs_failed() -> None:
    """After a multirun whose jobs did not all succeed: exit status 1 (the summary says which)."""
    sweep = sys.modules.get("litlab.report.sweep")
    if sweep is not None and sweep.failed_jobs_in_last_sweep:
        sys.exit(1)


def prepare_command_line(config_name: str) -> Callable[[list[str]], list[str]]:
    """What has to happen before Hydra creates the run folder: check that it can be created,
    and for ``resume=auto|force`` point Hydra at the run to continue."""

    def prepare(argv: list[str]) -> list[str]:
        if os.environ.get("LOCAL_RANK", "0") != "0":
            return argv  # a DDP worker that Lightning started: its launcher prepared the argv
        _require_plugins(argv[1:])
        if any(arg.startswith("-") and arg not in ("-m", "--multirun") for arg in argv[1:]):
            return argv  # --help, --cfg job, --config-dir, ...: left to Hydra
        overrides = [arg for arg in argv[1:] if not arg.startswith("-")]
        try:
            cfg = _compose(overrides, config_name)
            folder = cfg.hydra.sweep.dir if {"-m", "--multirun"} & set(argv) else cfg.hydra.run.dir
        except Exception:  # noqa: BLE001 - Hydra reports bad overrides itself, in its own words
            return argv
        _check_writable(Path(folder))
        return resolve_resume(argv, cfg) if config_name == "train" else argv

    return prepare


# Command-line choices that need an optional Hydra plugin: (plugin module, pip extra).
PLUGINS = {
    "hparams_search=": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "hydra/launcher=submitit": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}


def _require_plugins(args: list[str]) -> None:
    """Name the pip extra when a choice needs a plugin that is not installed (Hydra would only
    say that it cannot find the config)."""
    for arg in args:
        for prefix, (module, extra) in PLUGINS.items():
            if arg.startswith(prefix) and not arg.endswith("=null") and not _installed(module):
                raise ConfigError(
                    f"{arg} needs the Hydra plugin {module.split('.')[1].replace('_', '-')}, "
                    f'which is not installed. Install it with: pip install -e ".[{extra}]"'
                )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # not even the hydra_plugins namespace: no plugin at all
        return False


def _check_writable(folder: Path) -> None:
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(
            f"The run folder {folder} cannot be created: {existing} is not a writable folder "
            f"({err.strerror}). Choose another place with hydra.run.dir=<folder> (with -m: "
            "hydra.sweep.dir=<folder>), or paths.log_dir=<folder> for all runs."
        ) from err


def resolve_resume(argv: list[str], cfg: DictConfig) -> list[str]:
    """For ``resume=auto|force``: the run folder and last.ckpt of the run to continue."""
    resume = cfg.get("resume")
    if resume not in ("auto", "force"):
        return argv  # null, or a bad value that validation names
    if {"-m", "--multirun"} & set(argv):
        raise ConfigError(
            f"resume={resume} continues one run and cannot be combined with --multirun; resume "
            "each run of a sweep with its own ckpt_path=<run>/checkpoints/last.ckpt."
        )
    chosen = [arg for arg in argv[1:] if arg.startswith(("hydra.run.dir=", "ckpt_path="))]
    if chosen:
        raise ConfigError(
            f"resume={resume} chooses the run folder and checkpoint itself, so {chosen[0]} "
            "cannot be given with it. Leave out resume to start from that checkpoint in a new "
            "folder, or leave out hydra.run.dir and ckpt_path."
        )
    os.environ[RESUME_RESOLVED] = "1"
    runs = Path(cfg.paths.log_dir) / cfg.task_name / "runs"
    run = _latest_resumable_run(runs)
    if run is None:
        log.warning(
            "resume=%s: no run with checkpoints/last.ckpt in %s; a new one starts.", resume, runs
        )
        return argv
    if (run / "metrics.json").exists() and resume == "auto":
        raise ConfigError(
            f"resume=auto: the latest run of task_name={cfg.task_name}, {run}, has finished (it "
            "wrote metrics.json), so it is not continued. Start a new run by leaving out resume, "
            "or continue that one anyway with resume=force (e.g. with a larger "
            "trainer.max_epochs)."
        )
    log.warning("resume=%s: continuing %s", resume, run)
    record = _free_name(run, ".hydra-resume")  # keep the first run's .hydra/ as it was
    return [
        *argv,
        f"hydra.run.dir={_quoted(run)}",
        f"hydra.output_subdir={record}",
        f"ckpt_path={_quoted(run / 'checkpoints' / 'last.ckpt')}",
    ]


def _quoted(path: Path) -> str:
    """A path as a Hydra override value: quoted, with quotes and ${ (interpolation) escaped."""
    text = str(path).replace("'", "\\'").replace("${", "\\${")
    return f"'{text}'"


def _latest_resumable_run(runs: Path) -> Path | None:
    """Run folders are named <date>_<time>, so the last in name order is the latest."""
    candidates = sorted(runs.glob("*/checkpoints/last.ckpt")) if runs.is_dir() else []
    return candidates[-1].parent.parent if candidates else None


def _free_name(folder: Path, stem: str) -> str:
    number = 1
    while (folder / f"{stem}-{number}").exists():
        number += 1
    return f"{stem}-{number}"


@hydra_entry_point("train", prepare_argv=prepare_command_line("train"))
def train_main(cfg: DictConfig) -> float | None:
    validate_config(cfg, hydra_choices())
    # Imported after validation: a typo is answered in a fraction of a second instead of after
    # the ~7 s that importing torch, Lightning and torchvision takes.
    from litlab.train import train

    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


@hydra_entry_point("eval", prepare_argv=prepare_command_line("eval"))
def eval_main(cfg: DictConfig) -> None:
    from litlab.evaluate import evaluate  # after Hydra has checked the command line

    evaluate(cfg)
