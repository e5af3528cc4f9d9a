"""Dashboards and reports: what a finished run leaves in TensorBoard and in its folder, read
back with TensorBoard's own EventAccumulator, PIL and the markdown tables."""

import csv
import json
import math
import re
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from tensorboard.plugins.hparams import plugin_data_pb2

from litlab.errors import NonFiniteLossError
from litlab.report import plots
from litlab.report.run import write_run_report
from litlab.report_data import DataSummary, write_section
from litlab.run_folder import failed_job_status, read_history, write_job_status
from litlab.train import train
from tests.helpers import compose_quiet, events, litlab_report, mnist_overrides

CLASSIFICATION = ["data=synthetic_classification", "model=mlp", "trainer.max_epochs=3"]
EVERY_N = 10


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory) -> tuple[Path, dict]:
    """A finished 3-epoch run on synthetic 3-class data (66 steps per epoch)."""
    folder = tmp_path_factory.mktemp("classification") / "run"
    cfg = compose_quiet(
        [*CLASSIFICATION, f"callbacks.diagnostics.every_n_steps={EVERY_N}"], folder, images=True
    )
    return folder, train(cfg)


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 5, f"{path.name} is blank"
        return image.size


def markdown_table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the table under ``## heading`` in a markdown document."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


# -- TensorBoard ------------------------------------------------------------------------------
def test_per_class_metrics_are_logged_by_class_name(classification_run):
    folder, metrics = classification_run
    scalars = set(events(folder).Tags()["scalars"])
    for stage in ("val", "test"):
        for name in ("precision", "recall", "f1"):
            assert {f"{stage}/{name}/{label}" for label in "012"} <= scalars
    # the macro average is the mean of the per-class values
    per_class = [metrics[f"test/f1/{label}"] for label in "012"]
    assert metrics["test/f1"] == pytest.approx(sum(per_class) / 3, abs=1e-6)


def test_confusion_matrices_are_images_per_validation_epoch_and_at_test(classification_run):
    folder, _ = classification_run
    accumulator = events(folder)
    val_images = accumulator.Images("val/confusion_matrix")
    assert [image.step for image in val_images] == [65, 131, 197]  # as val/acc: epochs' ends
    (test_image,) = accumulator.Images("test/confusion_matrix")
    for image in (*val_images, test_image):
        assert image.encoded_image_string.startswith(b"\x89PNG")
        assert image.width >= 300 and image.height >= 150


def test_per_epoch_confusion_image_shades_counts_and_labels_every_class():
    counts = np.array([[50, 0, 5], [2, 40, 0], [0, 0, 30]])
    image = plots.confusion_matrix_image(counts, ["cat", "dog", "a much longer name"], "t")
    assert image.dtype == np.uint8 and image.shape[2] == 3 and image.shape[0] >= 150
    # the panels' cells: darkest where the count is highest, white where it is zero
    dark = image.reshape(-1, 3).sum(axis=1).min()
    assert dark < 200 and (image.reshape(-1, 3) == 255).all(axis=1).mean() > 0.3
    many = plots.confusion_matrix_image(np.eye(47, dtype=int) * 9, [str(i) for i in range(47)], "t")
    assert 600 <= many.shape[1] <= 2000  # too many classes for numbers: shades only


def test_hparams_tab_holds_the_run_hyperparameters_and_real_metrics(classification_run):
    folder, metrics = classification_run
    accumulator = events(folder)
    content = accumulator.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    hparams = {
        key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
        for key, value in session.hparams.items()
    }
    assert hparams["model"] == "mlp" and hparams["optimizer"] == "adam"
    assert hparams["optimizer.lr"] == pytest.approx(0.001)
    seed = OmegaConf.load(folder / "config.yaml").seed  # 42, unless scripts/claims.py shifts it
    assert hparams["data.batch_size"] == 64 and hparams["seed"] == seed
    assert hparams["num_params"] == 20 * 64 + 64 + 64 * 64 + 64 + 64 * 3 + 3
    assert "hp_metric" not in accumulator.Tags()["scalars"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]
    ).experiment
    listed = {info.name.tag for info in experiment.metric_infos}
    assert {"val/acc_best", "test/acc", "test/f1", "test/loss"} <= listed
    # the tab reads each metric from the scalar of the same tag: its last value is the final one
    for tag in listed:
        assert accumulator.Scalars(tag)[-1].value == pytest.approx(metrics[tag], rel=1e-6)


