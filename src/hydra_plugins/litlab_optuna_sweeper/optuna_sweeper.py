"""Hydra plugin: ``hydra/sweeper=optuna`` is litlab's Optuna search on Optuna 4 or newer, with
pruning (``litlab.hparams_search``). Hydra imports this module for every command, so it holds
the config schema and a thin class; Optuna is imported only when a search runs."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig

from litlab.hparams_search.study import SAMPLERS


@dataclass
class LitlabOptunaSweeperConf:
    """The keys of Hydra's Optuna sweeper, plus ``pruner``; ``trial`` is set by the sweeper in
    each job's config (which trial of the study the job is)."""

    _target_: str = "hydra_plugins.litlab_optuna_sweeper.optuna_sweeper.LitlabOptunaSweeper"
    _recursive_: bool = False  # litlab builds the sampler and pruner, and refuses bad ones
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    # a name (litlab.hparams_search.study.SAMPLERS) or a mapping: _target_ and arguments
    sampler: Any = MISSING
    # maximize or minimize; a list of them for several objectives (optimized_metric: a list)
    direction: Any = "minimize"
    # null: optuna.db in the sweep folder; any SQLAlchemy URL continues or shares a study
    storage: str | None = None
    study_name: str | None = None
    n_trials: int = 20
    n_jobs: int = 1  # trials asked and launched at once (parallel with joblib or submitit)
    max_failure_rate: float = 1.0  # the search stops when more of its trials failed
    custom_search_space: str | None = None  # a function(cfg, trial) that adds parameters
    params: dict[str, Any] | None = None  # key: search space in Hydra's sweep syntax
    # a name (study.PRUNERS: none, median, ...) or a mapping: _target_ and arguments
    pruner: Any = "none"
    trial: int | None = None


class LitlabOptunaSweeper(Sweeper):
    def __init__(self, **keys: Any) -> None:
        from litlab.hparams_search.optuna_sweeper import OptunaSearch

        self.search = OptunaSearch(**keys)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.search.sweep(arguments)


store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="optuna", node=LitlabOptunaSweeperConf, provider="litlab")
for name, target in SAMPLERS.items():
    store.store(
        group="hydra/sweeper/sampler",
        name=name,
        node={"_target_": target, "seed": None},
        provider="litlab",
    )
