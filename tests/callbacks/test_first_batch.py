"""FirstBatch: the first training batch as the model sees it (images), or its feature
statistics (tables)."""

import json
from pathlib import Path

from PIL import Image

from litlab.train import train
from tests.helpers import compose_quiet, events, mnist_overrides


def test_the_first_batch_is_drawn_as_the_model_sees_it_with_originals_when_augmented(
    tiny_mnist, tmp_path
):
    heights = {}
    for augment in (False, True):
        overrides = mnist_overrides(tiny_mnist, "trainer.max_epochs=1", f"data.augment={augment}")
        cfg = compose_quiet(
            [*overrides, "++callbacks.evaluation_images=null"], tmp_path / str(augment), images=True
        )
        train(cfg)
        folder = Path(cfg.paths.output_dir)
        with Image.open(folder / "plots" / "batch.png") as image:
            heights[augment] = image.size[1]
        (tensorboard_image,) = events(folder).Images("train/batch")
        assert tensorboard_image.step == 0
        assert "plots/batch.png" in (folder / "report.md").read_text()
    assert heights[True] > 1.6 * heights[False]  # 32 originals beside 32 augmented: twice the rows


def test_tabular_data_shows_the_first_batchs_feature_statistics(tmp_path):
    overrides = ["data=wine", "model=mlp", "trainer.max_epochs=1"]
    cfg = compose_quiet([*overrides, "++callbacks.evaluation_images=null"], tmp_path, images=True)
    train(cfg)
    folder = Path(cfg.paths.output_dir)
    batch = json.loads((folder / "report_data.json").read_text())["batch"]
    assert batch["samples"] == 16 and batch["num_features"] == 13  # data.batch_size of wine
    assert batch["features"][0]["name"] == "alcohol"
    assert all(abs(feature["mean"]) < 1.5 for feature in batch["features"])  # standardised
    report = (folder / "report.md").read_text()
    assert "## What the model sees" in report and "| alcohol |" in report
    assert "standardised with the training split's statistics" in report
    assert not (folder / "plots" / "batch.png").exists()
