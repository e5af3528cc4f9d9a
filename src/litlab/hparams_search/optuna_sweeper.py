"""litlab's Optuna search, the body of the Hydra sweeper plugin ``hydra/sweeper=optuna``
(``hydra_plugins.litlab_optuna_sweeper``): Optuna's ask-and-tell over any Hydra launcher.

Each batch of ``n_jobs`` trials is asked from the study, launched as Hydra jobs (one run folder
each), and told with what each job returned: its value(s) (a complete trial), a
``PrunedJob`` (the job's pruner stopped it; Optuna records its last reported value) or a
``FailedJob`` (a failed trial). What a job returns is what the study records, so a job that
returns a cross-validated score is searched on that score. Each job reaches its own trial
through the study's storage (``hydra.sweeper.trial`` and the storage URL are passed to it), so
reporting and pruning work in other processes and on other machines too.

Hydra's released Optuna sweeper (1.3) requires optuna < 3 and cannot prune; this one reads the
same keys (sampler, direction, storage, study_name, n_trials, n_jobs, max_failure_rate,
custom_search_space, params) and adds ``pruner``."""

import logging
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from litlab.config.compose import quoted
from litlab.errors import ConfigError
from litlab.hparams_search.search_space import example_values, parse_search, trial_overrides
from litlab.hparams_search.study import (
    build_pruner,
    build_sampler,
    check_search,
    directions,
    objectives,
    open_storage,
    shown,
    storage_url,
)
from litlab.run_folder import write_atomically
from litlab.sweep import FailedJob, PrunedJob, finite_number

log = logging.getLogger(__name__)
RESULTS = "optimization_results.yaml"  # the name Hydra's Optuna sweeper gave it


class OptunaSearch(Sweeper):
    """Hydra's Sweeper interface over an Optuna study; the arguments are the sweeper's config
    keys (``hydra.sweeper.*``)."""

    def __init__(self, **keys: Any) -> None:  # read later from config.hydra.sweeper, resolved
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        assert self.config is not None
        sweeper = self.config.hydra.sweeper
        check_search(sweeper, self.config)
        params = OmegaConf.to_container(sweeper.params, resolve=False) if sweeper.params else {}
        space, fixed = parse_search(params, arguments)
        # before anything is written: a key that is not in the config, a value it refuses
        self.validate_batch_is_legal([trial_overrides(example_values(space), fixed)])
        study = self._open_study(sweeper, space)
        link = self._job_link(sweeper, study)
        returns: list[JobReturn] = []
        remaining = sweeper.n_trials
        while remaining > 0 and not _grid_covered(study):
            trials: list[Any] = []
            try:
                for _ in range(min(sweeper.n_jobs, remaining)):
                    trials.append(self._ask(study, space))
                returns += self._run_batch(study, trials, fixed, link)
            except BaseException:  # Ctrl+C, stop_on_failure, a launcher's error
                _fail_untold(study, trials)
                raise
            remaining -= len(trials)
            _stop_if_too_many_failed(returns, sweeper.max_failure_rate)
        self._write_results(study)
        return returns

    def _run_batch(
        self, study: Any, trials: list[Any], fixed: dict[str, str], link: list[str]
    ) -> list[JobReturn]:
        batch = [
            [*trial_overrides(trial.params, fixed), f"hydra.sweeper.trial={trial.number}", *link]
            for trial in trials
        ]
        launched = self.launcher.launch(batch, initial_job_idx=self.job_idx)
        self.job_idx += len(launched)
        for trial, job in zip(trials, launched, strict=True):
            log.info(tell(study, trial, job, objectives(self.config)))
        return list(launched)

    def _open_study(self, sweeper: DictConfig, space: dict[str, Any]) -> Any:
        import optuna

        sampler, pruner = build_sampler(sweeper.sampler, space), build_pruner(sweeper.pruner)
        if self._shares_a_study():
            sampler.reseed_rng()
        if not sweeper.storage:
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        url = storage_url(sweeper.storage, self.config.hydra.sweep.dir)
        wanted = directions(sweeper)
        study = optuna.create_study(
            study_name=sweeper.study_name,
            storage=open_storage(url),
            sampler=sampler,
            pruner=pruner,
            directions=wanted,
            load_if_exists=True,  # Optuna then keeps the directions the study was made with
        )
        had = [direction.name.lower() for direction in study.directions]
        if had != wanted:
            raise ConfigError(
                f"The study {study.study_name!r} in {shown(url)} was made to {', '.join(had)}, but "
                f"hydra.sweeper.direction asks to {', '.join(wanted)}. Continue it with "
                f"hydra.sweeper.direction={had[0] if len(had) == 1 else '[' + ','.join(had) + ']'}"
                ", or give this search another hydra.sweeper.study_name."
            )
        return study

    def _shares_a_study(self) -> bool:
        """A storage given on the command line is a study another command may continue or
        share: a sampler seeded alike would propose, in every command, the trials the study
        already ran. A seed given on the command line keeps it."""
        given = [str(item) for item in self.config.hydra.overrides.hydra]
        storage = any(item.startswith("hydra.sweeper.storage=") for item in given)
        seeded = any(item.startswith("hydra.sweeper.sampler.seed=") for item in given)
        return storage and not seeded

    def _job_link(self, sweeper: DictConfig, study: Any) -> list[str]:
        """Overrides that tell each job where its trial is, where the config leaves it open."""
        link = []
        if not sweeper.storage:
            url = storage_url(None, self.config.hydra.sweep.dir)
            link.append(f"hydra.sweeper.storage={quoted(url)}")
        if not sweeper.study_name:
            link.append(f"hydra.sweeper.study_name={quoted(study.study_name)}")
        return link

    def _ask(self, study: Any, space: dict[str, Any]) -> Any:
        try:
            trial = study.ask(space)
        except ValueError as err:  # the study searched a parameter in another space before
            raise ConfigError(
                f"The study {study.study_name!r} cannot ask a trial in this search space: {err} "
                "Continue a study with the search space it began with, or name a new one "
                "(hydra.sweeper.study_name=...)."
            ) from None
        extend = self.config.hydra.sweeper.get("custom_search_space")
        if extend:
            get_method(str(extend))(self.config, trial)
        return trial

    def _write_results(self, study: Any) -> None:
        """optimization_results.yaml, as Hydra's sweeper wrote it: the best trial (or the
        Pareto front's trials), over the whole study."""
        from optuna.trial import TrialState

        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not done:
            if not study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)):
                raise ConfigError(
                    "Every trial of the search failed, so there is no best one. The cause is in "
                    "each job's status.json and in the sweep's sweep_summary.md; run one "
                    "trial's overrides without -m to see its error."
                )
            log.warning(
                "No trial of study %r ran to the end: every one was pruned.", study.study_name
            )
            return
        if len(study.directions) == 1:
            best = study.best_trial
            results = {
                "name": "optuna",
                "best_params": best.params,
                "best_value": best.value,
                "best_trial": best.number,
            }
            log.info(
                "Best trial %d: %s=%.6g with %s",
                best.number,
                objectives(self.config)[0],
                best.value,
                _params_text(best.params),
            )
        else:
            front = study.best_trials
            results = {
                "name": "optuna",
                "solutions": [
                    {"trial": t.number, "params": t.params, "values": t.values} for t in front
                ],
            }
            log.info(
                "Pareto front of %d trial(s): %s",
                len(front),
                ", ".join(str(t.number) for t in front),
            )
        sweep = Path(str(self.config.hydra.sweep.dir))
        write_atomically(sweep / RESULTS, OmegaConf.to_yaml(OmegaConf.create(results)))


