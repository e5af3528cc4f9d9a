"""litlab's Optuna sweeper (hydra_plugins.litlab_optuna_sweeper over
litlab.hparams_search.optuna_sweeper) in real Hydra multiruns on real SQLite studies: trials
reported every epoch, a hopeless trial pruned after its first epoch, a study continued and
shared by two commands at once, two objectives and their Pareto front, the launchers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

optuna = pytest.importorskip("optuna", reason='needs pip install -e ".[optuna]"')

from tests.helpers import (  # noqa: E402
    PROJECT_ROOT,
    QUIET,
    SWEEP_ON_SYNTHETIC_DATA,
    assert_complete_jobs,
    error_paragraph,
    multirun,
    run_sweep,
)

SEARCH = ["hparams_search=mnist_optuna", *SWEEP_ON_SYNTHETIC_DATA]
STATES = optuna.trial.TrialState


def study_of(storage: Path, name: str) -> "optuna.Study":
    return optuna.load_study(study_name=name, storage=f"sqlite:///{storage}")


@pytest.mark.slow
def test_a_search_reports_every_epoch_and_saves_the_best_trial(tmp_path):
    sweep = multirun(tmp_path, *SEARCH, "hydra.sweeper.n_trials=3")
    results = assert_complete_jobs(sweep, 3)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {
        "optimizer",
        "optimizer.lr",
        "data.batch_size",
        "search.width_1",
        "search.width_2",
        "model.dropout",
    }
    values = [metrics["val/acc_best"] for metrics, _ in results.values()]
    assert best["best_value"] == pytest.approx(max(values))
    # the study is kept in the sweep folder; each job reported val/acc_best after every epoch
    study = study_of(sweep / "optuna.db", "mnist_optuna")
    for trial in study.trials:
        job = sweep / str(trial.number)
        history = (job / "history.csv").read_text().splitlines()[1:]
        assert sorted(trial.intermediate_values) == [1, 2] == list(range(1, len(history) + 1))
        assert trial.value == results[str(trial.number)][0]["val/acc_best"]
        hydra = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra["sweeper"]["trial"] == trial.number
        # the searched widths reach the model
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        widths = [int(o.split("=")[1]) for o in overrides if o.startswith("search.width_")]
        config = yaml.safe_load((job / "config.yaml").read_text())
        assert config["model"]["hidden_sizes"] == widths


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "optimized_metric=test/acc",  # mnist_optuna prunes
            "hydra.sweeper.pruner=median needs a validation metric to judge each trial after "
            "every epoch, but optimized_metric=test/acc is not a validation metric",
        ),
        ("optimizer.lrr=interval(0.1,0.2)", "optimizer.lrr is not a key of this config"),
        (
            "hydra.sweeper.pruner={_target_:optuna.pruners.MedianPruner,n_startup:2}",
            "The pruner optuna.pruners.MedianPruner refused its arguments {'n_startup': 2}",
        ),
    ],
)
def test_a_search_that_cannot_run_is_refused_before_its_first_trial(tmp_path, override, message):
    result = run_sweep(tmp_path, "hparams_search=mnist_optuna", override)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in error_paragraph(result)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "outputs").exists()


def search_config(tmp_path: Path, body: str) -> Path:
    """A search option of the test's own, on top of mnist_optuna (its params keys hold dots,
    which the command line cannot give)."""
    extra = tmp_path / "conf" / "hparams_search"
    extra.mkdir(parents=True)
    (extra / "own.yaml").write_text(
        "# @package _global_\ndefaults:\n  - mnist_optuna\n  - _self_\n" + body
    )
    return tmp_path / "conf"


def failing_search(tmp_path: Path, lr_choices: str) -> list[str]:
    conf = search_config(
        tmp_path, f"hydra:\n  sweeper:\n    params:\n      optimizer.lr: choice({lr_choices})\n"
    )
    return ["hparams_search=own", f"hydra.searchpath=[file://{conf}]"]


def test_a_search_whose_every_trial_fails_says_so_in_one_paragraph(tmp_path):
    """Optuna's "No trials are completed yet" escaped as a traceback."""
    result = run_sweep(tmp_path, *failing_search(tmp_path, "-1, -2"), "hydra.sweeper.n_trials=2")
    paragraph = error_paragraph(result)
    assert result.returncode == 2, paragraph[-2000:]
    assert "Every trial of the search failed, so there is no best one" in paragraph
    assert "Traceback" not in result.stderr
    statuses = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/status.json")]
    assert [status["status"] for status in statuses] == ["failed", "failed"]


