"""evaluate(cfg): a checkpoint tested with the config it was trained with."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from litlab.build import load_trained
from litlab.evaluate import evaluate
from litlab.train import train
from tests.helpers import mnist_overrides


def test_eval_uses_the_checkpoints_own_config(mnist_run, make_config, tmp_path):
    cfg, metrics = mnist_run
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    moved = tmp_path / "moved_data"  # on another machine the data lives elsewhere
    shutil.move(cfg.paths.data_dir, moved)
    # eval.yaml knows nothing of the MLP with 32 hidden units: it must come from the checkpoint
    eval_cfg = make_config(
        f"ckpt_path={best}",
        f"paths.data_dir={moved}",
        config_name="eval",
        run_dir="eval",
    )
    results = evaluate(eval_cfg)
    assert results["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-7)
    assert results["test/f1"] == pytest.approx(metrics["test/f1"], abs=1e-7)
    written = json.loads((Path(eval_cfg.paths.output_dir) / "metrics.json").read_text())
    assert written == pytest.approx(results)


def test_eval_of_a_regression_checkpoint_on_the_validation_split(make_config):
    cfg = make_config("data=synthetic_regression", "model=mlp", "loss=mse", "trainer.max_epochs=2")
    metrics = train(cfg)
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    results = evaluate(
        make_config(f"ckpt_path={best}", "split=val", config_name="eval", run_dir="eval")
    )
    assert set(results) == {"val/loss", "val/mse", "val/mae", "val/r2"}
    assert results["val/loss"] == pytest.approx(metrics["val/loss_best"], rel=1e-5)


@pytest.fixture
def weak_run(tiny_mnist, make_config):
    """Two steps of a small MLP on tiny MNIST: many test images misclassified."""
    overrides = mnist_overrides(tiny_mnist, "model=mlp", "model.hidden_sizes=[8]")
    cfg = make_config(*overrides, "trainer.max_epochs=1", "+trainer.limit_train_batches=2")
    return cfg, train(cfg)


def evaluated(run, make_config, split: str) -> tuple[Path, dict]:
    cfg, _ = run
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    eval_cfg = make_config(
        f"ckpt_path={best}",
        f"split={split}",
        f"paths.data_dir={cfg.paths.data_dir}",
        config_name="eval",
        run_dir=split,
    )
    return Path(eval_cfg.paths.output_dir), evaluate(eval_cfg)


def markdown_table(report: str, heading: str) -> list[list[str]]:
    section = report.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


@pytest.mark.parametrize("split", ["test", "val"])
def test_eval_writes_a_report_whose_tables_equal_its_metrics(mnist_run, make_config, split):
    folder, metrics = evaluated(mnist_run, make_config, split)
    report = (folder / "report.md").read_text()
    assert report.startswith(f"# Evaluation report: {split}")
    assert f"on the {split} split" in report and "history.csv" not in report
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert all(name.startswith(f"{split}/") for name in metrics)
    final = {row[0]: float(row[1]) for row in markdown_table(report, "Final metrics")}
    assert final == {name: value for name, value in metrics.items() if name.count("/") == 1}
    for label, precision, recall, f1, _ in markdown_table(report, f"Per-class {split} metrics"):
        assert float(precision) == metrics[f"{split}/precision/{label}"]
        assert float(recall) == metrics[f"{split}/recall/{label}"]
        assert float(f1) == metrics[f"{split}/f1/{label}"]
    for name in ("confusion_matrix.png", "per_class_f1.png"):
        assert (folder / "plots" / name).stat().st_size > 1000


def test_top_losses_are_sorted_misclassified_samples_of_the_split(weak_run, make_config):
    folder, _ = evaluated(weak_run, make_config, "test")
    data = json.loads((folder / "report_data.json").read_text())
    rows = data["top_losses"]
    assert rows and data["test"]["split"] == "test"
    losses = [row["loss"] for row in rows]
    assert losses == sorted(losses, reverse=True)
    assert all(row["true"] != row["predicted"] for row in rows)
    wrong = sum(
        data["test"]["confusion_matrix"][i][j] for i in range(10) for j in range(10) if i != j
    )
    assert len(rows) == min(32, wrong)
    # each row is the sample it names: its loss is the cross-entropy of that test image
    cfg, _ = weak_run
    trained = load_trained(
        str(Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"), cfg.paths.data_dir
    )
    trained.datamodule.setup()
    images, labels = trained.datamodule.splits["test"]
    index = torch.tensor([row["index"] for row in rows])
    with torch.no_grad():
        logits = trained.module(trained.datamodule.prepare_inputs(images[index]))
    expected = torch.nn.functional.cross_entropy(logits, labels[index].long(), reduction="none")
    assert losses == pytest.approx(expected.tolist(), rel=1e-4)
    assert [row["true"] for row in rows] == [str(int(label)) for label in labels[index]]
    table = markdown_table((folder / "report.md").read_text(), "Top losses")
    assert [float(row[-1]) for row in table] == pytest.approx(losses, abs=5e-4)


def test_most_confused_pairs_are_the_off_diagonal_cells(weak_run, make_config):
    folder, _ = evaluated(weak_run, make_config, "test")
    matrix = json.loads((folder / "report_data.json").read_text())["test"]["confusion_matrix"]
    table = markdown_table((folder / "report.md").read_text(), "Most-confused pairs")
    off_diagonal = sorted(
        (matrix[i][j] for i in range(10) for j in range(10) if i != j and matrix[i][j]),
        reverse=True,
    )
    assert [int(row[2]) for row in table] == off_diagonal[:10]
    for true, predicted, count, _ in table:
        assert matrix[int(true)][int(predicted)] == int(count)


def test_regression_top_losses_are_in_the_targets_units(make_config):
    cfg = make_config("data=diabetes", "model=mlp", "loss=mse", "trainer.max_epochs=2")
    train(cfg)
    data = json.loads((Path(cfg.paths.output_dir) / "report_data.json").read_text())
    rows = data["top_losses"]
    assert len(rows) == 32
    # diabetes: a disease progression score, whole numbers from 25 to 346 (not z-scores)
    assert all(
        25 <= row["true"] <= 346 and abs(row["true"] - round(row["true"])) < 1e-3 for row in rows
    )
    assert all(row["loss"] == pytest.approx((row["predicted"] - row["true"]) ** 2) for row in rows)
    assert [row["loss"] for row in rows] == sorted((row["loss"] for row in rows), reverse=True)
