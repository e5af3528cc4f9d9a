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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

import litlab
from litlab.build import TrainedModel, load_trained
from litlab.config import validate_config
from litlab.data import TensorDataModule
from litlab.errors import ConfigError, ExportError
from litlab.lightning_modules import as_predictions, class_probabilities, task_outputs
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
        outputs = task_outputs(self.task, self.net(self.datamodule.normalise(raw)))
        return self.datamodule.target_units(outputs) if self.task == "regression" else outputs


@dataclass
class ExportCheck:
    samples: int
    max_difference: float  # of the outputs; regression: in the target's standard deviations
    same_class: int | None  # classifiers: samples with the same predicted class
    unit: str = ""

    def __str__(self) -> str:
        text = (
            f"max |difference| {self.max_difference:.2e}{self.unit} over {self.samples} test "
            "samples"
        )
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
    folder = Path(cfg.paths.output_dir)
    folder.mkdir(parents=True, exist_ok=True)  # Hydra made it, unless called from Python
    target = folder / EXPORTED_MODELS[cfg.format]
    # renamed once the check passes; torch.export wants the .pt2 ending
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")
    try:
        write = _write_onnx if cfg.format == "onnx" else _write_pt2
        test_inputs = datamodule.raw_inputs("test") if cfg.verify else None
        # an example batch of two; a view would save the whole split with a .pt2
        example = test_inputs[:2].clone() if cfg.verify else _zeros(datamodule)
        run_exported = write(model, example, partial, _metadata(trained, task))
        if cfg.verify:
            check = _check(model, run_exported, test_inputs, datamodule, task, cfg.tolerance)
        else:
            check = None
        partial.replace(target)
    except OSError as err:  # the exporters write without naming the file (a full disk)
        err.filename = err.filename or str(target)
        raise
    finally:
        partial.unlink(missing_ok=True)
    log.debug("Exported %s%s", target, f"; check: {check}" if check else " (not checked)")
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


def _zeros(datamodule: TensorDataModule) -> torch.Tensor:
    """An example batch of two raw inputs, without reading the data (verify=false)."""
    return torch.zeros(2, *(datamodule.input_shape or (datamodule.num_features,)))


def _metadata(trained: TrainedModel, task: str) -> dict[str, str]:
    datamodule = trained.datamodule
    shape = datamodule.input_shape or (datamodule.num_features,)
    return {
        "litlab_version": litlab.__version__,
        "torch_version": torch.__version__,
        "task": task,
        "class_names": json.dumps(list(datamodule.class_names or [])),
        "input": f"float32 [batch, {', '.join(map(str, shape))}] in the data set's own units "
        f"({datamodule.describe_raw_inputs()}); normalisation is inside the model",
        "output": {
            "multiclass": "logits [batch, classes]; softmax gives the class probabilities",
            "binary": "logit [batch] of class 1; sigmoid gives its probability",
            "regression": "value [batch] in the target's units",
        }[task],
        "model": str(trained.run_config.model._target_),
    }


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


def _check(
    model: nn.Module,
    run_exported: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    datamodule: TensorDataModule,
    task: str,
    tolerance: float,
) -> ExportCheck:
    """The test split through both, in batches; refuses an export that differs. Regression
    values are compared in the target's standard deviations (its units are arbitrary)."""
    largest, same = 0.0, 0
    scale = float(datamodule.target_units(torch.ones(1)) - datamodule.target_units(torch.zeros(1)))
    scale = abs(scale) if task == "regression" and scale else 1.0
    with torch.no_grad():
        for batch in inputs.split(1000):
            expected = model(batch)
            got = run_exported(batch).reshape(expected.shape)
            largest = max(largest, float((expected - got).abs().max()) / scale)
            if task != "regression":
                classes = [
                    class_probabilities(task, as_predictions(task, outputs)).argmax(-1)
                    for outputs in (expected, got)
                ]
                same += int((classes[0] == classes[1]).sum())
    unit = " (in the target's standard deviations)" if task == "regression" else ""
    check = ExportCheck(len(inputs), largest, None if task == "regression" else same, unit)
    if largest > tolerance or (check.same_class is not None and same != len(inputs)):
        raise ExportError(
            f"The exported model does not reproduce the PyTorch model: {check} (tolerance "
            f"{tolerance:g}). Nothing was written. Report this with the model's config; "
            "tolerance=<larger> accepts a larger difference."
        )
    return check