def test_diagnostics_log_gradient_norms_dead_units_and_histograms(classification_run):
    folder, _ = classification_run
    accumulator = events(folder)
    layers = ("layers.1", "layers.3", "layers.5")
    norms = {layer: accumulator.Scalars(f"diagnostics/grad_norm/{layer}") for layer in layers}
    total = accumulator.Scalars("diagnostics/grad_norm/total")
    assert [point.step for point in total] == list(range(0, 198, EVERY_N))
    for index, point in enumerate(total):  # the total is the norm of the layers' norms
        layer_norms = [norms[layer][index].value for layer in layers]
        assert point.value == pytest.approx(math.sqrt(sum(v * v for v in layer_norms)), rel=1e-4)
        assert point.value > 0
    for relu in ("layers.2", "layers.4"):
        dead = [p.value for p in accumulator.Scalars(f"diagnostics/dead_relu/{relu}")]
        assert len(dead) == len(total) and all(0 <= value <= 1 for value in dead)
    histograms = set(accumulator.Tags()["histograms"])
    assert {"weights/layers.1.weight", "weights/layers.5.bias"} <= histograms
    assert {"activations/layers.2", "activations/layers.4"} <= histograms
    assert len(accumulator.Histograms("weights/layers.1.weight")) == 3  # one per epoch
    assert accumulator.Tags()["graph"]


