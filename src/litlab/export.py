"""`export(cfg)`: a checkpoint's model as a file other programs run (`litlab-export`):
``format=onnx`` (model.onnx, for onnxruntime and every ONNX runtime) or ``format=pt2``
(model.pt2, ``torch.export``'s program, for ``torch.export.load``).

The exported graph takes raw inputs (the data set's own units, see
:class:`~litlab.data.base.TensorDataModule`) with any batch size: the normalisation is inside.
It returns logits for classifiers (binary: of class 1) and values in the target's units for
regression. Every export is checked before it is kept: the test split through the exported
model and through PyTorch, outputs within ``tolerance`` and the same predicted class for every
sample; a model that fails the check is not written.
"""

import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

import litlab
from litlab.build import load_trained
from litlab.config import validate_config
from litlab.data import TensorDataModule
from litlab.errors import ConfigError, ExportError
from litlab.run_folder import EXPORTED_MODELS

log = logging.getLogger(__name__)

# pip packages format=onnx needs: the exporter (onnx, onnxscript) and the check (onnxruntime)
ONNX_PACKAGES = {"onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime"}


class ExportedModel(nn.Module):
    """The trained network behind the data module's normalisation (and, for regression, the
    conversion back to the target's units): raw inputs in, the task's outputs out."""

    def __init__(self, net: nn.Module, datamodule: TensorDataModule, task: str) -> None:
        super().__init__()
        self.net, self.datamodule, self.task = net, datamodule, task

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        outputs = self.net(self.datamodule.normalise(raw))
        if self.task == "multiclass":
            return outputs
        outputs = outputs.squeeze(-1)  # one output per sample, as the LightningModule gives
        return self.datamodule.target_units(outputs) if self.task == "regression" else outputs


@dataclass
class ExportCheck:
    samples: int
    max_difference: float
    same_class: int | None  # classifiers: samples with the same predicted class

    def __str__(self) -> str:
        text = f"max |difference| {self.max_difference:.2e} over {self.samples} test samples"
        if self.same_class is None:
            return text
        return f"{text}, the same class for {self.same_class} of {self.samples}"


def export(cfg: DictConfig) -> tuple[Path, ExportCheck | None]:
    """Write ``<run>/model.onnx`` or ``model.pt2`` and return its path and the check's result."""
    validate_config(cfg)
    if cfg.format == "onnx":
        _require_onnx_packages()
    trained = load_trained(cfg.ckpt_path, cfg.paths.data_dir)
    datamodule, task = trained.datamodule, trained.module.hparams.task
    model = ExportedModel(trained.module.net, datamodule, task).eval()
    test_inputs = datamodule.raw_inputs("test")
    folder = Path(cfg.paths.output_dir)
    folder.mkdir(parents=True, exist_ok=True)  # Hydra made it, unless called from Python
    target = folder / EXPORTED_MODELS[cfg.format]
    partial = target.with_name(f".{target.name}.partial")  # renamed once the check passes
    try:
        write = _write_onnx if cfg.format == "onnx" else _write_pt2
        example = test_inputs[:2].clone()  # a view would save the whole split with the model
        run_exported = write(model, example, partial, _metadata(trained, task))
        check = (
            _check(model, run_exported, test_inputs, task, cfg.tolerance) if cfg.verify else None
        )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    log.info("Exported %s%s", target, f"; check: {check}" if check else " (not checked)")
    return target, check


def _require_onnx_packages() -> None:
    missing = [name for module, name in ONNX_PACKAGES.items() if not _importable(module)]
    if missing:
        raise ConfigError(
            f"format=onnx needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            'not installed. Install the export extra: pip install -e ".[export]" (or use '
            "format=pt2, which needs only PyTorch)."
        )


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)  # the exporter imports it next anyway
    except ImportError:
        return False
    return True


def _metadata(trained, task: str) -> dict[str, str]:
    data = trained.run_config.data
    shape = list(data.input_shape) if data.get("input_shape") else [data.num_features]
    return {
        "litlab_version": litlab.__version__,
        "torch_version": torch.__version__,
        "task": task,
        "class_names": json.dumps(list(trained.datamodule.class_names or [])),
        "input": f"float32 [batch, {', '.join(map(str, shape))}] in the data set's own units "
        f"({_input_units(trained.datamodule)}); normalisation is inside the model",
        "output": {
            "multiclass": "logits [batch, classes]; softmax gives the class probabilities",
            "binary": "logit [batch] of class 1; sigmoid gives its probability",
            "regression": "value [batch] in the target's units",
        }[task],
        "model": str(trained.run_config.model._target_),
    }


def _input_units(datamodule: TensorDataModule) -> str:
    form = datamodule.image_form
    if form is not None:
        return f"pixels 0..{form.max_value:g}, light ink on a dark background"
    if datamodule.input_shape is not None:
        return "the sequence values as generated"
    return "features: " + ", ".join(datamodule.feature_names)


def _dynamic_batch(inputs: torch.Tensor) -> tuple[dict[int, torch.export.Dim]]:
    return ({0: torch.export.Dim("batch", min=1)},)


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str]):
    import onnx
    import onnxruntime

    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=True,
        input_names=["input"],
        output_names=["output"],
        dynamic_shapes=_dynamic_batch(example),
        external_data=False,
        verbose=False,
    )
    proto = onnx.load(str(path))
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda batch: torch.from_numpy(session.run(None, {"input": batch.numpy()})[0])


def _write_pt2(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str]):
    program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch(example))
    torch.export.save(program, str(path), extra_files={"litlab.json": json.dumps(metadata)})
    loaded = torch.export.load(str(path)).module()
    return lambda batch: loaded(batch)


def _check(model, run_exported, inputs: torch.Tensor, task: str, tolerance: float) -> ExportCheck:
    """The test split through both, in batches; refuses an export that differs."""
    largest, same, batches = 0.0, 0, inputs.split(1000)
    with torch.no_grad():
        for batch in batches:
            expected, got = model(batch), run_exported(batch).reshape(model(batch).shape)
            largest = max(largest, float((expected - got).abs().max()))
            if task == "multiclass":
                same += int((expected.argmax(-1) == got.argmax(-1)).sum())
            elif task == "binary":
                same += int(((expected > 0) == (got > 0)).sum())
    check = ExportCheck(len(inputs), largest, None if task == "regression" else same)
    if largest > tolerance or (check.same_class is not None and same != len(inputs)):
        raise ExportError(
            f"The exported model does not reproduce the PyTorch model: {check} (tolerance "
            f"{tolerance:g}). Nothing was written. Report this with the model's config; "
            "tolerance=<larger> accepts a larger difference."
        )
    return check
