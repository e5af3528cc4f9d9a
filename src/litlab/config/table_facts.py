"""What a user's table states about itself, read before anything is built: its columns, how
each is encoded, the kind of problem its target poses and the number of features the encoding
gives. conf/data/table.yaml reads these facts through the resolver ``${table:FACT}``, so that a
model's keys interpolate them as they do a shipped data set's; the data module
(:mod:`litlab.data.table`) reads the same facts. Imports no torch; pandas only when used.
"""

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litlab.errors import DataError, listed

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
# A whole-number target with at most this many values is a set of classes (labels 0..9, star
# ratings); with more, a count to regress.
MAX_CLASS_VALUES = 20


@dataclass(frozen=True)
class TableFacts:
    """A table's columns as the model reads them: ``numeric`` ones (standardised) and
    ``categorical`` ones with their categories (one-hot, in this order); the ``task`` its
    ``target`` poses and, for classes, their names (the target's values, sorted)."""

    target: str
    task: str
    class_names: tuple[str, ...] | None
    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def feature_names(self) -> list[str]:
        return input_names(self.numeric, self.categorical)


def input_names(
    numeric: Sequence[str], categorical: Sequence[tuple[str, Sequence[str]]]
) -> list[str]:
    """The model's inputs: each numeric column, then one per category (``colour=red``)."""
    onehot = [f"{column}={value}" for column, values in categorical for value in values]
    return [*numeric, *onehot]


def read_table_file(path: str | os.PathLike) -> Any:
    """The table at ``path`` (CSV or Parquet) as a pandas DataFrame, read once per version of
    the file in a process."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(
            f"data.path={path} is not a file{'' if file.exists() else ' (it does not exist)'}. "
            "Point data.path at a CSV or Parquet table with one row per sample and a column "
            "holding the target (data.target=COLUMN)."
        )
    stat = file.stat()
    return _read_table(file.resolve(), stat.st_size, stat.st_mtime_ns).copy()


@functools.lru_cache(maxsize=4)
def _read_table(file: Path, size: int, mtime: int) -> Any:
    import pandas as pd

    suffix = file.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"data.path={file} is a {suffix or 'suffix-less'} file; litlab reads tables from "
            ".csv and .parquet files. Save the table as one of them."
        )
    try:
        if suffix == ".csv":
            frame = pd.read_csv(file, skipinitialspace=True)
        else:
            frame = pd.read_parquet(file)
    except ImportError as err:
        raise DataError(
            f"Reading the Parquet file {file} needs pyarrow, which is not installed: "
            f'pip install -e ".[tables]" (or pip install pyarrow), or save the table as CSV. '
            f"({err})"
        ) from err
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(
            f"The table {file} could not be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no details'}). Check that it is a "
            "comma-separated UTF-8 CSV (or a Parquet file) with a header row."
        ) from err
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def table_facts(
    path: str,
    target: str,
    task: str | None = None,
    features: Sequence[str] | str | None = None,
    drop: Sequence[str] | str = (),
    categorical: Sequence[str] | str | None = None,
    max_categories: int = 50,
) -> TableFacts:
    """How litlab reads the table: which columns, encoded how, for which kind of problem."""
    frame = read_table_file(path)
    features, drop = column_list(features), column_list(drop) or []
    categorical = column_list(categorical) or []
    chosen = _chosen_columns(frame, path, target, features, drop, categorical)
    for column in [target, *chosen]:
        _refuse_stray_text(frame[column], column, path)
    as_classes = [c for c in chosen if _is_text(frame[c]) or c in categorical]
    encoded = tuple((c, _categories(frame[c], c, path, max_categories)) for c in as_classes)
    numeric = tuple(c for c in chosen if c not in as_classes)
    values = frame[target].dropna()
    kind = task or infer_task(values)
    return TableFacts(target, kind, _classes(values, kind, target, path), numeric, encoded)


def column_list(value: Sequence[str] | str | None) -> list[str] | None:
    """``data.features``, ``data.drop``, ``data.categorical``: a list of columns (one column
    given without brackets, ``data.drop=id``, is a list of one)."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(column) for column in value]


