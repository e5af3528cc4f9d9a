"""A sweep's records (litlab.sweep, litlab.report.sweep): status.json per job and
sweep_summary.csv/.md/.png after a real Hydra multirun, its exit status, and litlab-report on a
sweep."""

import csv
import json
import math
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litlab.report import plots
from litlab.report.sweep import (
    JobRow,
    pareto_front,
    read_job,
    seed_groups,
    write_sweep_summary,
)
from tests.helpers import litlab_report, run_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """Three jobs on synthetic data: two learning rates that train and one that is refused."""
    cwd = tmp_path_factory.mktemp("sweep")
    result = run_sweep(
        cwd,
        "data=synthetic_classification",
        "model=mlp",
        "trainer.max_epochs=2",
        "callbacks.evaluation_images=null",
        "optimizer.lr=0.0001,0.01,-1",
    )
    return cwd / "sweep", result


def read_summary(folder: Path) -> list[dict[str, str]]:
    with (folder / "sweep_summary.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def test_summary_has_one_row_per_job_best_first_and_the_failure(sweep):
    folder, result = sweep
    assert result.returncode == 1, result.stderr[-2000:]  # a job failed, and the sweep says so
    output = result.stdout + result.stderr  # Hydra logs to stdout
    assert "1 of 3 jobs failed" in output and "Traceback" not in output
    rows = read_summary(folder)
    assert [row["overrides"] for row in rows] == [
        "optimizer.lr=0.01",  # the higher val/acc_best
        "optimizer.lr=0.0001",
        "optimizer.lr=-1",
    ]
    assert [row["status"] for row in rows] == ["ok", "ok", "failed"]
    assert rows[2]["error"].startswith("ConfigError: optimizer.lr=-1")
    for row in rows[:2]:
        metrics = json.loads((folder / row["run_folder"] / "metrics.json").read_text())
        assert float(row["val/acc_best"]) == metrics["val/acc_best"]
        assert float(row["test/acc"]) == metrics["test/acc"]
    assert float(rows[0]["val/acc_best"]) > float(rows[1]["val/acc_best"])
    assert rows[2]["val/acc_best"] == ""
    assert json.loads((folder / "2" / "status.json").read_text())["status"] == "failed"


def test_summary_markdown_and_figure(sweep):
    folder, _ = sweep
    text = (folder / "sweep_summary.md").read_text()
    assert "3 jobs: 2 ok, 1 failed, 0 incomplete" in text
    table = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert [line.split(" | ")[3] for line in table] == [
        "optimizer.lr=0.01",
        "optimizer.lr=0.0001",
        "optimizer.lr=-1",
    ]
    with Image.open(folder / "sweep_summary.png") as image:
        assert image.format == "PNG" and image.size[0] >= 400 and image.size[1] >= 150


def test_litlab_report_rebuilds_the_summary_from_the_files(sweep):
    folder, _ = sweep
    before = (folder / "sweep_summary.csv").read_text()
    for name in ("sweep_summary.csv", "sweep_summary.md", "sweep_summary.png"):
        (folder / name).unlink()
    result = litlab_report(folder)
    assert result.returncode == 0, result.stderr
    assert (folder / "sweep_summary.csv").read_text() == before
    assert (folder / "sweep_summary.png").is_file()


@pytest.mark.slow
def test_stop_on_failure_ends_the_sweep_at_the_failed_job(tmp_path):
    result = run_sweep(
        tmp_path,
        "data=xor",
        "model=mlp",
        "trainer.max_epochs=1",
        "stop_on_failure=true",
        "optimizer.lr=-1,0.01",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "optimizer.lr=-1 is invalid" in result.stdout + result.stderr
    assert not (tmp_path / "sweep" / "1").exists()  # the second job never ran
    (row,) = read_summary(tmp_path / "sweep")
    assert row["status"] == "failed" and row["overrides"].endswith("optimizer.lr=-1")


def test_a_job_that_crashes_is_recorded_and_the_sweep_goes_on(tmp_path):
    result = run_sweep(
        tmp_path,
        "data=xor",
        "model=mlp",
        "trainer.max_epochs=1",
        "+callbacks.crash._target_=tests.probes.Crash",
        "+callbacks.crash.enabled=true,false",
    )
    assert result.returncode == 1
    rows = {row["job"]: row for row in read_summary(tmp_path / "sweep")}
    assert rows["0"]["status"] == "failed"
    assert rows["0"]["error"] == "RuntimeError: probe crash: a bug inside training"
    assert rows["1"]["status"] == "ok"
    # the traceback of a bug goes to the job's own log, for debugging
    assert "Traceback" in (tmp_path / "sweep" / "0" / "train.log").read_text()


@pytest.mark.slow
def test_ctrl_c_in_a_job_ends_the_whole_sweep(tmp_path):
    interrupt = [  # the first job sends itself SIGINT at its fifth step
        "+callbacks.signal._target_=tests.probes.SignalAt",
        "+callbacks.signal.step=5",
        f"+callbacks.signal.signum={int(signal.SIGINT)}",
    ]
    result = run_sweep(
        tmp_path,
        "data=synthetic_classification",
        "model=mlp",
        "callbacks.evaluation_images=null",
        *interrupt,
        "optimizer.lr=0.001,0.002",
    )
    assert result.returncode == 130, result.stderr[-2000:]
    assert "SIGINT received" in result.stderr
    assert not (tmp_path / "sweep" / "1").exists()  # the second job never started


def test_a_rerun_job_starts_without_the_old_status(tmp_path):
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from litlab.sweep import SweepSummary

    (tmp_path / "status.json").write_text('{"status": "failed", "error": "old"}')
    config = OmegaConf.create(
        {"hydra": {"mode": RunMode.MULTIRUN, "runtime": {"output_dir": str(tmp_path)}}}
    )
    SweepSummary().on_job_start(config, task_function=None)
    assert not (tmp_path / "status.json").exists()


def job(overrides: str, status: str = "ok", **metrics: float) -> JobRow:
    return JobRow(
        job="0", folder=Path("0"), overrides=overrides.split(), status=status, metrics=metrics
    )


def test_seed_groups_count_failed_jobs_and_need_repeated_settings():
    rows = [
        job("seed=1 model=a", acc=0.5),
        job("seed=2 model=a", status="failed"),
        job("seed=3 model=a", acc=0.7),
        job("seed=4 model=b", acc=0.9),
    ]
    groups = seed_groups(rows, ["acc"], "acc", "max")
    assert [(g.label, g.n, g.jobs) for g in groups] == [("model=b", 1, 1), ("model=a", 2, 3)]
    mean, spread, low, high = groups[1].stats["acc"]
    assert mean == pytest.approx(0.6) and spread == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert (low, high) == (0.5, 0.7) and math.isnan(groups[0].stats["acc"][1])
    # an Optuna search that samples the seed: every setting once, nothing to group
    assert (
        seed_groups(
            [job("seed=1 lr=0.1", acc=1.0), job("seed=2 lr=0.2", acc=1.0)], ["acc"], "acc", "max"
        )
        == []
    )


@pytest.mark.slow  # a real 6-job multirun: 14 s
def test_jobs_that_differ_in_their_seed_are_summarised_as_groups(tmp_path):
    result = run_sweep(
        tmp_path,
        "data=synthetic_classification",
        "data.num_samples=600",
        "trainer.max_epochs=2",
        "callbacks.evaluation_images=null",
        "seed=1,2,3",
        "model=mlp,perceptron",
    )
    folder = tmp_path / "sweep"
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(read_summary(folder)) == 6  # the per-job rows stay
    with (folder / "sweep_summary_by_group.csv").open(newline="") as file:
        groups = {row["group"]: row for row in csv.DictReader(file)}
    assert set(groups) == {"model=mlp", "model=perceptron"}
    for label, group in groups.items():
        values = {
            name: [
                json.loads((job / "metrics.json").read_text())[name]
                for job in sorted(folder.glob("[0-9]*"))
                if f"- {label}" in (job / ".hydra" / "overrides.yaml").read_text()
            ]
            for name in ("val/acc_best", "test/acc")
        }
        assert group["n"] == "3" and len(values["test/acc"]) == 3
        for name, measured in values.items():
            assert float(group[f"{name}_mean"]) == pytest.approx(np.mean(measured), rel=1e-9)
            assert float(group[f"{name}_std"]) == pytest.approx(np.std(measured, ddof=1), rel=1e-9)
            assert float(group[f"{name}_min"]) == min(measured)
            assert float(group[f"{name}_max"]) == max(measured)
    text = (folder / "sweep_summary.md").read_text()
    assert "## Across seeds" in text and "| model=mlp | 3 |" in text
    before = (folder / "sweep_summary_by_group.csv").read_text()
    (folder / "sweep_summary_by_group.csv").unlink()
    assert litlab_report(folder).returncode == 0  # an old sweep folder gets the same
    assert (folder / "sweep_summary_by_group.csv").read_text() == before


@pytest.mark.parametrize(
    ("values", "errors", "limits"),
    [
        ([0.98, 0.97, math.nan], None, (0, 0.98 * 1.3)),  # jobs apart in the second decimal
        ([0.98, 0.97], [0.005, math.nan], (0, 0.985 * 1.3)),  # seed groups: mean ± std
        ([0.4, -0.2], None, (-0.38, 0.58)),  # R2 below zero: bars both ways from 0
        ([math.nan], None, (0, 1)),  # every job failed
    ],
)
def test_sweep_bars_start_at_zero(values, errors, limits):
    labels = [f"job {index}" for index in range(len(values))]
    axes = plots.sweep_figure(labels, values, "val/acc", errors=errors).axes[0]
    assert axes.get_xlim() == pytest.approx(limits)


def write_job(sweep: Path, job: str, metrics: dict, status: dict, direction, metric) -> None:
    """A job folder as a search leaves it: its Hydra records, metrics.json, status.json."""
    records = sweep / job / ".hydra"
    records.mkdir(parents=True)
    (records / "overrides.yaml").write_text(f"- optimizer.lr={job}e-3\n")
    (records / "config.yaml").write_text(
        json.dumps({"optimized_metric": metric, "monitor": {"mode": "max"}})
    )
    (records / "hydra.yaml").write_text(
        json.dumps({"hydra": {"sweeper": {"direction": direction}}})
    )
    (sweep / job / "metrics.json").write_text(json.dumps(metrics))
    (sweep / job / "status.json").write_text(json.dumps(status))


def test_pruned_jobs_follow_the_finished_ones_with_their_last_value(tmp_path):
    for job, value, status in [("1", 0.9, "ok"), ("2", 0.95, "pruned"), ("3", 0.8, "ok")]:
        state = {
            "status": status,
            "return_value": value,
            **({"epoch": 1} if status != "ok" else {}),
        }
        write_job(tmp_path, job, {"val/acc_best": value}, state, "maximize", "val/acc_best")
    write_sweep_summary(tmp_path)
    rows = read_summary(tmp_path)
    assert [(row["job"], row["status"]) for row in rows] == [
        ("1", "ok"),
        ("3", "ok"),
        ("2", "pruned"),  # its value is a partial run's: ranked after every finished job
    ]
    assert rows[2]["val/acc_best"] == "0.95"
    text = (tmp_path / "sweep_summary.md").read_text()
    assert "3 jobs: 2 ok, 1 pruned, 0 failed, 0 incomplete" in text


def test_two_objectives_give_the_pareto_front_as_table_and_plot(tmp_path):
    jobs = {  # (val/acc_best: higher is better, model/params: lower is better)
        "1": (0.90, 1000.0),  # front
        "2": (0.95, 5000.0),  # front
        "3": (0.89, 2000.0),  # beaten by 1 in both
        "4": (0.95, 6000.0),  # beaten by 2: as accurate, larger
        "5": (0.99, 100.0),  # pruned: not on the front, whatever its values
    }
    metric = ["val/acc_best", "model/params"]
    for job, (accuracy, size) in jobs.items():
        status = {"status": "pruned", "epoch": 1} if job == "5" else {"status": "ok"}
        write_job(
            tmp_path,
            job,
            {"val/acc_best": accuracy, "model/params": size},
            status,
            ["maximize", "minimize"],
            metric,
        )
    assert pareto_front(
        [read_job(tmp_path / job) for job in jobs],
        [("val/acc_best", "max"), ("model/params", "min")],
    ) == [
        read_job(tmp_path / "1"),
        read_job(tmp_path / "2"),
    ]
    write_sweep_summary(tmp_path)
    rows = {row["job"]: row for row in read_summary(tmp_path)}
    assert [job for job, row in rows.items() if row["pareto"] == "yes"] == ["2", "1"]
    text = (tmp_path / "sweep_summary.md").read_text()
    front = text[text.index("## Pareto front") :]
    assert "val/acc_best (higher is better), model/params (lower is better)" in front
    table = [line.split(" | ")[0] for line in front.splitlines() if line.startswith("| ")][1:]
    assert table == ["| 1", "| 2"]  # in the order of the first objective
    with Image.open(tmp_path / "sweep_pareto.png") as image:
        assert image.format == "PNG" and image.size[0] >= 400


def test_a_search_of_two_objectives_with_no_finished_job_keeps_its_columns(tmp_path):
    metric = ["val/acc_best", "model/params"]
    write_job(
        tmp_path, "0", {}, {"status": "failed", "error": "E: x"}, ["maximize", "minimize"], metric
    )
    write_sweep_summary(tmp_path)
    (row,) = read_summary(tmp_path)
    assert (row["status"], row["pareto"], row["error"]) == ("failed", "", "E: x")
    assert row["overrides"] == "optimizer.lr=0e-3"
