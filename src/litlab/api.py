"""litlab from Python: notebooks and scripts train, evaluate and predict with the command
line's overrides and get results back as objects.

    import litlab
    result = litlab.fit("model=cnn", "trainer.max_epochs=3")
    result.metrics["test/acc"], result.history, result.net, result.run_dir
    result.predict("docs/examples/digits")          # files, a folder, a glob, or a tensor

Each call composes conf/ as the command would, runs in a run folder of its own (the same
outputs/<task_name>/runs/<time>) and leaves no global state behind: Hydra is not left
initialized, the working folder is unchanged, logging and warnings are as they were. Every user
error is raised as :class:`litlab.LitlabError` with the command line's one-paragraph message
(never ``sys.exit``); anything else is a bug and keeps its traceback.
"""

import logging
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from litlab.config import compose_overrides, escaped, quoted
from litlab.config.recommended import applied_line, apply_recommendations
from litlab.errors import ConfigError
from litlab.run_folder import (
    BEST_CHECKPOINT,
    CHECKPOINTS,
    CV_SUMMARY,
    HISTORY,
    METRICS,
    PREDICTIONS,
    REFIT,
    REPORT,
    cv_part_folders,
    free_path,
    read_json_object,
)

if TYPE_CHECKING:
    import pandas
    import torch

log = logging.getLogger(__name__)
Overrides = str | Sequence[str]


@dataclass
class RunResult:
    """A finished run (or cross-validation) and what it left in its folder."""

    run_dir: Path
    metrics: dict[str, float] = field(repr=False)

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunResult":
        """The result of a run that finished earlier, from its folder."""
        folder = Path(run_dir)
        if not (folder / METRICS).is_file():
            raise ConfigError(
                f"{folder} holds no finished run (no {METRICS}). Give the folder of a run that "
                "finished, e.g. outputs/train/runs/<time>."
            )
        return cls(folder, read_json_object(folder / METRICS))

    @property
    def is_cross_validation(self) -> bool:
        from litlab.report.cv_summary import is_cross_validation_folder

        return is_cross_validation_folder(self.run_dir)

    @property
    def folds(self) -> list["RunResult"]:
        """A cross-validation's folds (then its refit), each a run; empty for a single run."""
        if not self.is_cross_validation:
            return []
        return [RunResult.load(part) for part in cv_part_folders(self.run_dir)]

    @property
    def checkpoint(self) -> Path:
        """The checkpoint that evaluate and predict use: best.ckpt (a cross-validation's:
        its refit's)."""
        run = self.run_dir / REFIT if self.is_cross_validation else self.run_dir
        path = run / CHECKPOINTS / BEST_CHECKPOINT
        if not path.is_file():
            why = (
                "a cross-validation keeps one model per fold (result.folds[i]) and one to use "
                "only with cv.refit=true"
                if self.is_cross_validation
                else "the run saved no best checkpoint"
            )
            raise ConfigError(f"{self.run_dir} has no model to use: {why}.")
        return path

    @cached_property
    def history(self) -> "pandas.DataFrame":
        """One row per epoch (history.csv); a cross-validation's: every fold's, with a fold
        column."""
        import pandas

        if self.is_cross_validation:
            frames = [fold.history.assign(fold=fold.run_dir.name) for fold in self.folds]
            return pandas.concat(frames, ignore_index=True)
        return pandas.read_csv(self.run_dir / HISTORY)

    @property
    def report(self) -> str:
        """report.md's text (a cross-validation's: cv_summary.md)."""
        name = f"{CV_SUMMARY}.md" if self.is_cross_validation else REPORT
        return (self.run_dir / name).read_text()

    @cached_property
    def net(self) -> "torch.nn.Module":
        """The trained network (best.ckpt's weights), in eval mode, on the CPU."""
        from litlab.build import load_trained

        with _quiet_loading():
            return load_trained(str(self.checkpoint), _data_dir()).module.net

    def predict(self, inputs: Any, *overrides: Overrides) -> "pandas.DataFrame":
        """:func:`predict` with this run's model."""
        return predict(self.checkpoint, inputs, *overrides)

    def evaluate(self, *overrides: Overrides) -> "RunResult":
        """:func:`evaluate` of this run's model (e.g. ``"split=val"``)."""
        return evaluate(self.checkpoint, *overrides)

    def _repr_markdown_(self) -> str:  # Jupyter shows a result as its metrics
        shown = {name: value for name, value in self.metrics.items() if "/" in name}
        rows = "\n".join(f"| {name} | {value:.4g} |" for name, value in sorted(shown.items()))
        return f"**{self.run_dir}**\n\n| metric | value |\n|---|---:|\n{rows}\n"


