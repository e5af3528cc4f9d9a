"""data=table: a person's CSV or Parquet table trains, and its checkpoint predicts new rows."""

import numpy as np
import pandas as pd
import pytest
import torch

from litlab.build import build_datamodule, load_trained
from litlab.data.base import Standardisation
from litlab.errors import DataError
from litlab.predict import predict
from litlab.train import train
from tests.helpers import EXAMPLES, compose_quiet, error_paragraph, run_entry_point

WINES = EXAMPLES / "wines.csv"


def table_config(tmp_path, path, target, *extra, run="run"):
    overrides = [
        "data=table",
        f"data.path={path}",
        f"data.target={target}",
        "model=mlp",
        "trainer.max_epochs=30",
        *extra,
    ]
    return compose_quiet(overrides, tmp_path / run)


def test_the_example_wines_train_with_their_text_column_and_gaps_and_predict_new_rows(tmp_path):
    cfg = table_config(tmp_path, WINES, "cultivar")
    assert cfg.data.task == "multiclass"
    assert list(cfg.data.class_names) == ["barbera", "barolo", "grignolino"]
    assert cfg.data.num_features == 13 + 3  # 13 measurements, vineyard one-hot
    metrics = train(cfg)
    assert metrics["test/acc"] >= 0.9
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Prepared: missing values filled from the training split: alcohol (8, median" in report
    assert "vineyard (6, most frequent" in report
    checkpoint = str(tmp_path / "run" / "checkpoints" / "best.ckpt")
    fitted = torch.load(checkpoint, weights_only=False)["TableDataModule"]["preprocessing"]
    assert fitted["categorical"] == [("vineyard", ["hill", "river", "valley"])]
    rows = predict(
        compose_quiet(
            [f"ckpt_path={checkpoint}", f"inputs={EXAMPLES / 'new_wines.csv'}"],
            tmp_path / "predict",
            config_name="predict",
        )
    )
    # the five wines held out of wines.csv (scripts wrote them with these cultivars)
    assert [row["predicted"] for row in rows] == [
        "grignolino",
        "grignolino",
        "grignolino",
        "barolo",
        "barbera",
    ]
    assert [row["input"].rsplit(":", 1)[1] for row in rows] == ["2", "3", "4", "5", "6"]


def test_a_parquet_regression_keeps_its_units_and_the_checkpoint_needs_no_table(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": 50 + 10 * x[:, 0] - 5 * x[:, 1]})
    frame.to_parquet(tmp_path / "t.parquet")
    cfg = table_config(
        tmp_path, tmp_path / "t.parquet", "y", "trainer.max_epochs=8", "data.batch_size=8"
    )
    assert cfg.data.task == "regression" and cfg.data.num_classes is None
    assert train(cfg)["test/r2"] > 0.95
    (tmp_path / "t.parquet").unlink()
    trained = load_trained(str(tmp_path / "run/checkpoints/best.ckpt"), str(tmp_path))
    new = pd.DataFrame({"a": [1.0], "b": [0.0], "y": [None]})
    new.to_csv(tmp_path / "new.csv", index=False)
    raw, lines = trained.datamodule.read_rows(tmp_path / "new.csv")
    value = trained.datamodule.target_units(trained.module(trained.datamodule.normalise(raw)))
    assert lines == [2] and abs(float(value) - 60.0) < 2.0


def test_a_new_table_missing_a_column_is_named(tmp_path):
    cfg = table_config(tmp_path, WINES, "cultivar", "trainer.max_epochs=1")
    train(cfg)
    trained = load_trained(str(tmp_path / "run/checkpoints/last.ckpt"), str(tmp_path))
    pd.DataFrame({"alcohol": [13.0]}).to_csv(tmp_path / "few.csv", index=False)
    with pytest.raises(DataError, match=r"lacks the column\(s\) malic_acid, ash, .* 1 more, "):
        trained.datamodule.read_rows(tmp_path / "few.csv")


def test_a_table_without_the_target_ends_as_one_paragraph(tmp_path):
    result = run_entry_point(
        "train.py",
        "data=table",
        f"data.path={WINES}",
        "data.target=grape",
        data_dir=tmp_path,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data.target=grape is not a column of" in error_paragraph(result)


def test_each_row_is_named_by_its_line_in_the_file(tmp_path):
    datamodule = build_datamodule(table_config(tmp_path, WINES, "cultivar"))
    datamodule.setup()
    lines = WINES.read_text().splitlines()
    targets = datamodule.splits["test"][1]
    for index in range(5):
        file, line = datamodule.sample_name("test", index).split(":")
        cultivar = lines[int(line) - 1].rsplit(",", 1)[1]
        assert file == "wines.csv"
        assert cultivar == datamodule.class_names[int(targets[index])]


def test_a_numeric_column_read_as_categories_is_one_hot_encoded_with_its_gaps_filled(tmp_path):
    """Grades 1 and 2 with a gap are read as 1.0 and 2.0: the categories were named "1.0",
    the encoding compared with "1", and every one-hot input was 0."""
    rng = np.random.default_rng(0)
    grade = rng.choice([1.0, 2.0], 60)
    grade[3] = np.nan
    frame = pd.DataFrame({"grade": grade, "y": np.where(np.nan_to_num(grade) == 2, "b", "a")})
    frame.loc[3, "y"] = "a"
    frame.to_csv(tmp_path / "t.csv", index=False)
    datamodule = build_datamodule(
        table_config(tmp_path, tmp_path / "t.csv", "y", "data.categorical=[grade]")
    )
    datamodule.setup()
    assert datamodule.feature_names == ["grade=1", "grade=2"]
    raw = datamodule.raw_inputs("train")
    assert bool((raw.sum(1) == 1).all())  # each row has exactly one grade


def test_a_checkpoint_refuses_a_table_changed_since_training(tmp_path):
    """Rows added after training would move into the test split, some of them trained on."""
    table = tmp_path / "wines.csv"
    table.write_text(WINES.read_text())
    train(table_config(tmp_path, table, "cultivar", "trainer.max_epochs=1"))
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    load_trained(checkpoint, str(tmp_path)).datamodule.setup()  # unchanged: evaluates
    table.write_text(WINES.read_text() + WINES.read_text().splitlines()[1] + "\n")
    with pytest.raises(DataError, match=r"changed since this model was trained"):
        load_trained(checkpoint, str(tmp_path)).datamodule.setup()


def test_a_one_hot_column_training_never_set_keeps_its_scale():
    """A category only outside the training rows: its column's std was 0, clamped to 1e-8,
    and a 1 at test time became an input of 1e8."""
    scaling = Standardisation.per_feature(torch.tensor([[0.0, 1.0], [0.0, 3.0]]))
    assert scaling.apply(torch.tensor([[1.0, 2.0]])).tolist() == [[1.0, 0.0]]
