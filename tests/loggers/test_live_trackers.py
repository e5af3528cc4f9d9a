"""The trackers as users run them: train.py against a real `mlflow server` on 127.0.0.1 (a sweep
with a failing job, Ctrl+C and resume=auto), the run's page in a headless browser, W&B offline
runs of a sweep, and DDP logging from rank zero only. Slow: a server start and whole commands."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from litlab import PROJECT_ROOT
from litlab.cli import runs_main
from tests.helpers import (
    QUIET,
    SWEEP_ON_SYNTHETIC_DATA,
    inspect_wandb_run,
    run_entry_point,
    run_sweep,
)

pytestmark = pytest.mark.slow
MLFLOW = Path(sys.executable).parent / "mlflow"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SYNTHETIC_STEPS_PER_EPOCH = 66  # data=synthetic_classification: 8400 samples in batches of 128


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> str:
    """`mlflow server` on 127.0.0.1 with a SQLite database and served artifacts."""
    folder = tmp_path_factory.mktemp("mlflow_server")
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        str(MLFLOW), "server", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
        "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
        "--artifacts-destination", str(folder / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    log = open(folder / "server.log", "w")  # noqa: SIM115 - open while the server runs
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    deadline = time.monotonic() + 120
    while not _answers(url):
        assert server.poll() is None, (folder / "server.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "mlflow server did not start in 120 s"
        time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)
    log.close()


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def sweep_on_server(mlflow_server, tmp_path_factory) -> tuple[Path, dict]:
    """A sweep of two jobs against the server, the second failing (its loss becomes NaN):
    the sweep folder and {job number: its MLflow run}."""
    cwd = tmp_path_factory.mktemp("sweep")
    result = run_sweep(
        cwd,
        *SWEEP_ON_SYNTHETIC_DATA,
        "task_name=live_sweep",
        "logger=[tensorboard,mlflow]",
        f"logger.mlflow.tracking_uri={mlflow_server}",
        "optimizer.lr=0.01,1e30",
    )
    assert result.returncode == 1, (result.stdout + result.stderr)[-3000:]  # a job failed
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("live_sweep")
    runs = client.search_runs([experiment.experiment_id])
    return cwd / "sweep", {run.info.run_name.rsplit("/", 1)[1]: run for run in runs}


def test_a_sweep_against_a_server_records_each_job_as_it_ended(mlflow_server, sweep_on_server):
    sweep, runs = sweep_on_server
    assert sorted(runs) == ["0", "1"]
    finished, failed = runs["0"], runs["1"]
    assert (finished.info.status, failed.info.status) == ("FINISHED", "FAILED")
    for job, run in runs.items():  # grouped under the sweep, each job its own run
        assert run.data.tags["litlab.sweep"] == str(sweep)
        assert run.data.tags["litlab.run_folder"] == str(sweep / job)
    assert failed.data.params["optimizer.lr"] == "1e+30"
    client = MlflowClient(mlflow_server)
    history = client.get_metric_history(finished.info.run_id, "val/acc")
    assert [point.step for point in history] == [65, 131]  # two epochs, each once
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())
    assert finished.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    files = {item.path for item in client.list_artifacts(finished.info.run_id)}
    assert {"config.yaml", "report.md", "metrics.json", "plots"} <= files
    kept = client.download_artifacts(finished.info.run_id, "config.yaml", str(sweep.parent))
    assert Path(kept).read_text() == (sweep / "0" / "config.yaml").read_text()
    assert {item.path for item in client.list_artifacts(failed.info.run_id)} == {"config.yaml"}
    assert json.loads((sweep / "0" / "trackers.json").read_text()) == {
        "mlflow": finished.info.run_id
    }
    # and without a tracker: the finished job, from the folders alone
    assert runs_main([str(sweep)]) == 0
    table = (sweep / "runs_comparison.csv").read_text().splitlines()
    assert len(table) == 2 and table[1].startswith("0,")


def test_the_runs_page_draws_its_metric_charts_in_a_browser(mlflow_server, tmp_path):
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        pytest.skip("no headless browser installed (.ci/run installs chromium where it can)")
    overrides = [*SWEEP_ON_SYNTHETIC_DATA, "task_name=live_page", "logger=mlflow"]
    trained = run_entry_point(
        "train.py",
        *overrides,
        f"logger.mlflow.tracking_uri={mlflow_server}",
        data_dir=tmp_path,
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    page = trained.stdout.split("MLflow: run ")[1].split()[2] + "/model-metrics"
    assert page.startswith(f"{mlflow_server}/#/experiments/")  # the line names the run's page
    for _ in range(6):  # the charts draw once their data has come: on a busy machine, later
        rendered = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"]
            + ["--virtual-time-budget=60000", "--dump-dom", page],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        if "js-plotly-plot" in rendered:
            break
        time.sleep(2)
    (tmp_path / "run_page.html").write_text(rendered)  # for a look when it fails
    run_name = next((tmp_path / "outputs/live_page/runs").iterdir()).name
    assert run_name in rendered  # the run's own page
    assert "js-plotly-plot" in rendered and ">Step</text>" in rendered  # a metric chart
    assert 'class="js-line"' in rendered  # with its line drawn


def test_ctrl_c_ends_the_run_killed_and_resume_continues_it(mlflow_server, tmp_path):
    overrides = [
        *SWEEP_ON_SYNTHETIC_DATA,
        "task_name=live_resume",
        "logger=mlflow",
        f"logger.mlflow.tracking_uri={mlflow_server}",
        "callbacks.early_stopping=null",
    ]
    env = {**os.environ, "LITLAB_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *QUIET, *overrides]
    process = subprocess.Popen(
        [*command, "trainer.max_epochs=1000"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = _wait_for_a_checkpoint(process, tmp_path / "outputs/live_resume/runs")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    run_folder = last.parent.parent
    run_id = json.loads((run_folder / "trackers.json").read_text())["mlflow"]
    client = MlflowClient(mlflow_server)
    assert client.get_run(run_id).info.status == "KILLED"

    epochs = torch.load(last, weights_only=True)["epoch"] + 2
    resumed = run_entry_point(
        "train.py",
        *overrides,
        f"trainer.max_epochs={epochs}",
        "resume=auto",
        data_dir=tmp_path,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"MLflow: continuing {run_id}" in resumed.stdout
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    steps = [point.step for point in client.get_metric_history(run_id, "val/acc")]
    assert steps == [SYNTHETIC_STEPS_PER_EPOCH * (epoch + 1) - 1 for epoch in range(epochs)]
    experiment = client.get_experiment_by_name("live_resume")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def _wait_for_a_checkpoint(process: subprocess.Popen, runs: Path) -> Path:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        found = list(runs.glob("*/checkpoints/last.ckpt"))
        if found:
            return found[0]
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no checkpoint: {process.communicate()[1][-2000:]}")


def test_a_wandb_sweep_keeps_one_offline_run_per_job(tmp_path):
    result = run_sweep(tmp_path, *SWEEP_ON_SYNTHETIC_DATA, "logger=wandb", "optimizer.lr=0.01,1e30")
    assert result.returncode == 1, (result.stdout + result.stderr)[-3000:]
    sweep = tmp_path / "sweep"
    states = {}
    for job in ("0", "1"):
        (offline,) = (sweep / job / "wandb").glob("offline-run-*")
        run = inspect_wandb_run(offline)
        assert run["config"]["litlab"]["sweep"] == str(sweep)
        assert run["run_id"] == json.loads((sweep / job / "trackers.json").read_text())["wandb"]
        states[job] = (run["state"], run["run_id"])
    assert states["0"][0] == "finished" and states["1"][0] == "failed"
    assert states["0"][1] != states["1"][1]


def test_ddp_logs_one_run_from_rank_zero(tmp_path):
    database = f"sqlite:///{tmp_path}/mlflow.db"
    command = [
        sys.executable, str(PROJECT_ROOT / "train.py"), *QUIET, "trainer=ddp_cpu", "data=xor",
        "model=mlp", "trainer.max_epochs=2", "logger=[tensorboard,mlflow]",
        f"logger.mlflow.tracking_uri={database}", f"hydra.run.dir={tmp_path}/run",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(database)
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2
    assert result.stdout.count("MLflow: run") == 1