def fit(*overrides: Overrides) -> RunResult:
    """Train and test as ``python train.py <overrides>`` does (also cv.folds=K and
    resume=auto); return the run's result."""
    from litlab.train import train

    with _command("train", overrides) as cfg:
        metrics = train(cfg)
        return RunResult(Path(cfg.paths.output_dir), metrics)


def evaluate(checkpoint: str | Path, *overrides: Overrides) -> RunResult:
    """Test a checkpoint (or a run folder's best.ckpt) as ``python eval.py`` does."""
    from litlab.evaluate import evaluate as evaluate_checkpoint

    ckpt = _checkpoint(checkpoint)
    with _command("eval", (f"ckpt_path={quoted(str(ckpt))}", *overrides)) as cfg:
        metrics = evaluate_checkpoint(cfg)
        return RunResult(Path(cfg.paths.output_dir), metrics)


def predict(checkpoint: str | Path, inputs: Any, *overrides: Overrides) -> "pandas.DataFrame":
    """A trained model's predictions, one row per input, as ``python predict.py`` writes them
    (predictions.csv): ``inputs`` are files (a path, a folder, a glob) or an array of inputs in
    the data set's raw form, ``(N, *input_shape)`` or ``(N, num_features)``."""
    import pandas

    from litlab.predict import predict as predict_inputs

    ckpt = _checkpoint(checkpoint)
    given = isinstance(inputs, (str, Path))
    named = f"inputs={quoted(str(inputs))}" if given else "inputs=array"
    with _command("predict", (f"ckpt_path={quoted(str(ckpt))}", named, *overrides)) as cfg:
        predict_inputs(cfg, None if given else inputs)
        return pandas.read_csv(Path(cfg.paths.output_dir) / PREDICTIONS)


# -- one command, in this process ------------------------------------------------------------
@contextmanager
def _command(config_name: str, overrides: Sequence[Overrides]) -> Iterator[DictConfig]:
    """Compose ``config_name`` with ``overrides`` and give its config, run folder made and
    logged to, for one call; then put Hydra, logging and warnings back as they were."""
    from litlab.command import config_keys, default_keys, require_plugins, tidy_failed_run
    from litlab.library_errors import translated

    given = _override_list(overrides)
    previous_hydra = HydraConfig.instance().cfg
    started = time.time() - 1  # a second's slack: file systems round mtimes
    cfg = None
    with ExitStack() as stack:
        try:
            require_plugins(given)
            cfg, notes = _composed(config_name, given)
            stack.enter_context(_logging_to(Path(cfg.paths.output_dir), cfg))
            for note in notes:  # said once the run's log is open, as on the command line
                log.info(note)
            yield cfg
        except Exception as err:
            if cfg is None:
                user_error = translated(err, lambda: default_keys(config_name, given))
            else:
                user_error = translated(err, lambda: config_keys(cfg))
                tidy_failed_run(cfg, user_error or err, started)
            if user_error is None:
                raise  # a bug: its traceback
            raise user_error from None  # the message is the whole story, as on the console
        finally:
            HydraConfig.instance().cfg = previous_hydra


