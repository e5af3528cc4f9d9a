"""A search's job and its trial: which trial of which study the job is (the sweeper puts it in
the job's Hydra config), what the job returns to the sweeper, and a trial that already finished
returned as recorded instead of trained again (a job run a second time, e.g. requeued on a
cluster)."""

import logging
import math
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from litlab.errors import ConfigError
from litlab.hparams_search.study import PRUNED_EPOCH, TrialLink, objectives
from litlab.sweep import FailedJob, PrunedJob

log = logging.getLogger(__name__)
REPORTING_CALLBACK = "trial_pruning"  # its key under callbacks in the job's config


def this_jobs_trial(cfg: DictConfig) -> TrialLink | None:
    """The trial this Hydra job runs, or None outside litlab's Optuna search."""
    if not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().sweeper
    if sweeper.get("trial") is None:
        return None
    return TrialLink(
        storage=str(sweeper.storage),
        study_name=str(sweeper.study_name),
        number=int(sweeper.trial),
        pruner=_resolved(sweeper.get("pruner"), cfg),
    )


def _resolved(pruner: Any, cfg: DictConfig) -> Any:
    """A pruner mapping with its interpolations (``${trainer.max_epochs}``) resolved against the
    job's config, as the sweeper resolved them against its own."""
    if not OmegaConf.is_config(pruner):
        return pruner
    root = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    root.searched_pruner = OmegaConf.to_container(pruner, resolve=False)
    return OmegaConf.to_container(root.searched_pruner, resolve=True)


def recorded_outcome(link: TrialLink) -> Any | None:
    """What the job returned when its trial already finished; None for a trial to train."""
    from optuna.trial import TrialState

    trial = link.frozen()
    if trial.state == TrialState.COMPLETE:
        outcome = trial.values if len(trial.values) > 1 else trial.value
    elif trial.state == TrialState.PRUNED or PRUNED_EPOCH in trial.user_attrs:
        epoch = trial.user_attrs.get(PRUNED_EPOCH, trial.last_step or 0)
        last = trial.intermediate_values.get(trial.last_step, math.nan)  # not yet told
        outcome = PrunedJob(epoch, trial.value if trial.value is not None else last)
    else:
        return None
    log.info(
        "Trial %d of study %s already %s: it is not trained again.",
        link.number,
        link.study_name,
        "pruned" if isinstance(outcome, PrunedJob) else "finished",
    )
    return outcome


def report_to_trial(cfg: DictConfig, link: TrialLink) -> None:
    """Add the callback that reports the optimized metric after every validation and prunes;
    a study of several objectives takes no reports (Optuna prunes single objectives only)."""
    metrics = objectives(cfg)
    if len(metrics) != 1:
        return
    node = {
        "_target_": "litlab.callbacks.TrialPruning",
        "_recursive_": False,  # the pruner's mapping (its _target_) is built by the callback
        "storage": link.storage,
        "study_name": link.study_name,
        "trial": link.number,
        "metric": metrics[0],
        "pruner": link.pruner,
    }
    with open_dict(cfg):
        if cfg.get("callbacks") is None:
            cfg.callbacks = {}
        cfg.callbacks[REPORTING_CALLBACK] = node


def job_outcome(cfg: DictConfig, metrics: dict[str, float], link: TrialLink | None) -> Any:
    """What a job returns to Hydra's sweeper: the optimized metric (a list of them for several
    objectives); in a search, a PrunedJob when its trial's pruner stopped it, or a FailedJob
    when a metric to record is missing or not a number."""
    names = objectives(cfg)
    values = [metrics.get(name) for name in names]
    if link is None:
        return None if not values else values[0] if len(values) == 1 else values
    epoch = link.frozen().user_attrs.get(PRUNED_EPOCH)
    if epoch is not None:
        return PrunedJob(int(epoch), math.nan if values[0] is None else float(values[0]))
    unusable = [name for name, value in zip(names, values, strict=True) if not _finite(value)]
    if unusable:
        return FailedJob(
            ConfigError(
                f"optimized_metric {', '.join(unusable)} is not a number in this run's "
                f"metrics.json ({', '.join(str(metrics.get(name)) for name in unusable)}), so "
                "the study cannot record the trial. Optimize a metric the run writes there, "
                "e.g. optimized_metric=val/acc_best."
            )
        )
    return values[0] if len(values) == 1 else values


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
