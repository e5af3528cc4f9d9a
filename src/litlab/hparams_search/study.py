"""The Optuna study of a search, as litlab keeps it: samplers and pruners by name, the
directions, the storage (``optuna.db`` in the sweep folder unless a URL is given, so that jobs in
other processes and on other machines reach their trial), the checks that refuse a search before
its first trial, and one job's link to its trial. Optuna is imported inside functions only (the
``optuna`` extra): Hydra imports the sweeper plugin for every command."""

import functools
import importlib.util
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litlab.errors import ConfigError, listed

log = logging.getLogger(__name__)

SAMPLERS = {
    "tpe": "optuna.samplers.TPESampler",
    "random": "optuna.samplers.RandomSampler",
    "gp": "optuna.samplers.GPSampler",
    "cmaes": "optuna.samplers.CmaEsSampler",
    "nsgaii": "optuna.samplers.NSGAIISampler",
    "qmc": "optuna.samplers.QMCSampler",
    "grid": "optuna.samplers.GridSampler",
}
PRUNERS = {
    "none": "optuna.pruners.NopPruner",
    "median": "optuna.pruners.MedianPruner",
    "hyperband": "optuna.pruners.HyperbandPruner",
    "successive_halving": "optuna.pruners.SuccessiveHalvingPruner",
}  # the others (percentile, threshold, ...) need arguments: a mapping with _target_ gives them
SAMPLER_PACKAGES = {"optuna.samplers.CmaEsSampler": "cmaes"}  # imported at the first trial
DIRECTIONS = ("maximize", "minimize")
STUDY_FILE = "optuna.db"  # in the sweep folder, when hydra.sweeper.storage is null
PRUNED_EPOCH = "pruned_after_epoch"  # the trial's user attribute a pruned job sets


# -- what the sweeper's config names ----------------------------------------------------------
def directions(sweeper: DictConfig) -> list[str]:
    given = sweeper.get("direction")
    named = list(given) if OmegaConf.is_list(given) or isinstance(given, list) else [given]
    names = [str(item).lower() for item in named]
    bad = [name for name in names if name not in DIRECTIONS]
    if bad or not names:
        raise ConfigError(
            f"hydra.sweeper.direction={given!r} is not a direction: each one is maximize or "
            "minimize, e.g. hydra.sweeper.direction=maximize, or a list for several objectives: "
            "hydra.sweeper.direction=[maximize,minimize]."
        )
    return names


def objectives(task: DictConfig) -> list[str]:
    """The metric(s) the study records, from the task's ``optimized_metric``."""
    given = task.get("optimized_metric")
    names = list(given) if OmegaConf.is_list(given) else [given]
    return [str(name) for name in names if name]


def pruner_name(pruner: Any) -> str:
    """A short name for messages: median, hyperband, ... or the class of a ``_target_``."""
    if isinstance(pruner, str) or pruner is None:
        return str(pruner or "none")
    target = str(pruner.get("_target_", ""))
    known = {path: name for name, path in PRUNERS.items()}
    return known.get(target, target.rpartition(".")[2])


def prunes(pruner: Any) -> bool:
    return pruner_name(pruner) not in ("none", "NopPruner")


def build_sampler(sampler: Any, search_space: Mapping[str, Any] | None = None) -> Any:
    """The sampler of ``hydra.sweeper.sampler``: a name (tpe, random, ...) or a mapping with
    ``_target_`` and the sampler's arguments. The grid sampler gets the grid from the search
    space (its choices and ranges)."""
    return _build("sampler", sampler or "tpe", SAMPLERS, search_space or {})


def build_pruner(pruner: Any) -> Any:
    """The pruner of ``hydra.sweeper.pruner``: a name (median, hyperband, successive_halving,
    none ...; Optuna's defaults) or a mapping with ``_target_`` and the pruner's arguments."""
    return _build("pruner", pruner or "none", PRUNERS, {})


