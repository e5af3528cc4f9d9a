"""A search's job and its trial: which trial of which study the job is (the sweeper puts it in
the job's Hydra config), what the job returns to the sweeper, and a trial that already finished
returned as recorded instead of trained again (a job run a second time, e.g. requeued on a
cluster)."""

import logging
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from litlab.hparams_search.study import PRUNED_EPOCH, TrialLink, objectives
from litlab.sweep import PrunedJob

log = logging.getLogger(__name__)
REPORTING_CALLBACK = "trial_pruning"  # its key under callbacks in the job's config


def this_jobs_trial() -> TrialLink | None:
    """The trial this Hydra job runs, or None outside litlab's Optuna search."""
    if not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().sweeper
    if sweeper.get("trial") is None:
        return None
    pruner = sweeper.get("pruner")
    return TrialLink(
        storage=str(sweeper.storage),
        study_name=str(sweeper.study_name),
        number=int(sweeper.trial),
        pruner=OmegaConf.to_container(pruner) if OmegaConf.is_config(pruner) else pruner,
    )


def recorded_outcome(link: TrialLink) -> Any | None:
    """What the job returned when its trial already finished; None for a trial to train."""
    from optuna.trial import TrialState

    trial = link.frozen()
    if trial.state == TrialState.COMPLETE:
        outcome = trial.values if len(trial.values) > 1 else trial.value
    elif trial.state == TrialState.PRUNED:
        epoch = trial.user_attrs.get(PRUNED_EPOCH, trial.last_step or 0)
        outcome = PrunedJob(epoch, trial.value if trial.value is not None else float("nan"))
    else:
        return None
    log.info(
        "Trial %d of study %s already finished (%s): it is not trained again.",
        link.number,
        link.study_name,
        trial.state.name.lower(),
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
    objectives), or a PrunedJob when its trial's pruner stopped it."""
    values = [metrics.get(name) for name in objectives(cfg)]
    if link is not None:
        epoch = link.frozen().user_attrs.get(PRUNED_EPOCH)
        if epoch is not None:
            return PrunedJob(
                int(epoch), float(values[0]) if values[0] is not None else float("nan")
            )
    return values[0] if len(values) == 1 else values