# -- files in the run folder -------------------------------------------------------------------
def test_run_folder_holds_report_plots_and_history(classification_run):
    folder, metrics = classification_run
    for name in ("learning_curves", "confusion_matrix", "per_class_f1"):
        width, height = png_size(folder / "plots" / f"{name}.png")
        assert 300 <= width <= 2000 and 200 <= height <= 2000
    history = read_history(folder / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert [row["step"] for row in history] == [66, 132, 198]
    last = history[-1]
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best"):
        assert last[name] == metrics[name]  # the same float32 digits as metrics.json
    assert all(row["val/loss"] > 0 and row["lr"] == 0.001 for row in history)


def test_report_figures_match_metrics_json_exactly(classification_run):
    folder, _ = classification_run
    stored = json.loads((folder / "metrics.json").read_text())
    report = (folder / "report.md").read_text()
    final = {name: value for name, value in markdown_table(report, "Final metrics")}
    overall = {name: value for name, value in stored.items() if name.count("/") == 1}
    assert final == {name: json.dumps(value) for name, value in overall.items()}
    assert stored["test/acc"] == float(final["test/acc"])
    per_class = markdown_table(report, "Per-class test metrics")
    confusion = json.loads((folder / "report_data.json").read_text())["test"]["confusion_matrix"]
    assert [row[0] for row in per_class] == ["0", "1", "2"]
    for label, precision, recall, f1, support in per_class:
        assert float(precision) == stored[f"test/precision/{label}"]
        assert float(recall) == stored[f"test/recall/{label}"]
        assert float(f1) == stored[f"test/f1/{label}"]
        assert int(support) == sum(confusion[int(label)])
    assert sum(map(sum, confusion)) == 1200  # the whole test split
    # the confusion matrix agrees with the accuracy
    assert sum(confusion[i][i] for i in range(3)) / 1200 == pytest.approx(stored["test/acc"])


def test_report_describes_data_model_and_fit(classification_run):
    folder, _ = classification_run
    report = (folder / "report.md").read_text()
    assert "train 4,200, val 600, test 1,200 samples" in report
    layers = markdown_table(report, "Model")
    assert ["layers.1", "Linear", "64", "1,344"] in layers
    assert ["layers.5", "Linear", "3", "195"] in layers
    verdicts = "good fit|overfitting|underfitting|undertrained|still improving"
    assert re.search(rf"\*\*({verdicts})\*\*", report)
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (folder / image).is_file()


def test_regression_report_plots_predictions_and_residuals(make_config):
    cfg = make_config("data=synthetic_regression", "model=mlp", "loss=mse", "trainer.max_epochs=2")
    metrics = train(cfg)
    folder = Path(cfg.paths.output_dir)
    for name in ("predicted_vs_true", "residuals", "learning_curves"):
        png_size(folder / "plots" / f"{name}.png")
    assert not (folder / "plots" / "confusion_matrix.png").exists()
    test = json.loads((folder / "report_data.json").read_text())["test"]
    assert len(test["true"]) == len(test["predicted"]) == 1200
    mse = np.mean((np.array(test["predicted"]) - np.array(test["true"])) ** 2)
    assert mse == pytest.approx(metrics["test/mse"], rel=1e-4)
    assert "| test/r2 |" in (folder / "report.md").read_text()


def test_image_runs_show_their_top_losses(tiny_mnist, tmp_path):
    overrides = mnist_overrides(tiny_mnist, "model=cnn", "trainer.max_epochs=1")
    cfg = compose_quiet(overrides, tmp_path / "run", images=True)
    train(cfg)
    folder = Path(cfg.paths.output_dir)
    (image,) = events(folder).Images("test/top_losses")
    assert image.encoded_image_string.startswith(b"\x89PNG")
    png_size(folder / "plots" / "top_losses.png")
    report = (folder / "report.md").read_text()
    assert "plots/top_losses.png" in report and "## Top losses" in report


def test_plots_are_real_images_of_sane_size(tmp_path):
    rng = np.random.default_rng(0)
    true = rng.normal(size=300)
    figures = {
        "per_class": plots.per_class_figure(list("abc"), [0.5, 0.9, 0.7], "F1"),
        "scatter": plots.predicted_vs_true_figure(true, true + rng.normal(size=300) * 0.1),
        "residuals": plots.residuals_figure(true, true + rng.normal(size=300) * 0.1),
        "sweep": plots.sweep_figure(["lr=0.1", "lr=1"], [0.9, float("nan")], "val/acc_best"),
    }
    for name, figure in figures.items():
        width, height = png_size(plots.save(figure, tmp_path / f"{name}.png"))
        assert 200 <= width <= 2000 and 150 <= height <= 2000, name
        assert plots.render(figure).shape == (height, width, 3)


def test_one_epoch_curves_are_markers_on_axes_from_zero_with_a_note():
    """Not a dot on ± 0.045 around its value, as matplotlib draws a single point."""
    row = {"epoch": 0, "train/loss": 0.45, "val/loss": 0.3, "train/acc": 0.87, "val/acc": 0.91}
    figure = plots.learning_curves_figure([row], "acc")
    loss, accuracy = figure.axes
    assert loss.get_ylim() == pytest.approx((0, 1.1 * 0.45))
    assert accuracy.get_ylim() == pytest.approx((0, 1.05))  # a share: the whole 0..1
    assert loss.get_xlim() == pytest.approx((-1, 1)) and list(loss.get_xticks()) == [0]
    assert [line.get_marker() for line in loss.get_lines()] == ["o", "s"]
    assert "One epoch only" in figure.get_suptitle()
    stuck = {"train/acc": 0.1135, "val/acc": 0.1135}  # a model that predicts one class
    flat = [{**row, **stuck, "epoch": epoch} for epoch in range(3)]
    assert plots.learning_curves_figure(flat, "acc").axes[1].get_ylim() == pytest.approx((0, 1.05))


def test_a_loss_that_grew_by_orders_of_magnitude_is_drawn_on_a_log_axis():
    history = [{"epoch": e, "train/loss": v} for e, v in enumerate([2.3, 1e6, 1.8e13])]
    loss, _ = plots.learning_curves_figure(history, "acc").axes
    assert loss.get_yscale() == "log"
    normal = [{"epoch": e, "train/loss": v} for e, v in enumerate([2.3, 0.5, 0.2])]
    assert plots.learning_curves_figure(normal, "acc").axes[0].get_yscale() == "linear"


def test_bars_start_at_zero():
    """A bar axis cut short makes 0.97 look several times 0.95."""
    per_class = plots.per_class_figure(list("abc"), [0.95, 0.97, 0.99], "F1").axes[0]
    assert per_class.get_ylim()[0] == 0
    true, noise = np.random.default_rng(0).normal(size=(2, 300))
    _, histogram = plots.residuals_figure(true, true + 0.1 * noise).axes
    assert histogram.get_ylim()[0] == 0


def test_image_grids_tile_eight_to_a_row_with_labels_and_enlarge_small_images(tmp_path):
    rng = np.random.default_rng(0)
    grid = plots.image_grid(rng.normal(size=(10, 1, 28, 28)), ["1 / 2"] * 10, "title")
    assert grid.dtype == np.uint8 and grid.shape[2] == 3
    assert grid.shape[1] == 8 * (3 * 28 + 6) and grid.shape[0] == 22 + 2 * (3 * 28 + 6 + 16)
    assert (grid[..., 0] > grid[..., 1] + 80).any()  # crimson labels
    small = plots.image_grid(rng.normal(size=(3, 3, 8, 8)), ["1"] * 3, "t")  # 8 px, colour
    assert small.shape[0] == 22 + 12 * 8 + 6 + 16  # 8 px tiles enlarged 4x, then drawn 3x
    width, height = png_size(plots.save_image(small, tmp_path / "small.png"))
    assert (height, width) == small.shape[:2]


# -- litlab-report ------------------------------------------------------------------------------
def test_litlab_report_rebuilds_a_run_report_from_its_files(classification_run, tmp_path):
    folder, _ = classification_run
    copy = tmp_path / "copy"
    shutil.copytree(
        folder, copy, ignore=shutil.ignore_patterns("plots", "report.md", "*.ckpt", "tensorboard")
    )
    result = litlab_report(copy)
    assert result.returncode == 0, result.stderr
    assert (copy / "report.md").read_text().replace("copy", "run") == (
        folder / "report.md"
    ).read_text()
    assert {p.name for p in (copy / "plots").iterdir()} == {
        "learning_curves.png",
        "confusion_matrix.png",
        "per_class_f1.png",
    }


def test_litlab_report_on_a_run_that_crashed_half_way(classification_run, tmp_path):
    folder, _ = classification_run
    crashed = tmp_path / "crashed"
    shutil.copytree(folder, crashed, ignore=shutil.ignore_patterns("plots", "report.md", "*.ckpt"))
    (crashed / "metrics.json").unlink()
    (crashed / "report_data.json").unlink()
    result = litlab_report(crashed)
    assert result.returncode == 0, result.stderr
    assert "metrics.json, " not in result.stdout and "report_data.json" in result.stdout
    report = (crashed / "report.md").read_text()
    assert "did not finish" in report and "`metrics.json`" in report
    assert "## Final metrics" not in report and "## Fit diagnosis" in report
    assert (crashed / "plots" / "learning_curves.png").is_file()


def test_a_sweep_job_stopped_by_a_nan_loss_is_reported_as_diverged(classification_run, tmp_path):
    """Its status.json, as the sweep records it, names the NonFiniteLossError."""
    folder, _ = classification_run
    stopped = tmp_path / "stopped"
    shutil.copytree(folder, stopped, ignore=shutil.ignore_patterns("plots", "report.md", "*.ckpt"))
    (stopped / "metrics.json").unlink()
    error = NonFiniteLossError("The training loss became nan at step 140 (epoch 2). Likely ...")
    write_job_status(stopped, failed_job_status(error))
    report = write_run_report(stopped)[0].read_text()
    assert "did not finish (no metrics.json); failed with NonFiniteLossError" in report
    assert "**diverged**: The training loss became nan at step 140 (epoch 2)" in report


@pytest.mark.parametrize("kind", ["empty folder", "missing folder", "a file"])
def test_litlab_report_refuses_what_is_not_a_run_or_sweep(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "empty folder":
        target.mkdir()
    elif kind == "a file":
        target.write_text("hello")
    result = litlab_report(target)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(target) in result.stderr and "outputs/" in result.stderr
    assert not (target / "report.md").exists() if target.is_dir() else True


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("metrics.json", "{not json"),
        ("history.csv", "epoch,step,train/loss\n0,abc,1.0\n"),
        ("report_data.json", "[1, 2]"),
        ("config.yaml", "data: [unclosed\n"),
    ],
)
def test_litlab_report_survives_a_damaged_file(classification_run, tmp_path, name, content):
    folder, _ = classification_run
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged, ignore=shutil.ignore_patterns("plots", "report.md", "*.ckpt"))
    (damaged / name).write_text(content)
    result = litlab_report(damaged)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = (damaged / "report.md").read_text()
    assert f"`{name}`" in report and "unreadable" in report


