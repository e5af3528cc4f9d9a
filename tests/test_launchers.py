"""Hydra multiruns through real launchers: basic, joblib, submitit (litlab's Optuna sweeper:
test_optuna_sweeper.py)."""

import json

import pytest
import yaml

from litlab import command
from litlab.errors import ConfigError
from tests.helpers import (
    SWEEP_ON_SYNTHETIC_DATA,
    assert_complete_jobs,
    compose_quiet,
    multirun,
    run_entry_point,
)


@pytest.mark.slow
def test_four_job_multirun_into_one_sweep_folder(tmp_path):
    sweep = multirun(
        tmp_path, *SWEEP_ON_SYNTHETIC_DATA, "model=perceptron,mlp", "optimizer=adam,sgd"
    )
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
def test_joblib_runs_jobs_in_parallel_processes(tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_joblib_launcher", reason='needs pip install -e ".[joblib]"'
    )
    sweep = multirun(
        tmp_path,
        *SWEEP_ON_SYNTHETIC_DATA,
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
        *SWEEP_ON_SYNTHETIC_DATA,
        "model=mlp",
        "optimizer.lr=0.001,0.01",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
    )
    assert_complete_jobs(sweep, 2)
    assert list(sweep.glob(".submitit/*")), "submitit keeps its own job records"


def test_a_search_without_optuna_names_the_extra_and_hydras_old_sweeper_is_named(monkeypatch):
    monkeypatch.setitem(command.PLUGINS, "hparams_search=", ("no_such_package", "optuna"))
    with pytest.raises(
        ConfigError, match=r'needs no-such-package, .*pip install -e "\.\[optuna\]"'
    ):
        command.require_plugins(["hparams_search=mnist_optuna"])
    monkeypatch.setitem(command.PLUGINS, "hparams_search=", ("optuna", "optuna"))
    monkeypatch.setattr(command, "HYDRAS_OPTUNA_SWEEPER", "yaml")  # as if it were installed
    with pytest.raises(ConfigError, match="pip uninstall hydra-optuna-sweeper"):
        command.require_plugins(["hparams_search=mnist_optuna"])


def test_a_missing_plugin_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(
        command.PLUGINS, "hydra/launcher=joblib", ("hydra_plugins.not_installed", "joblib")
    )
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[joblib\]"'):
        command.require_plugins(["model=mlp", "hydra/launcher=joblib"])
    command.require_plugins(["model=mlp", "hparams_search=null"])  # nothing needed, nothing raised
    monkeypatch.setitem(
        command.PLUGINS, "hydra/launcher=joblib", ("no_such_namespace.plugin", "joblib")
    )
    with pytest.raises(ConfigError, match="joblib"):  # no hydra_plugins namespace at all
        command.require_plugins(["hydra/launcher=joblib"])


def test_an_unknown_launcher_is_named_with_the_options(tmp_path):
    result = run_entry_point(
        "train.py", "-m", "hydra/launcher=foo", data_dir=tmp_path, cwd=tmp_path, quiet=False
    )
    assert result.returncode == 2
    assert "hydra/launcher=foo is not an option of hydra/launcher" in result.stderr
    assert "basic" in result.stderr  # the launchers there are
    assert not (tmp_path / "outputs").exists()
