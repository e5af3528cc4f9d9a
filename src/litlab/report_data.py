"""report_data.json, declared: what report.md is built from besides config.yaml, history.csv and
metrics.json. Each section is a dataclass below, written by one part of a run and read back
typed by the report:

    data         DataSummary      the data set: name, kind of problem, classes, split sizes
    model        ModelSummary     each layer's type, output shape and parameters
    batch        BatchSummary     the first training batch's feature statistics (tables)
    lr_find      LearningRates    the learning-rate finder's curve and suggestion
    diagnostics  Diagnostics      sampled gradient norms and dead-ReLU shares
    test         EvaluatedSplit      the split tested: confusion matrix, regression predictions
    top_losses   list[TopLoss]    the test samples with the highest loss
    stopped_early str             why early stopping ended training (None: it did not)

:func:`write_section` is the one writer: it replaces one section and writes the whole file
atomically (sections come from several callbacks, at different times). :func:`read_report_data`
reads what is there; a section that is missing or of an older shape is None. Imports no torch.
"""

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litlab.run_folder import REPORT_DATA, read_json_object, write_atomically


@dataclass
class DataSummary:
    name: str
    task: str  # multiclass, binary or regression: the report reads it, never guesses it
    class_names: list[str] | None
    input_shape: list[int] | None
    num_features: int
    splits: dict[str, int]  # split name: samples
    notes: list[str] = field(default_factory=list)  # what was done to the data (files skipped...)


@dataclass
class Layer:
    name: str
    type: str
    params: int  # the parameters it holds itself: the rows add up to the total
    output_shape: list[int] | None  # None: not measured (a compiled network)


@dataclass
class ModelSummary:
    name: str
    total_params: int
    trainable_params: int
    layers: list[Layer]


@dataclass
class FeatureStatistics:
    name: str
    mean: float
    std: float
    min: float
    max: float


@dataclass
class BatchSummary:
    samples: int
    num_features: int
    standardised: bool
    features: list[FeatureStatistics]  # the first ones of a wide table


@dataclass
class LearningRates:
    lr: list[float]
    loss: list[float | None]  # None: not finite
    suggestion: float | None  # None: the loss never fell
    lightning_suggestion: float | None
    applied: bool


@dataclass
class Diagnostics:
    steps: list[int]
    grad_norm: dict[str, list[float]]  # layer (forward order, then "total"): a norm per step
    dead_relu: dict[str, list[float]]  # ReLU layer: its dead share per step
    gradient_clip_val: float | None


@dataclass
class EvaluatedSplit:
    split: str  # test, or what eval.py evaluated (val)
    confusion_matrix: list[list[int]] | None = None  # rows: true classes
    true: list[float] | None = None  # regression: a sample of the targets ...
    predicted: list[float] | None = None  # ... and the predictions
    loss_spread: float | None = None  # standard deviation of the per-sample loss (top losses')


@dataclass
class TopLoss:
    index: int  # position in the split tested
    loss: float
    true: str | float  # a class name, or a regression target in its units
    predicted: str | float
    confidence: float | None = None  # classification: the predicted class's probability
    name: str | None = None  # the sample's file, or table line, where the data set knows it


@dataclass
class ReportData:
    data: DataSummary | None = None
    model: ModelSummary | None = None
    batch: BatchSummary | None = None
    lr_find: LearningRates | None = None
    diagnostics: Diagnostics | None = None
    test: EvaluatedSplit | None = None
    top_losses: list[TopLoss] = field(default_factory=list)
    stopped_early: str | None = None  # why early stopping ended training, if it did


SECTIONS = tuple(field.name for field in dataclasses.fields(ReportData))


def write_section(run: Path, name: str, value: Any) -> Path:
    """Replace section ``name`` of ``<run>/report_data.json`` with ``value`` (its declared
    dataclass, or a list of them), keeping the other sections."""
    kind = typing.get_type_hints(ReportData).get(name)
    if kind is None:
        raise KeyError(f"report_data.json has no section {name!r}; its sections: {SECTIONS}")
    if not _declared(kind, value):
        raise TypeError(f"report_data.json's section {name} is a {kind}, not {value!r}")
    path = run / REPORT_DATA
    stored = read_json_object(path) if path.is_file() else {}
    stored[name] = _plain(value)
    return write_atomically(path, json.dumps(stored) + "\n")


def read_report_data(path: Path) -> ReportData:
    """The sections of a report_data.json; one that cannot be read (a file of an older
    litlab, edited by hand) is left out."""
    stored = read_json_object(path)
    found = {}
    for name, kind in typing.get_type_hints(ReportData).items():
        if stored.get(name) is not None:
            try:
                found[name] = _built(kind, stored[name])
            except (TypeError, KeyError, AttributeError):
                continue
    return ReportData(**found)


def _declared(kind: Any, value: Any) -> bool:
    """Whether ``value`` is what a section declares: its dataclass, or a list of them."""
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return isinstance(value, list) and all(isinstance(entry, item) for entry in value)
    options = typing.get_args(kind)
    if value is None:
        return type(None) in options
    return isinstance(value, tuple(a for a in options if a is not type(None)))


def _built(kind: Any, value: Any) -> Any:
    """``value`` (JSON) as the declared ``kind``: dataclasses field by field, lists item by
    item, an optional dataclass when given; plain values as they are."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{name: _built(hints[name], item) for name, item in value.items()})
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return [_built(item, entry) for entry in value]
    classes = [a for a in typing.get_args(kind) if dataclasses.is_dataclass(a)]
    if classes and value is not None:  # DataSummary | None
        return _built(classes[0], value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
