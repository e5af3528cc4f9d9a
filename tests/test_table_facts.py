"""What a user's table states about itself, before anything is built."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from litlab.config.table_facts import infer_task, table_facts
from litlab.errors import DataError


def write_table(tmp_path: Path, rows: int = 40, **columns) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=rows),
            "colour": rng.choice(["red", "blue"], rows),
            **{k: v(rng, rows) if callable(v) else v for k, v in columns.items()},
        }
    )
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("target", "task", "classes"),
    [
        (lambda rng, n: rng.choice(["yes", "no"], n), "binary", ("no", "yes")),
        (lambda rng, n: rng.integers(0, 12, n), "multiclass", tuple(str(i) for i in range(12))),
        (lambda rng, n: rng.normal(size=n) * 10, "regression", None),
        (lambda rng, n: rng.integers(0, 500, n), "regression", None),
    ],
)
def test_the_task_is_inferred_from_the_target(tmp_path, target, task, classes):
    facts = table_facts(str(write_table(tmp_path, rows=300, y=target)), "y")
    assert facts.task == task
    assert facts.class_names == classes
    assert facts.numeric == ("size",)
    assert facts.categorical == (("colour", ("blue", "red")),)
    assert facts.feature_names == ["size", "colour=blue", "colour=red"]


def test_features_drop_and_categorical_choose_and_encode_columns(tmp_path):
    path = str(write_table(tmp_path, y=lambda rng, n: rng.normal(size=n), grade=[1, 2] * 20))
    facts = table_facts(path, "y", drop=["colour"], categorical=["grade"])
    assert facts.feature_names == ["size", "grade=1", "grade=2"]
    assert table_facts(path, "y", features=["size"]).feature_names == ["size"]
    assert table_facts(path, "y", task="multiclass").task == "multiclass"


@pytest.mark.parametrize(
    ("columns", "target", "words"),
    [
        ({"y": [1.0] * 40}, "missing", "data.target=missing is not a column"),
        ({"y": [np.nan] * 40}, "y", "empty in every row"),
        ({"y": ["a"] * 40}, "y", "holds one value only"),
        ({"y": [1.0] * 40, "id": [f"row{i}" for i in range(40)]}, "y", "40 distinct values"),
    ],
)
def test_a_table_litlab_cannot_use_is_one_paragraph(tmp_path, columns, target, words):
    path = write_table(tmp_path, **columns)
    with pytest.raises(DataError, match=words):
        table_facts(str(path), target, max_categories=20)


def test_a_table_of_one_row_and_a_parquet_file_without_pyarrow(tmp_path, monkeypatch):
    one = tmp_path / "one.csv"
    one.write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match="has 1 row"):
        table_facts(str(one), "y")
    pd.DataFrame({"x": range(10), "y": range(10)}).to_parquet(tmp_path / "t.parquet")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # as if not installed
    monkeypatch.setitem(__import__("sys").modules, "fastparquet", None)
    with pytest.raises(DataError, match=r"needs pyarrow.*pip install"):
        table_facts(str(tmp_path / "t.parquet"), "y")


def test_infer_task_reads_few_whole_numbers_as_classes():
    assert infer_task(pd.Series([0, 1, 2, 1])) == "multiclass"
    assert infer_task(pd.Series([0.5, 1.5, 2.0, 7.25])) == "regression"
    assert infer_task(pd.Series([True, False])) == "binary"


def test_a_number_column_with_a_few_typos_is_named_not_read_as_categories(tmp_path):
    """One "?" among prices made the target text: 99 classes and a misleading message."""
    values = [str(v) for v in range(60)]
    values[7] = "?"
    path = write_table(tmp_path, rows=60, price=values)
    with pytest.raises(DataError, match=r"column price .* holds numbers but also '\?' in 1 row"):
        table_facts(str(path), "price")


def test_an_empty_column_and_a_single_column_without_brackets(tmp_path):
    path = write_table(tmp_path, y=lambda rng, n: rng.normal(size=n), note=[np.nan] * 40)
    with pytest.raises(DataError, match=r"note .* empty in every row.*data.drop=\[note\]"):
        table_facts(str(path), "y")
    assert table_facts(str(path), "y", drop="note").feature_names[0] == "size"