def _build(kind: str, given: Any, names: dict[str, str], space: Mapping[str, Any]) -> Any:
    from hydra.utils import get_class

    node = {"_target_": names.get(str(given).lower(), "")} if isinstance(given, str) else given
    arguments = (
        OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    )
    target = str(arguments.pop("_target_", "") or "")
    options = f"the {kind}s: {listed(list(names))}"
    if not target:
        raise ConfigError(
            f"hydra.sweeper.{kind}={given!r} is not an Optuna {kind}: {options} (e.g. "
            f"hydra.sweeper.{kind}={next(iter(names))}), or a mapping with _target_ and its "
            "arguments."
        )
    try:
        cls = grid_sampler_class() if target == SAMPLERS["grid"] else get_class(target)
    except Exception as err:  # noqa: BLE001 - Hydra wraps the import's own error
        raise ConfigError(
            f"hydra.sweeper.{kind}._target_={target} cannot be imported ({_cause(err)}): {options}."
        ) from None
    package = SAMPLER_PACKAGES.get(target)
    if package and importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"The {kind} {target} needs the package {package}, which is not installed: "
            f"pip install {package} (or choose another: {options})."
        )
    if target == SAMPLERS["grid"]:
        arguments["search_space"] = {key: grid_values(key, d) for key, d in space.items()}
    try:
        return cls(**arguments)
    except (TypeError, ValueError, ImportError) as err:
        raise ConfigError(
            f"The {kind} {target} refused its arguments {arguments}: {_cause(err)}. Its "
            "arguments are in Optuna's reference; the names alone take Optuna's defaults "
            f"({options})."
        ) from None


def grid_sampler_class() -> type:
    """Optuna's grid sampler without its stop: it stops the study once the grid is covered,
    which only ``study.optimize`` allows (a RuntimeError under ask-and-tell). The sweeper asks
    no more trials once ``is_exhausted`` says the grid is covered."""
    from optuna.samplers import GridSampler

    class GridWithoutStop(GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return GridWithoutStop


def grid_values(key: str, distribution: Any) -> list[Any]:
    """The points of a choice, or of a range (a distribution with a step)."""
    if hasattr(distribution, "choices"):
        return list(distribution.choices)
    step = getattr(distribution, "step", None)
    if step is None or distribution.log:
        raise ConfigError(
            f"The grid sampler needs a finite set of values for every parameter, but {key} is "
            "an interval: give it as choice(...) or range(...), or use another sampler."
        )
    count = int(round((distribution.high - distribution.low) / step)) + 1
    return [distribution.low + index * step for index in range(count)]


def _cause(err: BaseException) -> str:
    inner = err.__cause__ or err
    lines = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {lines[0] if lines else ''}"


# -- the checks before the first trial -----------------------------------------------------------
def check_search(sweeper: DictConfig, task: DictConfig) -> None:
    """Refuse, in one paragraph each, what Optuna or SQLAlchemy would refuse only once the
    search runs, with a traceback, or what would make every trial fail or prune the wrong ones."""
    for key in ("n_trials", "n_jobs"):
        value = sweeper.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(
                f"hydra.sweeper.{key}={value!r} is invalid: it must be a number >= 1, e.g. "
                f"hydra.sweeper.{key}={20 if key == 'n_trials' else 1}."
            )
    names, metrics = directions(sweeper), objectives(task)
    if len(names) != len(metrics):
        raise ConfigError(
            f"hydra.sweeper.direction gives {len(names)} direction(s) ({', '.join(names)}) but "
            f"optimized_metric names {len(metrics)} metric(s) ({', '.join(metrics) or 'none'}): "
            "give one metric per direction, e.g. optimized_metric=[val/acc_best,model/params] "
            "with hydra.sweeper.direction=[maximize,minimize]."
        )
    _check_direction_of_the_best(names, metrics, task)
    _check_one_search_per_command(task)
    if prunes(sweeper.get("pruner")):
        _check_pruning(sweeper, task, metrics)
    if sweeper.get("storage"):
        check_storage(str(sweeper.storage))


def _check_one_search_per_command(config: DictConfig) -> None:
    """Lightning's DDP launcher starts each extra process by running the command line again,
    which in a search would run a search of its own, with trials of its own. A SLURM job's
    tasks (hydra/launcher=slurm) and ddp_spawn's processes are processes of the one trial."""
    trainer = config.get("trainer") or {}
    strategy, devices = str(trainer.get("strategy", "auto")), trainer.get("devices", 1)
    launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
    several = str(devices) not in ("1", "auto")  # 2, -1 (all GPUs), [0, 1]
    if strategy not in ("ddp", "auto") or not several or "Slurm" in launcher:
        return
    raise ConfigError(
        f"trainer.strategy={strategy} with trainer.devices={devices} cannot run inside a search "
        "on this machine: Lightning starts each extra process by running the command line "
        "again, which would start a search of its own. Give each trial one process "
        "(trainer.devices=1; several trials at once with hydra/launcher=joblib and "
        "hydra.sweeper.n_jobs), use trainer.strategy=ddp_spawn, or run the trials as SLURM "
        "jobs (hydra/launcher=slurm)."
    )


def _check_direction_of_the_best(names: list[str], metrics: list[str], task: DictConfig) -> None:
    """The sweeper's direction defaults to minimize: the best of the monitored metric has the
    monitor's direction (val/acc_best is maximized, val/loss_best minimized)."""
    monitor = task.get("monitor") or {}
    best = f"{monitor.get('metric')}_best"
    wanted = "maximize" if monitor.get("mode") == "max" else "minimize"
    for direction, metric in zip(names, metrics, strict=True):
        if metric == best and direction != wanted:
            raise ConfigError(
                f"hydra.sweeper.direction={direction} would search for the worst {metric}: it "
                f"is better when {'higher' if wanted == 'maximize' else 'lower'} "
                f"(monitor.mode={monitor.get('mode')}). Set hydra.sweeper.direction={wanted}."
            )


def _check_pruning(sweeper: DictConfig, task: DictConfig, metrics: list[str]) -> None:
    build_pruner(sweeper.get("pruner"))  # an unknown name or bad arguments first
    name = pruner_name(sweeper.get("pruner"))
    if len(metrics) > 1:
        raise ConfigError(
            f"hydra.sweeper.pruner={name} cannot prune a search with {len(metrics)} objectives "
            "(Optuna prunes single-objective studies only): set hydra.sweeper.pruner=none, or "
            "search one metric."
        )
    validates = task.get("trainer", {}).get("limit_val_batches", 1) not in (0, 0.0)
    if not metrics[0].startswith("val/") or not validates:
        why = (
            "validation is off (trainer.limit_val_batches=0)"
            if not validates
            else f"optimized_metric={metrics[0]} is not a validation metric"
        )
        raise ConfigError(
            f"hydra.sweeper.pruner={name} needs a validation metric to judge each trial after "
            f"every epoch, but {why}. Optimize a val/ metric (optimized_metric=val/acc_best, "
            "val/loss_best) with validation on, or set hydra.sweeper.pruner=none."
        )


def check_storage(storage: str) -> None:
    from sqlalchemy.engine import make_url  # the optuna extra's
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage)
    except ArgumentError:
        raise ConfigError(
            f"hydra.sweeper.storage={storage!r} is not a database URL. Keep the study in a "
            "file with sqlite:///<folder>/study.db (a relative path after three slashes, an "
            "absolute one after four), or in the sweep folder with hydra.sweeper.storage=null."
        ) from None
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        _check_writable_database(storage, Path(url.database))


