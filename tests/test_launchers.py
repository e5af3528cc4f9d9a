"""Hydra multiruns through real launchers and sweepers: basic, Optuna, joblib, submitit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from litlab import cli
from litlab.errors import ConfigError
from tests.helpers import PROJECT_ROOT, QUIET, compose_quiet, run_entry_point, run_sweep

SYNTHETIC = [
    "data=synthetic_classification",
    "trainer.max_epochs=2",
    "callbacks.evaluation_images=null",
]


def multirun(tmp_path: Path, *overrides: str) -> Path:
    result = run_sweep(tmp_path, *overrides)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sweep = tmp_path / "sweep"
    last = result.stdout.strip().splitlines()[-1]  # a sweep ends naming its summary
    assert last == f"Sweep folder: {sweep} (summary: {sweep / 'sweep_summary.md'})"
    return sweep


def job_results(sweep: Path) -> dict[str, tuple[dict, dict]]:
    """{job: (metrics.json, status.json)} for every job folder of the sweep."""
    jobs = sorted(p.parent.parent for p in sweep.glob("*/.hydra/overrides.yaml"))
    return {
        job.name: (
            json.loads((job / "metrics.json").read_text()),
            json.loads((job / "status.json").read_text()),
        )
        for job in jobs
    }


def assert_complete_jobs(sweep: Path, count: int) -> dict[str, tuple[dict, dict]]:
    results = job_results(sweep)
    assert sorted(results) == [str(i) for i in range(count)]
    for job, (metrics, status) in results.items():
        files = {p.name for p in (sweep / job).iterdir()}
        assert {"checkpoints", "tensorboard", "config.yaml", "run.json", "report.md"} <= files
        assert status["status"] == "ok"
        assert status["return_value"] == metrics["val/acc_best"]  # the optimized metric
    return results


@pytest.mark.slow
def test_four_job_multirun_into_one_sweep_folder(tmp_path):
    sweep = multirun(tmp_path, *SYNTHETIC, "model=perceptron,mlp", "optimizer=adam,sgd")
    assert_complete_jobs(sweep, 4)
    overrides = [
        yaml.safe_load((sweep / str(job) / ".hydra" / "overrides.yaml").read_text())
        for job in range(4)
    ]
    chosen = {(o[-2], o[-1]) for o in overrides}
    assert chosen == {
        (f"model={m}", f"optimizer={o}") for m in ("perceptron", "mlp") for o in ("adam", "sgd")
    }
    assert len((sweep / "sweep_summary.csv").read_text().splitlines()) == 5


def test_regression_sweeps_minimise_the_best_validation_loss(tmp_path):
    cfg = compose_quiet(["data=synthetic_regression", "model=mlp", "loss=mse"], tmp_path)
    assert cfg.optimized_metric == "val/loss_best" and cfg.monitor.mode == "min"


@pytest.mark.slow
def test_optuna_search_saves_the_best_trial(tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper", reason='needs pip install -e ".[optuna]"'
    )
    sweep = multirun(
        tmp_path, "hparams_search=mnist_optuna", *SYNTHETIC, "hydra.sweeper.n_trials=3"
    )
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
    # the searched widths reach the model
    for job, _ in results.items():
        overrides = yaml.safe_load((sweep / job / ".hydra" / "overrides.yaml").read_text())
        widths = [int(o.split("=")[1]) for o in overrides if o.startswith("search.width_")]
        config = yaml.safe_load((sweep / job / "config.yaml").read_text())
        assert config["model"]["hidden_sizes"] == widths


@pytest.mark.slow
def test_joblib_runs_jobs_in_parallel_processes(tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_joblib_launcher", reason='needs pip install -e ".[joblib]"'
    )
    sweep = multirun(
        tmp_path,
        *SYNTHETIC,
        "model=mlp",
        "optimizer.lr=0.001,0.003,0.01,0.03",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    assert_complete_jobs(sweep, 4)
    records = [json.loads((sweep / str(job) / "run.json").read_text()) for job in range(4)]
    assert len({record["host"] for record in records}) == 1
    assert len({record["pid"] for record in records}) >= 2  # worker processes shared the jobs


@pytest.mark.slow
def test_submitit_local_runs_the_jobs_through_submitit(tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher", reason='needs pip install -e ".[slurm]"'
    )
    sweep = multirun(
        tmp_path,
        *SYNTHETIC,
        "model=mlp",
        "optimizer.lr=0.001,0.01",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
    )
    assert_complete_jobs(sweep, 2)
    assert list(sweep.glob(".submitit/*")), "submitit keeps its own job records"


def test_a_missing_plugin_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(
        cli.PLUGINS, "hydra/launcher=joblib", ("hydra_plugins.not_installed", "joblib")
    )
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[joblib\]"'):
        cli._require_plugins(["model=mlp", "hydra/launcher=joblib"])
    cli._require_plugins(["model=mlp", "hparams_search=null"])  # nothing needed, nothing raised
    monkeypatch.setitem(
        cli.PLUGINS, "hydra/launcher=joblib", ("no_such_namespace.plugin", "joblib")
    )
    with pytest.raises(ConfigError, match="joblib"):  # no hydra_plugins namespace at all
        cli._require_plugins(["hydra/launcher=joblib"])


def test_an_unknown_launcher_is_named_with_the_options(tmp_path):
    result = run_entry_point(
        "train.py", "-m", "hydra/launcher=foo", data_dir=tmp_path, cwd=tmp_path, quiet=False
    )
    assert result.returncode == 2
    assert "hydra/launcher=foo is not an option of hydra/launcher" in result.stderr
    assert "basic" in result.stderr  # the launchers there are
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweeper.storage=notaurl", "hydra.sweeper.storage='notaurl' is not a database URL"),
        (
            "hydra.sweeper.storage=sqlite:///no_such_folder/study.db",
            "cannot be opened: its folder no_such_folder does not exist",
        ),
        ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0 is invalid"),
    ],
)
def test_an_optuna_search_that_cannot_run_is_refused_before_its_first_trial(
    tmp_path, override, message
):
    """Optuna and SQLAlchemy refused these inside the sweeper, in ~130-line tracebacks."""
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper", reason='needs pip install -e ".[optuna]"'
    )
    result = run_sweep(tmp_path, "hparams_search=mnist_optuna", override)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "outputs").exists()


def failing_search(tmp_path: Path, lr_choices: str) -> Path:
    """A search config whose lr choices are given (the params keys hold dots, so this needs a
    config file, here in a search path of the test's own)."""
    extra = tmp_path / "conf" / "hparams_search"
    extra.mkdir(parents=True)
    (extra / "failing.yaml").write_text(
        "# @package _global_\ndefaults:\n  - mnist_optuna\n  - _self_\n"
        f"hydra:\n  sweeper:\n    params:\n      optimizer.lr: choice({lr_choices})\n"
    )
    return tmp_path / "conf"


def test_a_search_whose_every_trial_fails_says_so_in_one_paragraph(tmp_path):
    """Optuna's "No trials are completed yet" escaped as a traceback."""
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper", reason='needs pip install -e ".[optuna]"'
    )
    conf = failing_search(tmp_path, "-1, -2")
    result = run_sweep(
        tmp_path,
        "hparams_search=failing",
        f"hydra.searchpath=[file://{conf}]",
        "hydra.sweeper.n_trials=2",
    )
    paragraph = " ".join(result.stderr.split())
    assert result.returncode == 2, paragraph[-2000:]
    assert "Every trial of the search failed, so there is no best one" in paragraph
    assert "Traceback" not in result.stderr and "float-castable" not in result.stdout
    statuses = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/status.json")]
    assert [status["status"] for status in statuses] == ["failed", "failed"]


