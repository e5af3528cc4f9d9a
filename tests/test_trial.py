"""A search's job and its trial (litlab.hparams_search.trial): what the job returns, the
reporting callback it adds, and a finished trial returned as recorded instead of trained again."""

import pytest
from omegaconf import OmegaConf

optuna = pytest.importorskip("optuna", reason='needs pip install -e ".[optuna]"')

from litlab.hparams_search.study import PRUNED_EPOCH, TrialLink  # noqa: E402
from litlab.hparams_search.trial import (  # noqa: E402
    REPORTING_CALLBACK,
    _resolved,
    job_outcome,
    recorded_outcome,
    report_to_trial,
)
from litlab.sweep import PrunedJob, job_status  # noqa: E402


@pytest.fixture
def study(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    return optuna.create_study(study_name="s", storage=url, direction="maximize"), url


def test_a_finished_trial_is_returned_as_recorded_not_trained_again(study):
    study, url = study
    complete, pruned, running = (study.ask() for _ in range(3))
    study.tell(complete, 0.9)
    pruned.report(0.4, step=1)
    pruned.set_user_attr(PRUNED_EPOCH, 1)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    assert recorded_outcome(TrialLink(url, "s", complete.number)) == 0.9
    outcome = recorded_outcome(TrialLink(url, "s", pruned.number))
    assert isinstance(outcome, PrunedJob) and (outcome.epoch, outcome.value) == (1, 0.4)
    assert recorded_outcome(TrialLink(url, "s", running.number)) is None  # to be trained


def test_a_job_returns_its_metric_or_that_it_was_pruned(study):
    study, url = study
    trial = study.ask()
    cfg = OmegaConf.create({"optimized_metric": "val/acc_best"})
    link = TrialLink(url, "s", trial.number)
    assert job_outcome(cfg, {"val/acc_best": 0.8}, link) == 0.8
    trial.set_user_attr(PRUNED_EPOCH, 2)
    pruned = job_outcome(cfg, {"val/acc_best": 0.5}, link)
    assert isinstance(pruned, PrunedJob) and pruned.epoch == 2
    assert job_status_of(pruned) == {"status": "pruned", "epoch": 2, "return_value": 0.5}
    several = OmegaConf.create({"optimized_metric": ["val/acc_best", "model/params"]})
    assert job_outcome(several, {"val/acc_best": 0.8, "model/params": 10.0}, None) == [0.8, 10.0]


def job_status_of(outcome):
    from hydra.core.utils import JobReturn, JobStatus

    return job_status(JobReturn(status=JobStatus.COMPLETED, _return_value=outcome))


def test_reporting_is_added_for_one_objective_only():
    link = TrialLink("sqlite:///x.db", "s", 3, "median")
    cfg = OmegaConf.create({"optimized_metric": "val/acc_best", "callbacks": None})
    OmegaConf.set_struct(cfg, True)
    report_to_trial(cfg, link)
    node = cfg.callbacks[REPORTING_CALLBACK]
    assert node._target_ == "litlab.callbacks.TrialPruning"
    assert (node.trial, node.metric, node.pruner) == (3, "val/acc_best", "median")
    several = OmegaConf.create({"optimized_metric": ["val/acc_best", "model/params"]})
    report_to_trial(several, link)
    assert "callbacks" not in several


def test_a_job_pruned_before_its_trial_was_told_is_not_trained_again(study):
    """A job requeued after its pruner stopped it, before the sweeper recorded the trial."""
    study, url = study
    trial = study.ask()
    trial.report(0.3, step=2)
    trial.set_user_attr(PRUNED_EPOCH, 2)
    outcome = recorded_outcome(TrialLink(url, "s", trial.number))
    assert isinstance(outcome, PrunedJob) and (outcome.epoch, outcome.value) == (2, 0.3)


def test_a_metric_the_study_cannot_record_fails_the_trial_with_its_reason(study):
    study, url = study
    link = TrialLink(url, "s", study.ask().number)
    cfg = OmegaConf.create({"optimized_metric": "val/acc_bset"})
    outcome = job_outcome(cfg, {"val/acc_best": 0.8}, link)
    assert job_status_of(outcome) == {
        "status": "failed",
        "error": "ConfigError: optimized_metric val/acc_bset is not a number in this run's "
        "metrics.json (None), so the study cannot record the trial. Optimize a metric the run "
        "writes there, e.g. optimized_metric=val/acc_best.",
    }
    # outside a search nothing is refused: a plain sweep records what there is
    assert job_outcome(cfg, {}, None) is None
    assert job_outcome(OmegaConf.create({"optimized_metric": None}), {}, None) is None


def test_a_pruner_mapping_is_resolved_against_the_jobs_config():
    cfg = OmegaConf.create({"trainer": {"max_epochs": 8}})
    pruner = OmegaConf.create(
        {"_target_": "optuna.pruners.MedianPruner", "n_warmup_steps": "${trainer.max_epochs}"}
    )
    assert _resolved(pruner, cfg) == {
        "_target_": "optuna.pruners.MedianPruner",
        "n_warmup_steps": 8,
    }
    assert _resolved("median", cfg) == "median"