def hand_made_run(folder: Path, config: dict, history: list[dict]) -> str:
    """report.md of a run folder holding only config.yaml, history.csv and the split sizes
    (30 validation flowers, 90 training ones)."""
    folder.mkdir()
    OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
    with (folder / "history.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    splits = {"train": 90, "val": 30, "test": 30}
    write_section(folder, "data", DataSummary("iris", "multiclass", None, None, 4, splits))
    return write_run_report(folder)[0].read_text()


def history_rows(losses, train_acc, val_acc, lr=0.01) -> list[dict]:
    return [
        {"epoch": epoch, "step": 3 * epoch + 2, "train/loss": loss, "val/loss": loss,
         "train/acc": t, "val/acc": v, "lr": lr}
        for epoch, (loss, t, v) in enumerate(zip(losses, train_acc, val_acc, strict=True))
    ]  # fmt: skip


# a 7-point accuracy gap on 30 validation samples: inside the noise
GAP_IN_NOISE = history_rows([1.0, 0.8, 0.6, 0.5], [0.8, 0.85, 0.9, 0.95], [0.8, 0.82, 0.85, 0.88])


@pytest.mark.parametrize("fold", [0, "refit"])
def test_a_fold_that_cannot_tell_points_to_the_cross_validation_summary(tmp_path, fold):
    """cv.fold, which litlab sets in each fold's config (fold_1 holds cv.fold=0), marks it."""
    config = {"cv": {"folds": 5, "refit": True, "fold": fold}}
    report = hand_made_run(tmp_path / "fold", config, GAP_IN_NOISE)
    assert "**cannot tell**" in report
    assert "This run is one fold of a cross-validation" in report
    assert "cv_summary.md in the folder above" in report and "add cv.folds=5" not in report
    alone = hand_made_run(tmp_path / "alone", {"cv": {"folds": None, "fold": None}}, GAP_IN_NOISE)
    assert "**cannot tell**" in alone and "add cv.folds=5" in alone
    assert "one fold of a cross-validation" not in alone


ONE_CYCLE = {"_target_": "torch.optim.lr_scheduler.OneCycleLR", "max_lr": 0.1}


@pytest.mark.parametrize(
    ("scheduler", "key"), [(ONE_CYCLE, "scheduler.max_lr"), (None, "optimizer.lr")]
)
def test_a_diverged_run_is_told_to_lower_the_key_that_sets_its_learning_rate(
    tmp_path, scheduler, key
):
    history = history_rows([2.3, 1e6, 1.8e13], [0.3] * 3, [0.3] * 3, lr=0.1)
    report = hand_made_run(tmp_path / "run", {"scheduler": scheduler}, history)
    assert "loss grew from 2.3 in the first epoch to 1.8e+13" in report
    assert f"learning rate 10x lower ({key}=0.01)" in report
    assert report.count("optimizer.lr") == (key == "optimizer.lr")


def test_a_cross_validation_summary_has_each_fold_and_their_spread(tmp_path):
    from litlab.report.cv_summary import CrossValidationSummary

    folds = [
        {"val/acc_best": 0.9, "test/acc": 0.8, "test/loss": 0.5, "lr-Adam": 0.001},
        {"val/acc_best": 1.0, "test/acc": 1.0, "test/loss": float("nan"), "lr-Adam": 0.001},
    ]
    summary = CrossValidationSummary(folds, {"test/acc": 0.95, "test/f1": 0.9}, "val/acc_best")
    assert summary.columns == ["val/acc_best", "test/acc", "test/loss"]
    assert summary.means == pytest.approx({"val/acc_best": 0.95, "test/acc": 0.9, "lr-Adam": 0.001})
    summary.write(tmp_path)
    rows = (tmp_path / "cv_summary.csv").read_text().splitlines()
    assert rows[0] == "fold,lr-Adam,test/acc,test/loss,val/acc_best"
    assert rows[3].startswith("mean,0.001,0.9,,0.95")  # a NaN fold: no statistic
    assert rows[4].split(",")[2] == str(statistics.stdev([0.8, 1.0]))
    text = (tmp_path / "cv_summary.md").read_text()
    assert "| **mean ± std** | 0.95 ± 0.07071 (0.9 to 1) | 0.9 ± 0.1414 (0.8 to 1) |  |" in text
    assert "then tested once: test/acc 0.95." in text  # the refit: its headline metrics
    record = json.loads((tmp_path / "cv_summary.json").read_text())
    assert record["fold_metrics"][1]["test/loss"] is None  # JSON has no NaN
    assert summary.console_lines().splitlines()[1:] == [
        "  val/acc_best  0.95 ± 0.07071 (0.9 to 1)",
        "  test/acc      0.9 ± 0.1414 (0.8 to 1)",
    ]
