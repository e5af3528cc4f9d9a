"""export(cfg) and export.py: model.onnx through real onnxruntime, model.pt2 through
torch.export.load, each checked against PyTorch on the test split."""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import litlab
from litlab.build import load_trained
from litlab.errors import ExportError
from litlab.export import export
from litlab.train import train
from tests.helpers import (
    PROJECT_ROOT,
    compose_quiet,
    error_paragraph,
    mnist_overrides,
    run_entry_point,
)

# One short run per model kind: (overrides, task) on tiny MNIST unless the data is named.
MODELS = {
    "cnn": ["model=cnn"],
    "mlp": ["model=mlp", "model.hidden_sizes=[32]"],
    "lstm": ["model=rnn", "model.hidden_size=16"],
    "transformer": ["model=transformer", "model.dim=16", "model.depth=1", "model.heads=2"],
    "perceptron": ["data=synthetic_binary", "model=perceptron", "loss=bce_with_logits"],
    "regression": ["data=diabetes", "model=mlp", "loss=mse"],
}
SLOW_MODELS = {
    "gru_bidirectional": ["model=rnn", "model.cell=gru", "model.bidirectional=true"],
    "rnn_mean": ["model=rnn", "model.cell=rnn", "model.pool=mean", "model.num_layers=2"],
    "compiled_cnn": ["model=cnn", "model.compile=true"],
    "adding_gru": [
        "data=adding",
        "data.seq_len=12",
        "data.num_samples=300",
        "model=rnn",
        "model.cell=gru",
        "loss=mse",
    ],
}


def trained_checkpoint(make_config, tiny_mnist, overrides: list[str]) -> Path:
    data = [] if any(o.startswith("data=") for o in overrides) else mnist_overrides(tiny_mnist)
    cfg = make_config(*data, *overrides, "trainer.max_epochs=1")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"


def export_config(checkpoint: Path, data_dir: Path, *overrides: str):
    """export.yaml has no trainer: composed without the QUIET trainer settings."""
    options = [f"ckpt_path={checkpoint}", f"paths.data_dir={data_dir}", *overrides]
    return compose_quiet(options, checkpoint.parents[2] / "exported", "export", quiet=False)


def onnx_round_trip(make_config, tiny_mnist, overrides):
    checkpoint = trained_checkpoint(make_config, tiny_mnist, overrides)
    path, check = export(export_config(checkpoint, tiny_mnist))
    trained = load_trained(str(checkpoint), str(tiny_mnist))
    raw = trained.datamodule.raw_inputs("test")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (raw[:1], raw[:37]):  # the batch axis is free
        got = session.run(None, {"input": batch.numpy()})[0]
        with torch.no_grad():
            outputs = trained.module(trained.datamodule.normalise(batch))
        if trained.module.hparams.task == "regression":
            outputs = trained.datamodule.target_units(outputs)
        np.testing.assert_allclose(got, outputs.numpy(), atol=1e-4, rtol=0)
    assert check.samples == len(raw) and check.max_difference <= 1e-4
    return path, check, trained


# The CNN and the MLP by default; the other kinds (2-4 s each) with the slow tests.
FAST_KINDS = ("cnn", "mlp")


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=() if k in FAST_KINDS else pytest.mark.slow) for k in MODELS]
)
def test_onnx_export_of_every_model_kind_runs_in_onnxruntime(make_config, tiny_mnist, kind):
    path, check, trained = onnx_round_trip(make_config, tiny_mnist, MODELS[kind])
    if trained.module.hparams.task != "regression":
        assert check.same_class == check.samples


@pytest.mark.slow
@pytest.mark.parametrize("kind", SLOW_MODELS)
def test_onnx_export_of_more_recurrent_and_compiled_models(make_config, tiny_mnist, kind):
    onnx_round_trip(make_config, tiny_mnist, SLOW_MODELS[kind])