def _composed(config_name: str, overrides: list[str]) -> tuple[DictConfig, list[str]]:
    """conf/<config_name> with ``overrides`` as the command line composes it, its run folder
    chosen (a resumed run's own) and Hydra's run-time node filled as for a run; and the lines
    to log: the recommended settings applied, the run that resume=auto continues."""
    from litlab.config.checks import runs_on_one_device
    from litlab.run_start import prepare_run_folder

    cfg = compose_overrides(overrides, config_name, recommend=False)
    applied = apply_recommendations(cfg, quiet=True)
    if not runs_on_one_device(cfg.trainer):
        raise ConfigError(
            f"trainer.devices={cfg.trainer.get('devices')} (num_nodes "
            f"{cfg.trainer.get('num_nodes') or 1}) from Python: Lightning starts the other "
            "processes by running the script again, which would start its own runs. Train on "
            "several devices from the command line (python train.py trainer=ddp_cpu ...) and "
            "read the result with litlab.RunResult.load(<run folder>)."
        )
    note = prepare_run_folder(cfg)  # resume=auto: the folder of the run it continues
    run = Path(cfg.hydra.run.dir)
    if note is None:
        run = free_path(run)  # two calls within one second: <time>.1
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run)
        cfg.paths.output_dir = escaped(run)
    HydraConfig.instance().set_config(cfg)
    return cfg, [line for line in (applied and applied_line(applied), note) if line]


@contextmanager
def _logging_to(run: Path, cfg: DictConfig) -> Iterator[None]:
    """The command line's console (litlab's lines, warnings once, the libraries' filtered) and
    its log file <run>/<command>.log, for one call; logging and warnings as they were after."""
    import lightning.pytorch  # noqa: F401 - its loggers exist before they are routed

    from litlab.console import (
        LIBRARY_LOGGERS,
        ConsoleFormatter,
        QuietLibraries,
        quiet_warnings,
        route_library_loggers,
    )

    libraries = {name: logging.getLogger(name) for name in LIBRARY_LOGGERS}
    as_they_were = {name: (list(lib.handlers), lib.propagate) for name, lib in libraries.items()}
    verbose = bool(cfg.get("verbose"))
    run.mkdir(parents=True, exist_ok=True)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(ConsoleFormatter())
    console.addFilter(QuietLibraries(show=verbose))
    log_file = logging.FileHandler(run / f"{cfg.hydra.job.name}.log")
    log_file.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    level, formatting = root.level, warnings.formatwarning
    root.setLevel(logging.INFO)
    root.addHandler(console)
    root.addHandler(log_file)
    try:
        with warnings.catch_warnings():
            quiet_warnings(show=verbose)
            route_library_loggers()
            yield
    finally:
        for name, (handlers, propagate) in as_they_were.items():
            libraries[name].handlers[:] = handlers
            libraries[name].propagate = propagate
        logging.captureWarnings(False)
        warnings.formatwarning = formatting
        for handler in (console, log_file):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


@contextmanager
def _quiet_loading() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _override_list(overrides: Sequence[Overrides]) -> list[str]:
    """``fit("model=cnn", "seed=1")``, ``fit(["model=cnn", "seed=1"])`` or ``fit("model=cnn
    seed=1")``: one list of overrides."""
    listed: list[str] = []
    for item in overrides:
        if isinstance(item, str):
            listed += item.split()
        elif isinstance(item, Sequence):
            listed += [str(part) for part in item]
        else:
            raise ConfigError(
                f"{item!r} is not an override: give them as text, as on the command line, "
                'e.g. litlab.fit("model=cnn", "trainer.max_epochs=3").'
            )
    return listed


def _checkpoint(checkpoint: str | Path | RunResult) -> Path:
    """A checkpoint file, or a run folder (or result) whose best.ckpt is meant."""
    if isinstance(checkpoint, RunResult):
        return checkpoint.checkpoint
    path = Path(checkpoint)
    return RunResult(path, {}).checkpoint if path.is_dir() else path


def _data_dir() -> str:
    """Where data sets are on this machine, as conf/paths says."""
    return str(compose_overrides([], "predict").paths.data_dir)
