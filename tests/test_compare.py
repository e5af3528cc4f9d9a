"""litlab-runs: finished runs under a folder, from separate commands and sweeps, compared by
the config keys that differ and their final metrics (run folders written by hand here;
tests/loggers/test_live_trackers.py compares real runs)."""

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from litlab.cli import litlab_main, runs_main
from litlab.errors import ConfigError
from litlab.report.compare import (
    RunFilter,
    compare_runs,
    differing_keys,
    finished_runs,
    local_time,
    read_run,
)


def write_run(
    folder: Path,
    acc: float,
    started: str = "2026-12-01T10:00:00+00:00",
    finished: bool = True,
    **config,
) -> Path:
    settings = {
        "task_name": "train",
        "seed": 42,
        "data": {"seed": config.get("seed", 42), "batch_size": 128},
        "optimizer": {"lr": 0.001},
        "monitor": {"metric": "val/acc", "mode": "max"},
        "optimized_metric": "val/acc_best",
        "tags": [],
        "paths": {"output_dir": str(folder)},
        "callbacks": {"best_checkpoint": {"dirpath": f"{folder}/checkpoints"}},
        **config,
    }
    settings["data"]["seed"] = settings["seed"]  # ${seed}, as resolved
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    (folder / "run.json").write_text(json.dumps({"started": started}))
    if finished:
        metrics = {"val/acc_best": acc, "test/acc": acc - 0.01, "test/loss": 1 - acc}
        (folder / "metrics.json").write_text(json.dumps({**metrics, "test/acc/0": 0.5}))
    return folder


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """Two single runs, a sweep of two settings over two seeds, an unfinished run, another
    task's run with a tag, and a resumed run whose latest config is config.1.yaml."""
    root = tmp_path / "outputs"
    write_run(root / "train/runs/a", 0.90)
    write_run(root / "train/runs/b", 0.95, **{"optimizer": {"lr": 0.01}})
    for job, (lr, seed, acc) in enumerate(
        [(0.01, 1, 0.93), (0.01, 2, 0.95), (0.1, 1, 0.80), (0.1, 2, 0.84)]
    ):
        write_run(
            root / f"train/multiruns/s/{job}",
            acc,
            started=f"2026-12-03T10:00:0{job}+00:00",
            seed=seed,
            optimizer={"lr": lr},
        )
    write_run(root / "train/runs/stopped", 0.99, finished=False)
    write_run(root / "study/runs/c", 0.70, task_name="study", tags=["baseline"])
    evaluation = write_run(root / "eval/runs/e", 0.5)  # eval.py: the trained run's config
    (evaluation / "run.json").write_text(json.dumps({"evaluated": {"split": "test"}}))
    resumed = write_run(root / "train/runs/resumed", 0.91)
    (resumed / "config.1.yaml").write_text(
        (resumed / "config.yaml").read_text().replace("batch_size: 128", "batch_size: 64")
    )
    return root


def test_every_finished_run_is_found_and_read(outputs):
    found = [path.relative_to(outputs).as_posix() for path in finished_runs(outputs)]
    assert found == [
        "eval/runs/e",
        "study/runs/c",
        *[f"train/multiruns/s/{job}" for job in range(4)],
        "train/runs/a",
        "train/runs/b",
        "train/runs/resumed",
    ]
    assert read_run(outputs / "eval/runs/e", outputs) is None  # an evaluation, not a run
    resumed = read_run(outputs / "train/runs/resumed", outputs)
    assert resumed.config["data.batch_size"] == "64"  # its latest config
    assert "paths.output_dir" not in resumed.config
    assert "callbacks.best_checkpoint.dirpath" not in resumed.config  # its own folder
    assert resumed.metrics["test/loss"] == pytest.approx(0.09)


def test_the_keys_that_differ_each_once(outputs):
    runs = [read_run(folder, outputs) for folder in finished_runs(outputs / "train")]
    # data.seed follows seed in every run: one column
    assert differing_keys(runs) == ["data.batch_size", "optimizer.lr", "seed"]