@pytest.mark.slow
def test_a_failed_optuna_trial_does_not_end_the_search(tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_optuna_sweeper", reason='needs pip install -e ".[optuna]"'
    )
    conf = failing_search(tmp_path, "-1, 0.001")  # one invalid choice
    result = run_sweep(
        tmp_path,
        "hparams_search=failing",
        f"hydra.searchpath=[file://{conf}]",
        *SYNTHETIC,
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


def optuna_sweep(cwd: Path, folder: str, storage: Path, trials: int) -> subprocess.Popen:
    """A search of ``trials`` trials into ``cwd/folder``, its study kept in ``storage``."""
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        "-m",
        *QUIET,
        "hparams_search=mnist_optuna",
        *SYNTHETIC,
        "trainer.max_epochs=1",
        f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweeper.storage=sqlite:///{storage}",
        "hydra.sweeper.study_name=shared",
        f"hydra.sweep.dir={cwd / folder}",
    ]
    env = {**os.environ, "LITLAB_ROOT": str(cwd), "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.slow
def test_an_optuna_study_in_a_database_continues_and_is_shared(tmp_path):
    """optuna 2.10 (which the Hydra plugin needs) with SQLAlchemy 1.4 (the extra pins it)."""
    optuna = pytest.importorskip("optuna", reason='needs pip install -e ".[optuna]"')
    storage = tmp_path / "study.db"

    def trials() -> list:
        study = optuna.load_study(study_name="shared", storage=f"sqlite:///{storage}")
        return [trial for trial in study.trials if trial.state.name == "COMPLETE"]

    first = optuna_sweep(tmp_path, "first", storage, 2)
    assert first.wait(timeout=600) == 0, first.stdout.read()[-3000:]
    assert len(trials()) == 2
    # a second command continues the study; two started at once share it (as cluster jobs do)
    runs = [optuna_sweep(tmp_path, name, storage, 2) for name in ("second", "third")]
    for run in runs:
        assert run.wait(timeout=600) == 0, run.stdout.read()[-3000:]
    done = trials()
    assert len(done) == 6 and sorted(trial.number for trial in done) == list(range(6))
    # each command drew its own trials: an unseeded sampler for a shared study
    assert len({json.dumps(trial.params, sort_keys=True) for trial in done}) == 6
    assert len(list((tmp_path / "third").glob("*/metrics.json"))) == 2