def _chosen_columns(
    frame: Any, path: str, target: str, features: list[str] | None, drop: list[str], categorical
) -> list[str]:
    """The input columns, after the checks that the table can be learned from at all."""
    columns = list(frame.columns)
    if target not in columns:
        raise DataError(
            f"data.target={target} is not a column of {path}; its columns: {listed(columns)}. "
            "Name the column that holds what the model should predict, e.g. "
            f"data.target={columns[-1]}."
        )
    if len(frame) < 5:
        raise DataError(
            f"The table {path} has {len(frame)} row(s): too few to split into training, "
            "validation and test rows. Give a table of at least a few dozen rows."
        )
    unknown = [c for c in [*(features or []), *drop, *categorical] if c not in columns]
    if unknown:
        raise DataError(
            f"data.features, data.drop or data.categorical name {listed(unknown)}, which "
            f"{path} does not have; its columns: {listed(columns)}."
        )
    empty = [c for c in [target, *columns] if frame[c].isna().all()]
    if target in empty:
        raise DataError(
            f"The target column {target} of {path} is empty in every row. Fill it in, or name "
            "another column with data.target=COLUMN."
        )
    chosen = [c for c in (features or columns) if c != target and c not in drop]
    empty_inputs = [c for c in chosen if c in empty]
    if empty_inputs:
        raise DataError(
            f"The column(s) {listed(empty_inputs)} of {path} are empty in every row: nothing to "
            f"learn from. Leave them out with data.drop=[{','.join(empty_inputs)}]."
        )
    if not chosen:
        raise DataError(
            f"No feature columns are left in {path} (target {target}, dropped "
            f"{listed(drop)}). Keep some columns as features."
        )
    return chosen


def _refuse_stray_text(series: Any, column: str, path: str) -> None:
    """A column of numbers with a few cells of text ("?", "n/a", "12,5") is a column of
    numbers with mistakes: read as text it would become categories (or classes)."""
    import pandas as pd

    if not _is_text(series):
        return
    given = series.dropna()
    numbers = pd.to_numeric(given, errors="coerce")
    stray = given[numbers.isna()]
    if 0 < len(stray) <= 0.1 * len(given):
        raise DataError(
            f"The column {column} of {path} holds numbers but also {stray.iloc[0]!r} in "
            f"{len(stray)} row(s) (of {len(given)}). Clear those cells (an empty cell is filled "
            f"from the training rows) or correct them; if its values are names, not numbers, "
            f"it needs more of them."
        )


def _categories(series: Any, column: str, path: str, most: int) -> tuple[str, ...]:
    """A category column's values (its one-hot inputs, in order), at most ``most``."""
    categories = sorted({class_label(v) for v in series.dropna()}, key=_natural)
    if len(categories) > most:
        raise DataError(
            f"The column {column} of {path} holds {len(categories):,} distinct values "
            f"(e.g. {listed([repr(v) for v in categories[:3]])}): one-hot encoded, that is "
            f"{len(categories):,} inputs, more than data.max_categories={most}. An identifier "
            f"or free text says little about the target: leave it out with "
            f"data.drop=[{column}], or raise data.max_categories."
        )
    return tuple(categories)


def _classes(values: Any, kind: str, target: str, path: str) -> tuple[str, ...] | None:
    """The class names of a target (its values, in natural order); None for regression."""
    if kind == "regression":
        if _is_text(values):
            raise DataError(
                f"data.task=regression, but the target {target} of {path} holds text (e.g. "
                f"{values.iloc[0]!r}). Regression needs numbers; leave data.task unset to "
                "classify by its values."
            )
        return None
    names = tuple(sorted({class_label(v) for v in values}, key=_natural))
    if len(names) < 2:
        raise DataError(
            f"The target column {target} of {path} holds one value only ({names[0]!r}): "
            "nothing to classify. Name another column with data.target, or give rows of every "
            "class."
        )
    if kind == "binary" and len(names) != 2:
        raise DataError(
            f"data.task=binary, but the target {target} of {path} holds {len(names)} values "
            f"({listed(list(names))}). Use data.task=multiclass."
        )
    return names


def infer_task(values: Any) -> str:
    """Text, true/false or a few whole numbers: classes (binary for two); else regression."""
    distinct = values.nunique()
    whole = not _is_text(values) and bool((values.astype(float) % 1 == 0).all())
    if _is_text(values) or (whole and distinct <= MAX_CLASS_VALUES):
        return "binary" if distinct == 2 else "multiclass"
    return "regression"


def _is_text(series: Any) -> bool:
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def class_label(value: Any) -> str:
    """A class's name: 3.0 is "3" (pandas reads whole numbers with gaps as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _natural(name: str) -> tuple:
    """Numbers by value ("2" before "10"), then text."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)


def table_fact(fact: str, *, _parent_: Any) -> Any:
    """``${table:FACT}`` in conf/data/table.yaml: task, class_names, num_classes or
    num_features of the table the node describes (``data.task`` given overrides the
    inference)."""
    task = _parent_.task if fact != "task" else None
    facts = table_facts(
        _parent_.path,
        _parent_.target,
        task=task,
        features=_parent_.features,  # a list of columns, or one column's name
        drop=_parent_.drop or (),
        categorical=_parent_.categorical,
        max_categories=_parent_.max_categories,
    )
    if fact == "task":
        return facts.task
    if fact == "class_names":
        return list(facts.class_names) if facts.class_names else None
    if fact == "num_classes":
        return len(facts.class_names) if facts.class_names else None
    if fact == "num_features":
        return len(facts.feature_names)
    raise KeyError(f"table has no fact {fact!r}")
