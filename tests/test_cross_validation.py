"""k-fold cross-validation: which samples each fold holds (every splitting data module), the
folds trained in one command with their summary, the refit, resume at the next fold, and the
bad inputs."""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from litlab import PROJECT_ROOT
from litlab.build import build_datamodule
from litlab.cli import report_main
from litlab.config.checks import validate_config
from litlab.errors import ConfigError
from litlab.evaluate import evaluate
from litlab.run_folder import CV_SUMMARY, METRICS, fold_folder
from litlab.train import train
from tests.helpers import (
    QUIET,
    SWEEP_ON_SYNTHETIC_DATA,
    error_paragraph,
    make_image_folder,
    make_tiny_mnist,
    multirun,
    run_entry_point,
)

# A quick classification table: wine (178 samples, 3 classes; 36 held out for testing).
WINE = ["data=wine", "model=mlp", "model.hidden_sizes=[16]", "trainer.max_epochs=3"]


def fold_splits(make_config, *overrides: str, folds: int = 5) -> list[dict[str, torch.Tensor]]:
    """Each fold's samples as its data module loads them: split name -> raw inputs, and
    "tested": what identifies its test samples."""
    splits = []
    for fold in range(folds):
        cfg = make_config(*overrides, f"cv.folds={folds}", f"cv.fold={fold}")
        datamodule = build_datamodule(cfg)
        datamodule.setup()
        named = [
            datamodule.sample_name("test", i) for i in range(len(datamodule.splits["test"][0]))
        ]
        if None in named:  # the samples themselves (a table's own: its line numbers)
            named = rows(datamodule.raw_inputs("test"))
        splits.append(
            {"tested": named, **{name: datamodule.raw_inputs(name) for name in datamodule.splits}}
        )
    return splits


def rows(tensor: torch.Tensor) -> set[tuple[float, ...]]:
    """The samples of a split, as a set (rounded: raw inputs come back through the scaling)."""
    return {tuple(round(value, 3) for value in row.flatten().tolist()) for row in tensor}


def test_folds_partition_the_training_and_validation_samples_and_keep_the_test_split(
    make_config,
):
    plain = build_datamodule(make_config(*WINE))
    plain.setup()
    pool = rows(torch.cat([plain.raw_inputs("train"), plain.raw_inputs("val")]))
    folds = []
    for fold in range(5):
        datamodule = build_datamodule(make_config(*WINE, "cv.folds=5", f"cv.fold={fold}"))
        datamodule.setup()
        assert rows(datamodule.raw_inputs("test")) == rows(plain.raw_inputs("test"))
        validated, trained = (
            rows(datamodule.raw_inputs("val")),
            rows(datamodule.raw_inputs("train")),
        )
        assert not validated & trained
        assert validated | trained == pool
        folds.append(validated)
        # stratified: each class in its share (wine: 59/71/48 of 178), within one sample
        labels = datamodule.splits["val"][1]
        share = torch.bincount(labels, minlength=3) / len(labels)
        pooled = torch.cat([plain.splits["train"][1], plain.splits["val"][1]])
        expected = torch.bincount(pooled, minlength=3) / len(pooled)
        assert (share - expected).abs().max() <= 1 / len(labels) + 1e-6
    assert set.union(*folds) == pool and sum(map(len, folds)) == len(pool)


def test_folds_are_seeded_by_the_data_seed(make_config):
    first = fold_splits(make_config, *WINE, folds=3)[0]["val"]
    again = fold_splits(make_config, *WINE, folds=3)[0]["val"]
    other = fold_splits(make_config, *WINE, "data.seed=7", folds=3)[0]["val"]
    assert torch.equal(first, again)
    assert rows(first) != rows(other)


def test_each_fold_scales_with_its_own_training_samples(make_config):
    """Standardisation is fitted after the fold's split: validation leaks nothing into it."""
    datamodule = build_datamodule(make_config(*WINE, "cv.folds=4", "cv.fold=1"))
    datamodule.setup()
    train_inputs = datamodule.splits["train"][0]
    assert train_inputs.mean(0).abs().max() < 1e-5
    assert (train_inputs.std(0) - 1).abs().max() < 1e-4


@pytest.mark.parametrize(
    "overrides",
    [
        ["data=synthetic_regression", "model=mlp"],  # KFold: no classes
        ["data=adding", "model=rnn"],  # sequences
        ["data=table", "data.path=docs/examples/wines.csv", "data.target=cultivar"],
    ],
)
def test_every_splitting_data_module_gives_folds(make_config, overrides):
    splits = fold_splits(make_config, *overrides, folds=3)
    validated = [rows(split["val"]) for split in splits]
    assert all(validated) and not validated[0] & validated[1]
    assert all(split["tested"] == splits[0]["tested"] for split in splits)


