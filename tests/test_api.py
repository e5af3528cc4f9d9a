"""litlab from Python (litlab.api): the command line's overrides and messages, results read
from the run folder, nothing of Hydra, logging or the working folder left changed, and the
quickstart notebook run in a real Jupyter kernel."""

import logging
import os
import re
import warnings
from pathlib import Path

import nbformat
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from nbclient import NotebookClient

import litlab
from litlab import PROJECT_ROOT
from litlab.api import RunResult
from litlab.build import build_datamodule
from litlab.data.inputs import array_inputs
from litlab.errors import DataError
from litlab.run_folder import METRICS
from tests.helpers import (
    QUIET,
    REAL_DATA_DIR,
    error_paragraph,
    requires_real_mnist,
    run_entry_point,
)

IRIS = ["data=iris", "model=mlp", "model.hidden_sizes=[8]", "trainer.max_epochs=2", *QUIET]
NOTEBOOK = PROJECT_ROOT / "docs" / "notebooks" / "quickstart.ipynb"


@pytest.fixture
def own_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run folders under tmp_path/outputs (not the checkout's), from tmp_path."""
    monkeypatch.setenv("LITLAB_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "outputs"


def global_state() -> dict:
    root = logging.getLogger()
    return {
        "hydra": GlobalHydra.instance().is_initialized(),
        "hydra config": HydraConfig.initialized(),
        "cwd": os.getcwd(),
        "root handlers": list(root.handlers),
        "root level": root.level,
        "lightning handlers": list(logging.getLogger("lightning.pytorch").handlers),
        "warning filters": list(warnings.filters),
        "showwarning": warnings.showwarning,
    }


def test_an_override_typo_raises_the_command_lines_message(own_outputs, tmp_path):
    before = global_state()
    with pytest.raises(litlab.LitlabError) as raised:
        litlab.fit("data=iris", "optimizer.lrr=0.1")
    command = run_entry_point(
        "train.py", "data=iris", "optimizer.lrr=0.1", data_dir=tmp_path, cwd=tmp_path
    )
    assert command.returncode == 2
    # the same paragraph; the console adds how to see a traceback
    assert (
        error_paragraph(command)
        == f"Error: {raised.value} (Set HYDRA_FULL_ERROR=1 for a traceback.)"
    )
    assert "did you mean optimizer.lr?" in str(raised.value)
    assert global_state() == before
    assert not own_outputs.exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model=mlpp"], "model=mlpp is not an option of model; did you mean model=mlp?"),
        (["cv.folds=1"], "cv.folds=1 is invalid: it must be an integer >= 2"),
        (["logger=tensorboard", "seed=-1"], "seed=-1 is invalid"),
    ],
)
def test_bad_input_is_one_litlab_error_and_leaves_nothing(own_outputs, overrides, expected):
    before = global_state()
    with pytest.raises(litlab.LitlabError, match=re.escape(expected)):
        litlab.fit("data=iris model=mlp", overrides)
    assert global_state() == before
    assert not own_outputs.exists() or not any(own_outputs.rglob("*.yaml"))


def test_several_devices_are_refused_from_python(own_outputs):
    with pytest.raises(litlab.LitlabError, match="Train on several devices from the command"):
        litlab.fit("data=iris", "trainer=ddp_cpu")
    assert not own_outputs.exists()


def test_overrides_come_as_arguments_lists_or_one_line():
    from litlab.api import _override_list

    expected = ["model=cnn", "seed=1"]
    assert _override_list(["model=cnn", "seed=1"]) == expected
    assert _override_list([["model=cnn", "seed=1"]]) == expected
    assert _override_list(["model=cnn seed=1"]) == expected
    with pytest.raises(litlab.LitlabError, match="is not an override"):
        _override_list([3])