def _failed(job: JobReturn) -> bool:
    return job.status != JobStatus.COMPLETED or isinstance(job._return_value, FailedJob)


def tell(study: Any, trial: Any, job: JobReturn, metrics: list[str]) -> str:
    """Record one job's outcome in the study; returns the line that says so."""
    from optuna.trial import TrialState

    outcome = job._return_value
    head = f"Trial {trial.number}"
    if _failed(job):
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        return f"{head}: failed"
    if isinstance(outcome, PrunedJob):
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        return f"{head}: pruned after epoch {outcome.epoch} ({metrics[0]} {outcome.value:.4g})"
    values = list(outcome) if isinstance(outcome, (list, tuple)) else [outcome]
    numbers = [finite_number(value) for value in values]
    if len(numbers) != len(study.directions) or None in numbers:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        return f"{head}: failed (it returned {values!r}, not {len(study.directions)} number(s))"
    study.tell(trial, numbers, skip_if_finished=True)
    shown = ", ".join(f"{name} {number:.4g}" for name, number in zip(metrics, numbers, strict=True))
    return f"{head}: {shown}"


def _fail_untold(study: Any, trials: list[Any]) -> None:
    """Trials asked but never told (the batch stopped) are failed, not left running forever in
    a study that another command continues."""
    from optuna.trial import TrialState

    for trial in trials:  # those told already are skipped
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)


def _grid_covered(study: Any) -> bool:
    sampler = study.sampler
    return hasattr(sampler, "is_exhausted") and sampler.is_exhausted(study)


def _stop_if_too_many_failed(returns: list[JobReturn], max_failure_rate: float) -> None:
    failed = sum(_failed(job) for job in returns)
    if returns and failed / len(returns) > max_failure_rate:
        raise ConfigError(
            f"{failed} of this search's {len(returns)} trials failed, more than "
            f"hydra.sweeper.max_failure_rate={max_failure_rate} allows; the search stops. "
            "The causes are in each job's status.json and in sweep_summary.md."
        )


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in params.items()
    )
