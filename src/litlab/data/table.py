"""A person's own table (``data=table data.path=FILE data.target=COLUMN``), CSV or Parquet, read
with pandas: numeric columns standardised, text columns one-hot encoded, missing values filled,
all with the training split's statistics, which the checkpoint keeps so that predict.py applies
the same steps to new rows."""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from litlab.config.domains import CountOrFraction, example, int_at_least
from litlab.config.entries import checked
from litlab.config.sources import TableFacts, class_label, read_table_file, table_facts
from litlab.data.base import (
    Split,
    Standardisation,
    TensorDataModule,
    held_out_counts,
    seeded_split,
    stratified_split,
)
from litlab.errors import DataError, listed

log = logging.getLogger(__name__)


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
        features: Sequence[str] | None = None,
        drop: Sequence[str] = (),
        categorical: Sequence[str] | None = None,
        max_categories: Annotated[int, example(int_at_least(2), 50)] = 50,
        val_size: CountOrFraction = 0.2,
        test_size: CountOrFraction = 0.2,
        **facts,
    ) -> None:
        super().__init__(**facts)
        self.path, self.target = Path(path).expanduser(), target
        self.features = list(features) if features is not None else None
        self.drop, self.max_categories = list(drop or ()), max_categories
        self.categorical = list(categorical) if categorical is not None else None
        self.val_size, self.test_size = val_size, test_size
        self.name = self.path.stem
        self.fitted: dict[str, Any] | None = None  # the preprocessing, from the training split

    # -- the preprocessing travels in the checkpoint (Lightning stores a data module's state) ---
    def state_dict(self) -> dict[str, Any]:
        if self.fitted is None:
            return {}
        state = dict(self.fitted)
        for name in ("input_scaling", "target_scaling"):
            scaling = getattr(self, name)
            if scaling is not None:
                state[name] = [scaling.mean.tolist(), scaling.std.tolist()]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.fitted = {k: v for k, v in state.items() if not k.endswith("_scaling")}
        for name in ("input_scaling", "target_scaling"):
            if name in state:
                mean, std = state[name]
                setattr(self, name, Standardisation(torch.tensor(mean), torch.tensor(std)))

    def _scaling(self, name: str) -> Standardisation | None:
        if self.fitted is None:
            self.setup()
        return getattr(self, name)

    @property
    def feature_names(self) -> list[str]:
        if self.fitted is None:
            self.fitted = self._columns(self._facts())
        return _names(self.fitted)

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

    @staticmethod
    def _columns(facts: TableFacts) -> dict[str, Any]:
        return {
            "numeric": list(facts.numeric),
            "categorical": [[column, list(values)] for column, values in facts.categorical],
            "fill": {},
        }

    def load_splits(self) -> dict[str, Split]:
        facts = self._facts()
        frame = read_table_file(self.path)
        lines = frame.index.to_numpy() + 2  # the file's line of each row: after the header
        known = frame[self.target].notna().to_numpy()
        if not known.all():
            note = f"{int((~known).sum())} row(s) without a target ({self.target}) left out"
            self.preparation_notes.append(note)
            log.warning("%s.", note)
            frame, lines = frame[known].reset_index(drop=True), lines[known]
        targets = self._targets(frame, facts)
        val_count, test_count = held_out_counts(self.val_size, self.test_size, len(frame))
        if self.task == "regression":
            train, val, test = seeded_split(len(frame), [val_count, test_count], self.seed)
        else:
            train, val, test = stratified_split(
                targets, val_count, test_count, self.seed, f"the table {self.path.name}"
            )
        self._lines = {"train": lines[train], "val": lines[val], "test": lines[test]}
        self.fitted = self._columns(facts)
        self._fit_fill(frame.iloc[train.numpy()])
        inputs = self.encode(frame, note=True)
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
        return f"{self.path.name}:{self._lines[split][index]}"

    def _targets(self, frame: Any, facts: TableFacts) -> torch.Tensor:
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

    def _fit_fill(self, train: Any) -> None:
        """What fills a missing value: the training split's median or most frequent value."""
        assert self.fitted is not None
        fill = {}
        for column in self.fitted["numeric"]:
            median = _numbers(train[column], column, self.path).median()
            fill[column] = float(median) if median == median else 0.0  # all missing: 0
        for column, values in self.fitted["categorical"]:
            counts = train[column].dropna().astype(str).value_counts()
            fill[column] = str(counts.index[0]) if len(counts) else values[0]
        self.fitted["fill"] = fill

    def encode(self, frame: Any, note: bool = False) -> torch.Tensor:
        """Rows of a DataFrame (the table's columns) as raw model inputs: numeric columns as they
        are, then one 0/1 input per category; missing values filled (``note``: said in the
        report)."""
        assert self.fitted is not None
        fill, filled = self.fitted["fill"], []
        parts = []
        for column in self.fitted["numeric"]:
            values = _numbers(frame[column], column, self.path)
            missing = int(values.isna().sum())
            if missing:
                filled.append(f"{column} ({missing}, median {fill[column]:.4g})")
            parts.append(values.fillna(fill[column]).to_numpy(dtype=np.float32)[:, None])
        for column, categories in self.fitted["categorical"]:
            values = frame[column]
            missing = int(values.isna().sum())
            if missing:
                filled.append(f"{column} ({missing}, most frequent {fill[column]!r})")
            text = values.astype(object).where(values.notna(), fill[column]).map(class_label)
            parts.append(np.stack([(text == c).to_numpy(np.float32) for c in categories], 1))
        if note and filled:
            message = f"missing values filled from the training split: {', '.join(filled)}"
            self.preparation_notes.append(message)
            log.info("%s%s.", message[0].upper(), message[1:])
        return torch.from_numpy(np.concatenate(parts, axis=1))

    def read_rows(self, path: Path) -> tuple[torch.Tensor, list[int]]:
        """New rows for predict.py (CSV or Parquet, the table's column names; the target and
        other columns may be there and are ignored), as raw inputs, with their line numbers."""
        if self.fitted is None:
            self.setup()
        assert self.fitted is not None
        frame = read_table_file(path)
        columns = [*self.fitted["numeric"], *(c for c, _ in self.fitted["categorical"])]
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise DataError(
                f"The table {path} lacks the column(s) {listed(missing)}, which the model was "
                f"trained on (its inputs: {listed(columns)}). Add them; an empty cell is filled "
                "as in training."
            )
        unknown = {
            column: sorted(set(frame[column].dropna().map(class_label)) - set(categories))
            for column, categories in self.fitted["categorical"]
        }
        for column, values in unknown.items():
            if values:
                log.warning(
                    "%s: %s holds %s, not seen in training: those rows get no %s category.",
                    path,
                    column,
                    listed([repr(v) for v in values], 5),
                    column,
                )
        offset = 2 if Path(path).suffix.lower() == ".csv" else 1  # the header is line 1
        return self.encode(frame), [row + offset for row in range(len(frame))]

    def describe_raw_inputs(self) -> str:
        """What an exported model's caller does before it: the ONNX graph standardises, but
        filling and one-hot encoding are left to the caller."""
        assert self.fitted is not None or self.feature_names
        fitted = self.fitted or {}
        fill = ", ".join(f"{k}={v!r}" for k, v in fitted.get("fill", {}).items())
        return (
            f"features in their own units: {', '.join(self.feature_names)}. A column=value input "
            "is 1 when the row's column holds that value, else 0 (one-hot); fill missing "
            f"values first with: {fill or 'no fill needed'}"
        )


def _names(fitted: dict[str, Any]) -> list[str]:
    onehot = [f"{column}={value}" for column, values in fitted["categorical"] for value in values]
    return [*fitted["numeric"], *onehot]


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
