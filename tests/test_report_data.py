"""litlab.report_data: report_data.json's declared sections, one writer, a typed reader."""

import json

import pytest

from litlab.report_data import (
    DataSummary,
    EvaluatedSplit,
    Layer,
    ModelSummary,
    TopLoss,
    read_report_data,
    write_section,
)
from litlab.run_folder import REPORT_DATA

DATA = DataSummary("iris", "multiclass", ["a", "b", "c"], None, 4, {"train": 90, "val": 30})


def test_sections_are_written_one_at_a_time_and_read_back_typed(tmp_path):
    write_section(tmp_path, "data", DATA)
    model = ModelSummary("MLP", 10, 10, [Layer("layers.1", "Linear", 10, [2])])
    write_section(tmp_path, "model", model)
    write_section(tmp_path, "top_losses", [TopLoss(3, 1.5, "a", "b", 0.9)])
    stored = json.loads((tmp_path / REPORT_DATA).read_text())
    assert set(stored) == {"data", "model", "top_losses"}  # each writer kept the others
    read = read_report_data(tmp_path / REPORT_DATA)
    assert read.data == DATA and read.model == model
    assert read.top_losses == [TopLoss(3, 1.5, "a", "b", 0.9)]
    assert read.test is None and read.diagnostics is None


def test_an_undeclared_section_or_a_value_of_another_shape_is_refused(tmp_path):
    with pytest.raises(KeyError, match="no section 'extra'"):
        write_section(tmp_path, "extra", DATA)
    with pytest.raises(TypeError, match="section data is"):
        write_section(tmp_path, "data", {"name": "iris"})  # a dict, not the declared dataclass
    with pytest.raises(TypeError, match="section top_losses is"):
        write_section(tmp_path, "top_losses", [DATA])
    assert not (tmp_path / REPORT_DATA).exists()


def test_a_section_of_another_shape_is_left_out_not_fatal(tmp_path):
    write_section(tmp_path, "test", EvaluatedSplit("val", confusion_matrix=[[1, 0], [0, 1]]))
    stored = json.loads((tmp_path / REPORT_DATA).read_text())
    stored["data"] = {"name": "old", "kind": "?"}  # an older litlab's, or edited by hand
    (tmp_path / REPORT_DATA).write_text(json.dumps(stored))
    read = read_report_data(tmp_path / REPORT_DATA)
    assert read.data is None and read.test.split == "val"
