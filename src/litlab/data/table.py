"""A person's own table (``data=table data.path=FILE data.target=COLUMN``), CSV or Parquet, read
with pandas: numeric columns standardised, text columns one-hot encoded, missing values filled,
all with the training split's statistics, which the checkpoint keeps so that predict.py applies
the same steps to new rows."""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from litlab.config.domains import CountOrFraction, example, int_at_least
from litlab.config.entries import checked
from litlab.config.table_facts import (
    TableFacts,
    class_label,
    column_list,
    input_names,
    read_table_file,
    table_facts,
)
from litlab.data.base import (
    Split,
    Standardisation,
    TensorDataModule,
    held_out_counts,
    refuse_changed_data,
    seeded_split,
    stratified_split,
)
from litlab.errors import DataError, listed

log = logging.getLogger(__name__)


@dataclass
class TablePreprocessing:
    """How rows become raw model inputs, fitted on the training split and kept in the
    checkpoint: the ``numeric`` columns as they are, then one 0/1 input per value of each
    ``categorical`` column (one-hot, in the listed order); a missing cell takes ``fill``'s
    value (a number column's median, a category column's most frequent value)."""

    numeric: list[str]
    categorical: list[tuple[str, list[str]]]
    fill: dict[str, float | str]

    @property
    def feature_names(self) -> list[str]:
        return input_names(self.numeric, self.categorical)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *(column for column, _ in self.categorical)]

    @classmethod
    def fitted(cls, facts: TableFacts, train: Any, path: Path) -> "TablePreprocessing":
        """The fill values of the training rows ``train`` (a DataFrame) for ``facts``' columns."""
        fill: dict[str, float | str] = {}
        for column in facts.numeric:
            median = _numbers(train[column], column, path).median()
            fill[column] = float(median) if median == median else 0.0  # all missing: 0
        for column, values in facts.categorical:
            counts = train[column].dropna().map(class_label).value_counts()
            fill[column] = str(counts.index[0]) if len(counts) else values[0]
        categorical = [(column, list(values)) for column, values in facts.categorical]
        return cls(list(facts.numeric), categorical, fill)

    def encode(self, frame: Any, path: Path) -> tuple[torch.Tensor, list[str]]:
        """Rows of a DataFrame holding the columns as raw model inputs, and which columns had
        gaps filled (``"age (8, median 41)"``)."""
        parts, filled = [], []
        for column in self.numeric:
            values = _numbers(frame[column], column, path)
            missing = int(values.isna().sum())
            if missing:
                filled.append(f"{column} ({missing}, median {self.fill[column]:.4g})")
            parts.append(values.fillna(self.fill[column]).to_numpy(dtype=np.float32)[:, None])
        for column, categories in self.categorical:
            values = frame[column]
            missing = int(values.isna().sum())
            if missing:
                filled.append(f"{column} ({missing}, most frequent {self.fill[column]!r})")
            text = values.map(class_label, na_action="ignore").fillna(self.fill[column])
            parts.append(np.stack([(text == c).to_numpy(np.float32) for c in categories], 1))
        return torch.from_numpy(np.concatenate(parts, axis=1)), filled