def test_mnist_folds_its_training_images_and_keeps_the_official_test_set(make_config, tmp_path):
    data_dir = make_tiny_mnist(tmp_path / "data")
    mnist = [f"paths.data_dir={data_dir}", "data.download=false", "data.val_size=100"]
    splits = fold_splits(make_config, *mnist, folds=2)
    assert len(splits[0]["val"]) + len(splits[1]["val"]) == len(splits[0]["train"]) + len(
        splits[0]["val"]
    )
    assert rows(splits[0]["test"]) == rows(splits[1]["test"])


def test_the_refit_trains_on_every_training_and_validation_sample(make_config):
    plain = build_datamodule(make_config(*WINE))
    plain.setup()
    refit = build_datamodule(make_config(*WINE, "cv.folds=5", "cv.fold=refit"))
    refit.setup()
    assert len(refit.splits["train"][0]) == len(plain.splits["train"][0]) + len(
        plain.splits["val"][0]
    )
    assert len(refit.splits["val"][0]) == 0


def test_more_folds_than_samples_of_a_class_is_refused(make_config):
    datamodule = build_datamodule(make_config(*WINE, "cv.folds=40", "cv.fold=0"))
    with pytest.raises(ConfigError) as raised:
        datamodule.setup()
    message = str(raised.value)
    assert "cv.folds=40" in message and "class index 2" in message
    assert "(38 in its training and validation splits)" in message
    assert "cv.folds=38 or fewer" in message


