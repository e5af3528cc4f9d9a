"""The study of a search (litlab.hparams_search.study): samplers and pruners by name, the checks
that refuse a search before its first trial, and a job's link to its trial in a real SQLite
study."""

import pytest
from omegaconf import OmegaConf

optuna = pytest.importorskip("optuna", reason='needs pip install -e ".[optuna]"')

from litlab.errors import ConfigError  # noqa: E402
from litlab.hparams_search.study import (  # noqa: E402
    TrialLink,
    build_pruner,
    build_sampler,
    check_search,
    directions,
    pruner_name,
    shown,
    storage_url,
)


def sweeper(**keys):
    base = {"n_trials": 4, "n_jobs": 1, "direction": "maximize", "pruner": "median"}
    return OmegaConf.create({**base, **keys, "storage": keys.get("storage")})


def task(**keys):
    base = {"optimized_metric": "val/acc_best", "trainer": {"limit_val_batches": 1.0}}
    return OmegaConf.create({**base, **keys})


def refusal(sweeper_keys: dict, task_keys: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        check_search(sweeper(**sweeper_keys), task(**(task_keys or {})))
    return " ".join(str(caught.value).split())


def test_a_sound_search_passes():
    check_search(sweeper(), task())
    check_search(
        sweeper(direction=["maximize", "minimize"], pruner="none"),
        task(optimized_metric=["val/acc_best", "model/params"]),
    )


@pytest.mark.parametrize(
    ("sweeper_keys", "task_keys", "message"),
    [
        ({"pruner": "mediann"}, None, "hydra.sweeper.pruner='mediann' is not an Optuna pruner"),
        ({"pruner": {"_target_": "optuna.pruners.NoSuch"}}, None, "cannot be imported"),
        (
            {"pruner": {"_target_": "optuna.pruners.MedianPruner", "n_startup": 2}},
            None,
            "refused its arguments",
        ),
        (
            {"direction": ["maximize", "minimize"], "pruner": "none"},
            None,
            "gives 2 direction(s) (maximize, minimize) but optimized_metric names 1 metric(s)",
        ),
        ({"direction": "up"}, None, "hydra.sweeper.direction='up' is not a direction"),
        (
            {"direction": ["maximize", "minimize"]},
            {"optimized_metric": ["val/acc_best", "model/params"]},
            "cannot prune a search with 2 objectives",
        ),
        ({}, {"optimized_metric": "test/acc"}, "optimized_metric=test/acc is not a validation"),
        ({}, {"trainer": {"limit_val_batches": 0}}, "validation is off"),
        ({"n_trials": 0}, None, "hydra.sweeper.n_trials=0 is invalid"),
        ({"storage": "notaurl"}, None, "hydra.sweeper.storage='notaurl' is not a database URL"),
        (
            {"storage": "sqlite:///no_such_folder/study.db"},
            None,
            "cannot be opened: its folder no_such_folder does not exist",
        ),
    ],
)
def test_a_search_that_cannot_run_is_refused_in_one_paragraph(sweeper_keys, task_keys, message):
    assert message in refusal(sweeper_keys, task_keys)


def test_samplers_and_pruners_by_name_or_target():
    assert isinstance(build_sampler("random"), optuna.samplers.RandomSampler)
    tpe = build_sampler({"_target_": "optuna.samplers.TPESampler", "seed": 3})
    assert isinstance(tpe, optuna.samplers.TPESampler)
    assert isinstance(build_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(build_pruner(None), optuna.pruners.NopPruner)
    assert isinstance(build_pruner("successive_halving"), optuna.pruners.SuccessiveHalvingPruner)
    assert pruner_name({"_target_": "optuna.pruners.HyperbandPruner"}) == "hyperband"
    with pytest.raises(ConfigError, match="the samplers: tpe, random"):
        build_sampler("bayes")
    assert directions(OmegaConf.create({"direction": ["MAXIMIZE", "minimize"]})) == [
        "maximize",
        "minimize",
    ]


def test_the_grid_sampler_takes_choices_and_ranges_and_refuses_an_interval():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = {
        "optimizer": CategoricalDistribution(["adam", "sgd"]),
        "trainer.max_epochs": IntDistribution(2, 6, step=2),
    }
    grid = build_sampler({"_target_": "optuna.samplers.GridSampler", "seed": 1}, space)
    study = optuna.create_study(sampler=grid)
    asked = {
        (t.params["optimizer"], t.params["trainer.max_epochs"]) for t in asked_all(study, space, 6)
    }
    assert asked == {(o, e) for o in ("adam", "sgd") for e in (2, 4, 6)}
    assert grid.is_exhausted(study)  # and telling the last trial did not stop the study
    with pytest.raises(ConfigError, match="needs a finite set of values for every parameter"):
        build_sampler("grid", {"optimizer.lr": FloatDistribution(0.001, 0.1)})


def asked_all(study, space, count):
    trials = [study.ask(space) for _ in range(count)]
    for trial in trials:
        study.tell(trial, 0.5)
    return trials


def test_the_direction_of_the_monitored_best_is_checked():
    monitor = {"metric": "val/acc", "mode": "max"}
    message = refusal({"direction": "minimize", "pruner": "none"}, {"monitor": monitor})
    assert "hydra.sweeper.direction=minimize would search for the worst val/acc_best" in message
    assert "Set hydra.sweeper.direction=maximize" in message


def test_ddp_that_would_rerun_the_command_is_refused_in_a_search():
    """Lightning's DDP launcher reruns the command line: each process would search."""
    trainer = {"strategy": "ddp", "devices": 2, "limit_val_batches": 1.0}
    assert "cannot run inside a search on this machine" in refusal({}, {"trainer": trainer})
    slurm = {"launcher": {"_target_": "hydra_plugins.hydra_submitit_launcher.SlurmLauncher"}}
    check_search(sweeper(), task(trainer=trainer, hydra=slurm))  # SLURM's tasks: one trial
    check_search(sweeper(), task(trainer={**trainer, "strategy": "ddp_spawn"}))


def test_a_storage_password_is_not_shown():
    assert (
        shown("postgresql://me:secret@db.example/study") == "postgresql://me:***@db.example/study"
    )


def test_a_job_reaches_its_trial_through_the_storage(tmp_path):
    url = storage_url(None, tmp_path)
    assert url == f"sqlite:///{tmp_path.resolve()}/optuna.db"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    asked = [study.ask() for _ in range(2)]
    link = TrialLink(url, "s", asked[1].number, "none")
    link.trial().report(0.5, step=1)
    assert link.frozen().intermediate_values == {1: 0.5}
    assert link.frozen().state == optuna.trial.TrialState.RUNNING
    study.tell(asked[1], 0.7)
    assert link.frozen().value == 0.7