def test_onnx_metadata_names_classes_versions_and_the_input(make_config, tiny_mnist):
    checkpoint = trained_checkpoint(make_config, tiny_mnist, MODELS["cnn"])
    path, _ = export(export_config(checkpoint, tiny_mnist))
    model = onnx.load(str(path))
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(metadata["class_names"]) == [str(digit) for digit in range(10)]
    assert metadata["litlab_version"] == litlab.__version__
    assert metadata["torch_version"] == torch.__version__
    assert metadata["input"].startswith("float32 [batch, 1, 28, 28] in the data set's own units")
    assert "pixels 0..255" in metadata["input"]
    (batch,) = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim[:1]]
    assert batch  # a named, free dimension


def test_pt2_export_loads_with_torch_export_load(make_config, tiny_mnist):
    checkpoint = trained_checkpoint(make_config, tiny_mnist, MODELS["cnn"])
    path, check = export(export_config(checkpoint, tiny_mnist, "format=pt2"))
    assert path.name == "model.pt2" and path.stat().st_size < 2_000_000  # no data inside
    program = torch.export.load(str(path))
    trained = load_trained(str(checkpoint), str(tiny_mnist))
    raw = trained.datamodule.raw_inputs("test")[:5]
    with torch.no_grad():
        expected = trained.module(trained.datamodule.normalise(raw))
    torch.testing.assert_close(program.module()(raw), expected)
    assert check.same_class == check.samples == 200


@pytest.mark.slow  # two Python starts that import torch and the ONNX exporter: 15 s
def test_export_py_prints_its_check_and_refuses_a_missing_extra(make_config, tiny_mnist, tmp_path):
    import subprocess

    checkpoint = trained_checkpoint(make_config, tiny_mnist, MODELS["mlp"])
    command = [str(PROJECT_ROOT / "export.py"), f"ckpt_path={checkpoint}"]
    env = {"LITLAB_DATA_DIR": str(tiny_mnist), "LITLAB_ROOT": str(tmp_path), "PATH": ""}
    done = subprocess.run(
        [sys.executable, *command, "hydra.run.dir=ok"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the same class for 200 of 200" in done.stdout
    assert (tmp_path / "ok" / "model.onnx").is_file()
    # Python refuses to import a module whose sys.modules entry is None: as if not installed
    without = "import sys, runpy; sys.modules['onnxscript'] = None; sys.argv = sys.argv[1:]; "
    without += "runpy.run_path(sys.argv[0], run_name='__main__')"
    refused = subprocess.run(
        [sys.executable, "-c", without, *command, "hydra.run.dir=refused"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2
    message = error_paragraph(refused)
    assert "format=onnx needs onnxscript, which is not installed." in message
    assert 'Install the export extra: pip install -e ".[export]"' in message
    assert not (tmp_path / "refused" / "model.onnx").exists()


def test_an_export_that_differs_from_pytorch_is_refused_and_leaves_no_file(make_config, tiny_mnist):
    checkpoint = trained_checkpoint(make_config, tiny_mnist, MODELS["cnn"])
    cfg = export_config(checkpoint, tiny_mnist, "tolerance=1e-12")
    with pytest.raises(ExportError, match=r"does not reproduce the PyTorch model: max"):
        export(cfg)
    assert list(Path(cfg.paths.output_dir).iterdir()) == []  # no model, no partial file


def test_without_the_check_no_data_is_needed(make_config, tiny_mnist, tmp_path):
    checkpoint = trained_checkpoint(make_config, tiny_mnist, MODELS["mlp"])
    path, check = export(export_config(checkpoint, tmp_path / "no_data_here", "verify=false"))
    assert check is None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((3, 1, 28, 28), np.float32)})[0].shape == (3, 10)


def test_a_full_disk_during_export_is_one_paragraph_and_keeps_no_partial_file(
    make_config, tiny_mnist, tmp_path
):
    """It escaped as an OSError traceback; a file size limit fails the write as a full disk."""
    checkpoint = trained_checkpoint(make_config, tiny_mnist, MODELS["mlp"])  # model.onnx: 100 kB
    result = run_entry_point(
        "export.py",
        f"ckpt_path={checkpoint}",
        "hydra.run.dir=full",
        data_dir=tiny_mnist,
        cwd=tmp_path,
        quiet=False,
        max_file_bytes=50_000,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    message = error_paragraph(result)
    assert message.startswith("Error: No room to write ") and "model.onnx" in message
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "full").glob("*.onnx*"))