@pytest.mark.slow
def test_a_failed_optuna_trial_does_not_end_the_search(tmp_path):
    result = run_sweep(
        tmp_path,
        *failing_search(tmp_path, "-1, 0.001"),  # one invalid choice
        *SWEEP_ON_SYNTHETIC_DATA,
        "hydra.sweeper.n_trials=4",
    )
    statuses = [
        json.loads(path.read_text())["status"]
        for path in (tmp_path / "sweep").glob("*/status.json")
    ]
    assert sorted(statuses) == ["failed", "failed", "ok", "ok"], result.stdout[-3000:]
    assert result.returncode == 1  # some trials failed, and the exit status says so
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best["best_params"]["optimizer.lr"] == 0.001
    study = study_of(tmp_path / "sweep" / "optuna.db", "mnist_optuna")
    assert sorted(trial.state.name for trial in study.trials) == ["COMPLETE"] * 2 + ["FAIL"] * 2


def search_command(cwd: Path, folder: str, storage: Path, *overrides: str) -> subprocess.Popen:
    """A search into ``cwd/folder``, its study "shared" kept in ``storage``."""
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        "-m",
        *QUIET,
        *SEARCH,
        "trainer.max_epochs=3",
        f"hydra.sweeper.storage=sqlite:///{storage}",
        "hydra.sweeper.study_name=shared",
        f"hydra.sweep.dir={cwd / folder}",
        *overrides,
    ]
    env = {**os.environ, "LITLAB_ROOT": str(cwd), "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finished(run: subprocess.Popen) -> str:
    output = run.communicate(timeout=600)[0]
    assert run.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
def test_a_study_continues_is_shared_and_prunes_a_hopeless_trial_after_one_epoch(tmp_path):
    storage = tmp_path / "study.db"
    # two sound trials (Adam at 3e-3) first
    finished(
        search_command(
            tmp_path,
            "first",
            storage,
            "hydra.sweeper.n_trials=2",
            "optimizer=adam",
            "optimizer.lr=0.003",
        )
    )
    # then two commands at once continue the study: one trial at a learning rate of 10 under
    # the median pruner (judging from 2 finished trials on), and two ordinary trials
    median = "{_target_:optuna.pruners.MedianPruner,n_startup_trials:2}"
    hopeless = search_command(
        tmp_path,
        "hopeless",
        storage,
        "hydra.sweeper.n_trials=1",
        "optimizer=adam",
        "optimizer.lr=10",
        f"hydra.sweeper.pruner={median}",
    )
    ordinary = search_command(tmp_path, "ordinary", storage, "hydra.sweeper.n_trials=2")
    output = finished(hopeless)
    finished(ordinary)

    study = study_of(storage, "shared")
    assert sorted(trial.number for trial in study.trials) == list(range(5))  # one study
    states = sorted(trial.state.name for trial in study.trials)
    assert states == ["COMPLETE"] * 4 + ["PRUNED"]
    # each command drew its own trials: with a storage on the command line the sampler is
    # reseeded, or every command would propose the same first trials
    assert len({trial.params["model.dropout"] for trial in study.trials}) == 5
    pruned = next(trial for trial in study.trials if trial.state == STATES.PRUNED)
    assert list(pruned.intermediate_values) == [1]
    assert pruned.value == pytest.approx(pruned.intermediate_values[1])
    # its run ended cleanly after epoch 1 of 3, and its folder says so
    job = tmp_path / "hopeless" / "0"
    assert json.loads((job / "status.json").read_text()) == {
        "status": "pruned",
        "epoch": 1,
        "return_value": pytest.approx(pruned.value),
    }
    assert len((job / "history.csv").read_text().splitlines()) == 2  # header + one epoch
    assert "Pruned after epoch 1: the median pruner judged trial" in (job / "report.md").read_text()
    checkpoint = torch.load(job / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["epoch"] == 0 and checkpoint["state_dict"]
    assert json.loads((job / "metrics.json").read_text())["test/acc"] > 0  # tested, as usual
    summary = (tmp_path / "hopeless" / "sweep_summary.md").read_text()
    assert "1 jobs: 0 ok, 1 pruned, 0 failed" in summary and "| pruned |" in summary
    assert f"Trial {pruned.number}: pruned after epoch 1" in output


@pytest.mark.slow
def test_two_objectives_in_parallel_jobs_give_a_pareto_front(tmp_path):
    """Through the joblib launcher: two trials at once, each in its own process."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason='needs ".[joblib]"')
    sweep = multirun(
        tmp_path,
        *SEARCH,
        "trainer.max_epochs=1",
        "optimized_metric=[val/acc_best,model/params]",
        "hydra.sweeper.direction=[maximize,minimize]",
        "hydra.sweeper.pruner=none",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    jobs = {path.parent.name: json.loads(path.read_text()) for path in sweep.glob("*/metrics.json")}
    assert (
        len(jobs) == 4
        and len({json.loads((sweep / j / "run.json").read_text())["pid"] for j in jobs}) >= 2
    )
    points = {job: (m["val/acc_best"], m["model/params"]) for job, m in jobs.items()}

    def beaten(job: str) -> bool:
        a, p = points[job]
        return any(b >= a and q <= p and (b, q) != (a, p) for b, q in points.values())

    front = {job for job in points if not beaten(job)}
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert {str(solution["trial"]) for solution in results["solutions"]} == front
    rows = (sweep / "sweep_summary.csv").read_text().splitlines()
    assert rows[0].startswith("rank,job,status,pareto,")
    assert {row.split(",")[1] for row in rows[1:] if row.split(",")[3] == "yes"} == front
    assert "## Pareto front" in (sweep / "sweep_summary.md").read_text()
    assert (sweep / "sweep_pareto.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_search_through_submitit_reports_from_its_processes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='needs ".[slurm]"')
    sweep = multirun(
        tmp_path,
        *SEARCH,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
    )
    assert_complete_jobs(sweep, 2)
    study = study_of(sweep / "optuna.db", "mnist_optuna")
    assert [sorted(trial.intermediate_values) for trial in study.trials] == [[1, 2], [1, 2]]


@pytest.mark.slow
def test_a_grid_search_stops_when_its_grid_is_covered(tmp_path):
    """Optuna's grid sampler stops the study itself, which ask-and-tell does not allow."""
    fixed = [
        "optimizer=adam",
        "optimizer.lr=0.003",
        "data.batch_size=128",
        "search.width_1=64",
        "model.dropout=0.1",
    ]
    sweep = multirun(
        tmp_path,
        *SEARCH,
        "trainer.max_epochs=1",
        *fixed,
        "search.width_2=choice(16, 32)",
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.n_trials=5",
    )
    results = assert_complete_jobs(sweep, 2)  # the grid's two points, then the search ends
    widths = {
        yaml.safe_load((sweep / job / "config.yaml").read_text())["model"]["hidden_sizes"][1]
        for job in results
    }
    assert widths == {16, 32}


@pytest.mark.slow
def test_a_search_stopped_at_its_first_failure_leaves_no_trial_running(tmp_path):
    storage = tmp_path / "study.db"
    result = run_sweep(
        tmp_path,
        *failing_search(tmp_path, "-1, -2"),
        "stop_on_failure=true",
        f"hydra.sweeper.storage=sqlite:///{storage}",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    states = [trial.state.name for trial in study_of(storage, "mnist_optuna").trials]
    assert states == ["FAIL", "FAIL"]  # the second was asked with the first, never run