def _check_writable_database(storage: str, database: Path) -> None:
    folder = database.parent
    if not folder.is_dir():
        problem = f"its folder {folder} does not exist"
    elif not os.access(folder, os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        problem = f"{database if database.exists() else folder} cannot be written"
    else:
        return
    raise ConfigError(
        f"hydra.sweeper.storage={shown(storage)!r} cannot be opened: {problem}. "
        "Create the folder or choose a writable one, e.g. hydra.sweeper.storage=sqlite:///outputs/study.db."
    )


def shown(url: str) -> str:
    """A storage URL for messages: its password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def storage_url(storage: str | None, sweep_dir: str | Path) -> str:
    """The given URL, or a SQLite file in the sweep folder."""
    if storage:
        return str(storage)
    return f"sqlite:///{Path(sweep_dir).resolve() / STUDY_FILE}"


@functools.lru_cache(maxsize=4)
def open_storage(url: str) -> Any:
    """One storage per URL and process: the jobs of a basic launcher share the sweeper's
    process, and each new engine costs a connection and a schema check."""
    import optuna

    try:
        return optuna.storages.get_storage(url)
    except Exception as err:  # noqa: BLE001 - SQLAlchemy's and the drivers' errors vary
        raise ConfigError(
            f"hydra.sweeper.storage={shown(url)!r} cannot be opened ({_cause(err)}). Check "
            "the URL, that its database server runs and accepts this user, or keep the study "
            "in the sweep folder with hydra.sweeper.storage=null."
        ) from None


# -- one job's trial ------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialLink:
    """Where a job finds its trial: the study's storage URL and name, the trial's number, and
    the pruner (name or mapping) that judges it."""

    storage: str
    study_name: str
    number: int
    pruner: Any = "none"

    def trial(self) -> Any:
        """The live ``optuna.Trial`` (report, should_prune, set_user_attr)."""
        import optuna

        study = optuna.load_study(
            study_name=self.study_name,
            storage=open_storage(self.storage),
            sampler=optuna.samplers.RandomSampler(),  # the sweeper samples; a job only reports
            pruner=build_pruner(self.pruner),
        )
        return optuna.trial.Trial(study, self._trial_id(open_storage(self.storage)))

    def frozen(self) -> Any:
        """The trial as stored now (state, values, user attributes)."""
        storage = open_storage(self.storage)
        return storage.get_trial(self._trial_id(storage))

    def _trial_id(self, storage: Any) -> int:
        study_id = storage.get_study_id_from_name(self.study_name)
        return storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