def test_the_table_sorted_best_first_with_seed_groups(outputs, tmp_path):
    written, markdown = compare_runs(outputs, RunFilter(task="train"), out=tmp_path / "cmp")
    names = [path.name for path in written]
    assert names == [
        "runs_comparison.csv",
        "runs_comparison_by_group.csv",
        "runs_comparison.md",
        "runs_comparison.png",
    ]
    with open(tmp_path / "cmp/runs_comparison.csv") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == [
        "run", "started", "data.batch_size", "optimizer.lr", "seed",
        "val/acc_best", "test/acc", "test/loss",
    ]  # fmt: skip
    best_first = [float(row["val/acc_best"]) for row in rows]
    assert best_first == sorted(best_first, reverse=True) and len(rows) == 7
    with open(tmp_path / "cmp/runs_comparison_by_group.csv") as file:
        groups = {row["group"]: row for row in csv.DictReader(file)}
    sweep_setting = groups["data.batch_size=128 optimizer.lr=0.01"]
    assert sweep_setting["n"] == "3"  # run b (seed 42) and the sweep's two seeds
    assert float(sweep_setting["val/acc_best_mean"]) == pytest.approx((0.95 + 0.93 + 0.95) / 3)
    assert "## Across seeds" in markdown and "![val/acc_best per run]" in markdown


def test_filters_and_sorting(outputs):
    def runs(keep=None, **options) -> list[str]:
        compare_runs(outputs, keep, **options)
        with open(outputs / "runs_comparison.csv") as file:
            return [row["run"] for row in csv.DictReader(file)]

    assert runs(RunFilter(tags=["baseline"])) == ["study/runs/c"]
    sweep = [f"train/multiruns/s/{job}" for job in range(4)]
    assert sorted(runs(RunFilter(glob="train/multiruns/*"))) == sweep
    since = RunFilter(since=datetime(2026, 12, 2))
    assert sorted(runs(since)) == sweep
    until = RunFilter(until=datetime(2026, 12, 2), task="train")
    assert sorted(runs(until)) == ["train/runs/a", "train/runs/b", "train/runs/resumed"]
    by_loss = runs(RunFilter(glob="train/multiruns/*"), sort="test/loss")  # lowest first
    assert by_loss == [
        "train/multiruns/s/1",
        "train/multiruns/s/0",
        "train/multiruns/s/3",
        "train/multiruns/s/2",
    ]
    by_lr = runs(RunFilter(glob="train/multiruns/*"), sort="optimizer.lr", ascending=False)
    assert by_lr[:2] == ["train/multiruns/s/2", "train/multiruns/s/3"]  # 0.1 first
    assert runs(RunFilter(glob="train/multiruns/*"), sort="started")[0] == "train/multiruns/s/3"


def test_a_missing_or_nan_value_sorts_last(outputs):
    broken = outputs / "train/runs/b/metrics.json"
    broken.write_text(broken.read_text().replace("0.95", "NaN", 1))  # json: val/acc_best NaN
    compare_runs(outputs, RunFilter(task="train"), sort="val/acc_best")
    with open(outputs / "runs_comparison.csv") as file:
        rows = [row["run"] for row in csv.DictReader(file)]
    assert rows[-1] == "train/runs/b" and rows[0] == "train/multiruns/s/1"


def test_times_with_a_zone_compare_with_the_runs_local_times(outputs):
    zoned = RunFilter(since=local_time(datetime.fromisoformat("2026-12-02T00:00:00+00:00")))
    assert len(compare_runs(outputs, zoned)[1].split("| train/multiruns/s/")) == 5


def test_nothing_to_compare_is_said_in_one_paragraph(outputs, tmp_path):
    with pytest.raises(ConfigError, match="None of the 8 finished runs .* passes the filters"):
        compare_runs(outputs, RunFilter(task="nothing"))
    with pytest.raises(ConfigError, match="No finished run under"):
        compare_runs(tmp_path / "outputs/train/runs/stopped")
    with pytest.raises(ConfigError, match="--sort nope is not a column"):
        compare_runs(outputs, sort="nope")


def test_the_command(outputs, tmp_path, capsys):
    with pytest.raises(SystemExit) as ended:  # `litlab runs`, options in any order
        litlab_main(["runs", "--tag", "baseline", str(outputs)])
    assert ended.value.code == 0
    printed = capsys.readouterr().out
    assert "| study/runs/c |" in printed and f"Wrote {outputs / 'runs_comparison.csv'}" in printed
    assert runs_main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert runs_main([str(outputs), "--task", "nothing"]) == 2
    with pytest.raises(SystemExit):
        runs_main([str(outputs), "--since", "yesterday"])
    assert "is not a date" in capsys.readouterr().err