def test_arrays_are_inputs_in_the_data_sets_raw_form(make_config):
    datamodule = build_datamodule(make_config(*IRIS))
    one = array_inputs([5.1, 3.5, 1.4, 0.2], datamodule)  # one sample, without N
    assert one.raw.shape == (1, 4) and one.names == ["[0]"] and not one.is_image
    with pytest.raises(DataError) as raised:
        array_inputs(torch.zeros(2, 5), datamodule)
    message = str(raised.value)
    assert "Inputs of shape (2, 5) do not fit the model, which takes (4,)" in message
    assert "sepal length (cm)" in message and "(N, 4)" in message
    with pytest.raises(DataError, match="neither files nor an array of numbers"):
        array_inputs({"a": 1}, datamodule)


def test_a_folder_without_a_finished_run_is_named(tmp_path):
    with pytest.raises(litlab.LitlabError, match="holds no finished run"):
        RunResult.load(tmp_path)


@pytest.mark.slow
def test_fit_twice_in_one_process_then_evaluate_and_predict(own_outputs, tmp_path):
    before = global_state()
    first = litlab.fit(*IRIS)
    second = litlab.fit(*IRIS, "optimizer.lr=0.01")
    assert global_state() == before
    assert first.run_dir != second.run_dir
    assert first.run_dir.parent == own_outputs / "train" / "runs"
    for result in (first, second):
        assert RunResult.load(result.run_dir).metrics == pytest.approx(result.metrics)
        assert list(result.history["epoch"]) == [0, 1]
        assert "# " in result.report and (result.run_dir / METRICS).is_file()

    flowers = torch.tensor([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])
    predicted = first.predict(flowers)
    assert list(predicted["input"]) == ["[0]", "[1]", "[2]"]
    datamodule = build_datamodule(first_config(first))
    with torch.no_grad():
        logits = first.net(datamodule.normalise(flowers))
    names = datamodule.class_names
    assert list(predicted["predicted"]) == [names[i] for i in logits.argmax(1).tolist()]
    assert list(predicted["top1"]) == list(predicted["predicted"])  # as in predictions.csv
    assert predicted["confidence"].tolist() == pytest.approx(
        logits.softmax(1).max(1).values.tolist(), abs=1e-5
    )
    evaluated = first.evaluate()
    assert evaluated.metrics["test/acc"] == pytest.approx(first.metrics["test/acc"])
    assert evaluated.run_dir.parent == own_outputs / "eval" / "runs"
    assert global_state() == before


@pytest.mark.slow
def test_the_recommended_settings_applied_reach_the_runs_log(own_outputs):
    result = litlab.fit("data=diabetes", "model=mlp", "trainer.max_epochs=1", *QUIET)
    log_lines = (result.run_dir / "train.log").read_text().splitlines()
    applied = [line for line in log_lines if "Recommended settings applied" in line]
    assert len(applied) == 1 and applied[0].endswith("loss=mse (data.task=regression)")


def first_config(result: RunResult):
    from omegaconf import OmegaConf

    return OmegaConf.load(result.run_dir / "config.yaml")


@pytest.mark.slow
def test_a_cross_validation_from_python_returns_its_folds(own_outputs):
    result = litlab.fit("data=wine", *IRIS[1:], "cv.folds=3")
    assert result.is_cross_validation and len(result.folds) == 3
    assert result.metrics["test/acc"] == pytest.approx(
        sum(fold.metrics["test/acc"] for fold in result.folds) / 3
    )
    assert set(result.history["fold"]) == {"fold_1", "fold_2", "fold_3"}
    assert "Cross-validation: 3 folds" in result.report
    with pytest.raises(litlab.LitlabError, match="only with cv.refit=true"):
        result.predict(torch.zeros(1, 13))


@pytest.mark.slow
@requires_real_mnist
def test_the_quickstart_notebook_runs_in_a_jupyter_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("LITLAB_ROOT", str(tmp_path))
    monkeypatch.setenv("LITLAB_DATA_DIR", str(REAL_DATA_DIR))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 3  # the learning curves, the confusion matrix, the drawn digit
    text = "".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for output in outputs
    )
    assert re.search(r"seven\.png\s+7\s", text)  # the drawn digit, read as a 7
    assert "optimizer.lrr is not a key of this config: did you mean optimizer.lr?" in text
    assert len(list((tmp_path / "outputs" / "train" / "runs").iterdir())) == 2