def test_a_fixed_validation_folder_is_refused(make_config, tmp_path):
    pictures = make_image_folder(tmp_path / "pictures", per_class=6)
    root = tmp_path / "split"
    for side in ("left", "right"):
        for index, image in enumerate(sorted((pictures / side).iterdir())):
            split = "val" if index < 2 else "train"
            (root / split / side).mkdir(parents=True, exist_ok=True)
            image.rename(root / split / side / image.name)
    cfg = make_config("data=image_folder", f"data.root={root}", "cv.folds=2", "cv.fold=0")
    with pytest.raises(ConfigError, match=r"fixed validation split \(its val/ folder\)"):
        build_datamodule(cfg).setup()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["cv.folds=1"], "cv.folds=1 is invalid: it must be an integer >= 2"),
        (["cv.folds=0.5"], "cv.folds=0.5 is invalid"),
        (["cv.refit=true"], "cv.refit=true trains once more after a cross-validation"),
        (["cv.fold=0"], "cv.fold=0 is set by litlab in each fold's own config; leave it out."),
        (["cv.folds=3", "cv.fold=7"], "cv.fold=7 is set by litlab"),
        (["cv.folds=3", "tune=lr_find", "tune.only=true"], "tune.only=true finds a learning"),
        (
            ["cv.folds=3", "cv.refit=true", "scheduler=plateau"],
            "but scheduler=plateau steps on a validation metric",
        ),
    ],
)
def test_bad_cross_validation_settings_are_named(make_config, overrides, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        validate_config(make_config(*WINE, *overrides))


def test_a_folder_of_pictures_without_a_test_split_is_refused(make_config, tmp_path):
    pictures = make_image_folder(tmp_path / "pictures", per_class=6)
    root = tmp_path / "only_train"
    (root / "train").mkdir(parents=True)
    for side in ("left", "right"):
        (pictures / side).rename(root / "train" / side)
    cfg = make_config(
        "data=image_folder", f"data.root={root}", "data.val_size=4", "cv.folds=2", "cv.fold=0"
    )
    with pytest.raises(ConfigError, match="has no test/ folder, and every fold is tested"):
        build_datamodule(cfg).setup()


def test_a_finished_cross_validation_is_not_forced_on(make_config, tmp_path):
    run = tmp_path / "run"
    (run / "fold_2" / "checkpoints").mkdir(parents=True)
    (run / METRICS).write_text("{}")
    cfg = make_config(*WINE, "cv.folds=2", f"ckpt_path={run}/fold_2/checkpoints/last.ckpt")
    with pytest.raises(ConfigError, match="is a cross-validation that has finished"):
        train(cfg)


def test_a_checkpoint_from_outside_the_folds_is_refused(make_config, tmp_path):
    cfg = make_config(*WINE, "cv.folds=2", f"ckpt_path={tmp_path}/elsewhere/checkpoints/x.ckpt")
    with pytest.raises(ConfigError, match="every fold of a cross-validation starts from fresh"):
        train(cfg)


# -- the folds trained ---------------------------------------------------------------------
@pytest.mark.slow
def test_cross_validation_trains_each_fold_and_returns_their_mean(make_config):
    cfg = make_config(*WINE, "cv.folds=3", "cv.refit=true")
    result = train(cfg)
    run = Path(cfg.paths.output_dir)
    folds = [json.loads((fold_folder(run, i) / METRICS).read_text()) for i in range(3)]
    for name in ("val/acc_best", "test/acc", "test/loss"):
        assert result[name] == pytest.approx(sum(f[name] for f in folds) / 3, abs=1e-12)
    assert json.loads((run / METRICS).read_text()) == pytest.approx(result)
    summary = json.loads((run / f"{CV_SUMMARY}.json").read_text())
    tested = [fold["test/acc"] for fold in folds]
    mean, deviation = statistics.mean(tested), statistics.stdev(tested)
    assert summary["statistics"]["test/acc"] == pytest.approx(
        {"mean": mean, "std": deviation, "min": min(tested), "max": max(tested)}
    )
    assert summary["fold_metrics"] == folds
    refit = json.loads((run / "refit" / METRICS).read_text())
    assert summary["refit"]["test/acc"] == refit["test/acc"]
    # the refit trained for the folds' median epochs to their best checkpoint, without validating
    best = [
        torch.load(fold_folder(run, i) / "checkpoints" / "best.ckpt", weights_only=True)["epoch"]
        for i in range(3)
    ]
    epochs = (run / "refit" / "history.csv").read_text().strip().splitlines()[1:]
    assert len(epochs) == max(1, round(statistics.median(best) + 1))
    assert not any(name.startswith("val/") for name in refit)
    text = (run / f"{CV_SUMMARY}.md").read_text()
    assert "| **mean ± std** |" in text and f"{mean:.4g} ± {deviation:.4g}" in text
    (run / f"{CV_SUMMARY}.md").unlink()
    assert report_main([str(run)]) == 0  # litlab-report rebuilds it from the folds
    assert (run / f"{CV_SUMMARY}.md").read_text() == text
    refit_model = f"ckpt_path={run}/refit/checkpoints/best.ckpt"
    with pytest.raises(ConfigError, match="was trained with no val split"):
        evaluate(make_config(refit_model, "split=val", config_name="eval", run_dir="eval"))


@pytest.mark.slow
def test_the_command_prints_and_writes_the_summary(tmp_path):
    result = run_entry_point("train.py", *WINE, "cv.folds=3", data_dir=tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Cross-validation, 3 folds (mean ± std, min to max):" in result.stdout
    run = next((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert (run / f"{CV_SUMMARY}.md").is_file() and (run / "fold_3" / METRICS).is_file()


@pytest.mark.slow
def test_an_optuna_search_tunes_on_the_folds_mean(tmp_path):
    optuna = pytest.importorskip("optuna")
    search = ["hparams_search=mnist_optuna", *SWEEP_ON_SYNTHETIC_DATA]
    sweep = multirun(tmp_path, *search, "cv.folds=2", "hydra.sweeper.n_trials=2")
    study = optuna.load_study(study_name="mnist_optuna", storage=f"sqlite:///{sweep}/optuna.db")
    assert len(study.trials) == 2
    for trial in study.trials:
        job = sweep / str(trial.number)
        folds = [json.loads((fold_folder(job, i) / METRICS).read_text()) for i in range(2)]
        mean = (folds[0]["val/acc_best"] + folds[1]["val/acc_best"]) / 2
        assert trial.value == pytest.approx(mean)
        assert trial.intermediate_values == {}  # no pruning: the folds' epochs are no one curve


@pytest.mark.slow
def test_a_stopped_cross_validation_continues_at_its_next_fold(tmp_path):
    """Ctrl+C during fold 2: resume=auto reads fold 1 back, continues fold 2 from its last
    checkpoint, and trains fold 3."""
    args = [*QUIET, *WINE, "trainer.max_epochs=40", "cv.folds=3"]
    env_root = {"LITLAB_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *args]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**os.environ, **env_root},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = tmp_path / "outputs" / "train" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob("*/fold_2/checkpoints/last.ckpt")):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    run = next(runs.iterdir())
    first = (fold_folder(run, 0) / METRICS).read_text()
    assert not (fold_folder(run, 1) / METRICS).exists()

    result = run_entry_point("train.py", *args, "resume=auto", data_dir=tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "finished before" in result.stdout + result.stderr
    assert (fold_folder(run, 0) / METRICS).read_text() == first  # read back, not retrained
    assert (fold_folder(run, 1) / "config.1.yaml").is_file()  # continued in its folder
    assert (fold_folder(run, 2) / METRICS).is_file() and (run / METRICS).is_file()
    assert list(runs.iterdir()) == [run]


@pytest.mark.slow
def test_cross_validation_under_ddp_runs_every_fold_in_both_processes(tmp_path):
    result = run_entry_point(
        "train.py", *WINE, "cv.folds=2", "trainer=ddp_cpu", data_dir=tmp_path, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [run] = (tmp_path / "outputs" / "train" / "runs").iterdir()
    folds = [json.loads((fold_folder(run, i) / METRICS).read_text()) for i in range(2)]
    summary = json.loads((run / METRICS).read_text())
    assert summary["test/acc"] == pytest.approx((folds[0]["test/acc"] + folds[1]["test/acc"]) / 2)
    assert result.stdout.count("Cross-validation, 2 folds") == 1  # rank zero sums up


def test_cv_folds_one_on_the_command_line_is_one_paragraph(tmp_path):
    result = run_entry_point("train.py", *WINE, "cv.folds=1", data_dir=tmp_path, cwd=tmp_path)
    assert result.returncode == 2
    assert "cv.folds=1 is invalid" in error_paragraph(result)
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.json"))