class TableDataModule(TensorDataModule):
    """The rows of the table at ``path``; ``target`` names the column to predict, ``features``
    (default: every other column) and ``drop`` choose the inputs, ``categorical`` names numeric
    columns to treat as categories (text and true/false columns always are). A category column
    becomes one input per value (one-hot; at most ``max_categories``); rows without a target
    are left out; missing inputs are filled with the training split's median (numbers) or
    most frequent value (categories). Split with a seed by ``val_size`` and ``test_size``,
    stratified for classes; a regression target is standardised like the inputs."""

    @checked
    def __init__(
        self,
        path: str,
        target: str,
        features: Sequence[str] | str | None = None,
        drop: Sequence[str] | str = (),
        categorical: Sequence[str] | str | None = None,
        max_categories: Annotated[int, example(int_at_least(2), 50)] = 50,
        val_size: CountOrFraction = 0.2,
        test_size: CountOrFraction = 0.2,
        **facts,
    ) -> None:
        super().__init__(**facts)
        self.path, self.target = Path(path).expanduser(), target
        self.features = column_list(features)
        self.drop, self.max_categories = column_list(drop) or [], max_categories
        self.categorical = column_list(categorical)
        self.val_size, self.test_size = val_size, test_size
        self.name = self.path.stem
        self.preprocessing: TablePreprocessing | None = None  # fitted, or from a checkpoint
        self._digest: str | None = None  # of the table loaded, for the checkpoint
        self._trained_on: str | None = None  # the checkpoint's digest, when one was loaded

    # -- the preprocessing travels in the checkpoint (Lightning stores a data module's state) ---
    def state_dict(self) -> dict[str, Any]:
        if self.preprocessing is None:
            return {}
        state: dict[str, Any] = {"preprocessing": asdict(self.preprocessing), "table": self._digest}
        for name in ("input_scaling", "target_scaling"):
            scaling = getattr(self, name)
            if scaling is not None:
                state[name] = [scaling.mean.tolist(), scaling.std.tolist()]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.preprocessing = TablePreprocessing(**state["preprocessing"])
        self._trained_on = state.get("table")  # resume: after setup; load_trained: before
        refuse_changed_data(self._trained_on, self._digest, f"data.path={self.path}")
        for name in ("input_scaling", "target_scaling"):
            if name in state:
                mean, std = state[name]
                setattr(self, name, Standardisation(torch.tensor(mean), torch.tensor(std)))

    def _fitted(self) -> TablePreprocessing:
        if self.preprocessing is None:
            self.setup()
        assert self.preprocessing is not None
        return self.preprocessing

    def _scaling(self, name: str) -> Standardisation | None:
        self._fitted()  # from the checkpoint, else from the training split
        return getattr(self, name)

    @property
    def feature_names(self) -> list[str]:
        if self.preprocessing is not None:
            return self.preprocessing.feature_names
        return self._facts().feature_names

    def _facts(self) -> TableFacts:
        return table_facts(
            str(self.path),
            self.target,
            task=self.task,
            features=self.features,
            drop=self.drop,
            categorical=self.categorical,
            max_categories=self.max_categories,
        )

    def load_splits(self) -> dict[str, Split]:
        facts = self._facts()
        frame = read_table_file(self.path)
        self._digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
        refuse_changed_data(self._trained_on, self._digest, f"data.path={self.path}")
        rows = row_numbers(self.path, frame.index.to_numpy())
        known = frame[self.target].notna().to_numpy()
        if not known.all():
            note = f"{int((~known).sum())} row(s) without a target ({self.target}) left out"
            self.preparation_notes.append(note)
            log.warning("%s.", note)
            frame, rows = frame[known].reset_index(drop=True), rows[known]
        targets = self._targets(frame)
        val_count, test_count = held_out_counts(self.val_size, self.test_size, len(frame))
        if self.task == "regression":
            train, val, test = seeded_split(len(frame), [val_count, test_count], self.seed)
        else:
            train, val, test = stratified_split(
                targets, val_count, test_count, self.seed, f"the table {self.path.name}"
            )
        train, val, test = self.fold_parts([train, val, test], targets, f"data.path={self.path}")
        self._rows = {"train": rows[train], "val": rows[val], "test": rows[test]}
        self.preprocessing = TablePreprocessing.fitted(facts, frame.iloc[train.numpy()], self.path)
        inputs, filled = self.preprocessing.encode(frame, self.path)
        if filled:
            message = f"missing values filled from the training split: {', '.join(filled)}"
            self.preparation_notes.append(message)
            log.info("%s%s.", message[0].upper(), message[1:])
        self.input_scaling = Standardisation.per_feature(inputs[train])
        inputs = self.input_scaling.apply(inputs)
        if self.task == "regression":
            self.target_scaling = Standardisation.per_feature(targets[train])
            targets = self.target_scaling.apply(targets)
        return {
            name: (inputs[idx], targets[idx])
            for name, idx in (("train", train), ("val", val), ("test", test))
        }

    def sample_name(self, split: str, index: int) -> str | None:
        return f"{self.path.name}:{self._rows[split][index]}"

    def _targets(self, frame: Any) -> torch.Tensor:
        values = frame[self.target]
        if self.task == "regression":
            return torch.tensor(values.astype(float).to_numpy(), dtype=torch.float32)
        index = {name: i for i, name in enumerate(self.class_names)}
        labels = [index.get(class_label(v)) for v in values]
        if None in labels:
            raise DataError(
                f"The target {self.target} of {self.path} holds values that are not among "
                f"data.class_names={self.class_names}: the table changed after the run started."
                " Start a new run."
            )
        kind = torch.long if self.task == "multiclass" else torch.float32
        return torch.tensor(labels, dtype=kind)

    def read_rows(self, path: Path) -> tuple[torch.Tensor, list[int]]:
        """New rows for predict.py (CSV or Parquet, the table's column names; the target and
        other columns may be there and are ignored), as raw inputs, with their line numbers
        (CSV) or row numbers (Parquet)."""
        preprocessing = self._fitted()
        frame = read_table_file(path)
        missing = [column for column in preprocessing.columns if column not in frame.columns]
        if missing:
            raise DataError(
                f"The table {path} lacks the column(s) {listed(missing)}, which the model was "
                f"trained on (its inputs: {listed(preprocessing.columns)}). Add them; an empty "
                "cell is filled as in training."
            )
        for column, categories in preprocessing.categorical:
            unseen = sorted(set(frame[column].dropna().map(class_label)) - set(categories))
            if unseen:
                log.warning(
                    "%s: %s holds %s, not seen in training: those rows get no %s category.",
                    path,
                    column,
                    listed([repr(v) for v in unseen], 5),
                    column,
                )
        inputs, _ = preprocessing.encode(frame, Path(path))
        return inputs, list(row_numbers(Path(path), frame.index.to_numpy()))

    def describe_raw_inputs(self) -> str:
        """What an exported model's caller does before it: the ONNX graph standardises, but
        filling and one-hot encoding are left to the caller."""
        preprocessing = self._fitted()
        fill = ", ".join(f"{k}={v!r}" for k, v in preprocessing.fill.items())
        return (
            f"features in their own units: {', '.join(preprocessing.feature_names)}. A "
            "column=value input is 1 when the row's column holds that value, else 0 (one-hot); "
            f"fill missing values first with: {fill}"
        )


def row_numbers(path: Path, index: np.ndarray) -> np.ndarray:
    """Where each row of a table stands in its file: a CSV's line (the header is line 1; pandas
    skips blank lines, below which the numbers run short), a Parquet file's row."""
    return index + (2 if path.suffix.lower() == ".csv" else 1)


def _numbers(series: Any, column: str, path: Path) -> Any:
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce")
    bad = series[values.isna() & series.notna()]
    if len(bad):
        raise DataError(
            f"The column {column} of {path} holds {bad.iloc[0]!r}, which is not a number, in "
            f"{len(bad)} row(s), but the model reads it as a number. Fix those cells, or name "
            f"the column in data.categorical to treat its values as categories."
        )
    return values
