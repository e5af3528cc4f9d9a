"""The raw material of report.md, written into the run folder as training goes: per-epoch
metrics (``history.csv``) and ``report_data.json`` (data sizes, model summary, test results).

Written by hand: Lightning's CSVLogger logs whatever reaches the logger, step by step, and only
when it is the chosen logger; the report needs one row per finished epoch in every run.
"""

import csv
import io
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn

from litlab.callbacks.diagnostics import OWN_PARAMETERS
from litlab.lightning_modules import metric_float
from litlab.metric_names import is_overall_metric, is_timing
from litlab.resume import kept_history
from litlab.run_folder import (
    HISTORY,
    PLOTS,
    TEST_PLOTS,
    read_history,
    update_report_data,
    write_atomically,
)

# A regression report plots each test prediction; beyond this many, a sample is enough.
MAX_STORED_PREDICTIONS = 20_000


class ReportData(L.Callback):
    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.rows: list[dict[str, float]] = []
        self._epoch_in_progress: int | None = None
        self._epoch_lr = math.nan
        self._val_metrics: dict[int, dict[str, float]] = {}
        self._predictions: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._summarised = False

    # -- fitting -------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._summarise(trainer, pl_module)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "test" and not self._summarised:  # testing without fitting: eval.py
            self._summarise(trainer, pl_module)

    def _summarise(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            datamodule = trainer.datamodule
            self._update_data(
                data=data_summary(datamodule),
                model=model_summary(pl_module.net, datamodule, shapes=not pl_module.compiled),
            )
        self._summarised = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = self.dirpath / HISTORY
        if trainer.is_global_zero and history.is_file():  # a run resumed in its own folder
            self.rows = kept_history(read_history(history), trainer.current_epoch)
        # A run resumed mid-epoch gets no on_train_epoch_start for that epoch.
        self._start_epoch(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._epoch_in_progress != trainer.current_epoch:
            self._finish_epoch(trainer)  # the previous epoch's end hooks have all run
            self._start_epoch(trainer)

    def _start_epoch(self, trainer: L.Trainer) -> None:
        self._epoch_in_progress = trainer.current_epoch
        # the rate this epoch trains with: epoch schedulers step before the epoch's end hooks
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self._epoch_lr = float(optimizer.param_groups[0]["lr"]) if optimizer else math.nan

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._val_metrics[trainer.current_epoch] = _scalars(trainer, "val/")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish_epoch(trainer)

    def _finish_epoch(self, trainer: L.Trainer) -> None:
        epoch, self._epoch_in_progress = self._epoch_in_progress, None
        if epoch is None or not trainer.is_global_zero:
            return
        row = {
            "epoch": epoch,
            "step": trainer.global_step,
            "lr": self._epoch_lr,
            **_scalars(trainer, "train/"),
            **_scalars(trainer, "time/"),
            **self._val_metrics.get(epoch, {}),
        }
        self.rows.append(row)
        self._write_history()

    def _write_history(self) -> None:
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomically(self.dirpath / HISTORY, text.getvalue())

    # -- testing -------------------------------------------------------------------------
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._predictions, self._targets = [], []
        if trainer.is_global_zero:  # an earlier test's images (a resumed run) are not this one's
            for name in TEST_PLOTS:
                (self.dirpath / PLOTS / name).unlink(missing_ok=True)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        stored = sum(len(p) for p in self._predictions)
        if pl_module.hparams.task == "regression" and stored < MAX_STORED_PREDICTIONS:
            self._predictions.append(outputs.detach().float().cpu())
            self._targets.append(batch[1].detach().float().cpu())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        test: dict[str, Any] = {"split": pl_module.test_name}
        confusion = pl_module.confusion_matrices.get("test")
        if confusion is not None:
            test["confusion_matrix"] = confusion.tolist()  # already summed over ranks
        if pl_module.hparams.task == "regression":  # the same on every rank: all gather
            test["true"] = _gathered([v for batch in self._targets for v in batch.tolist()])
            test["predicted"] = _gathered(
                [v for batch in self._predictions for v in batch.tolist()]
            )
        if trainer.is_global_zero:
            self._update_data(test=test)

    def _update_data(self, **sections: Any) -> None:
        update_report_data(self.dirpath, **sections)


def _gathered(values: list[float]) -> list[float]:
    """Every rank's values, in rank order (all ranks call this). Shards differ in size by one,
    which torch's tensor all_gather does not allow; the object variant does."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    shards: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shards, values)
    return [value for shard in shards for value in shard]


def _scalars(trainer: L.Trainer, prefix: str) -> dict[str, float]:
    """The epoch's overall metrics and timings under ``prefix`` (per-class values stay in
    metrics.json)."""
    return {
        name: metric_float(value)
        for name, value in trainer.callback_metrics.items()
        if name.startswith(prefix) and (is_overall_metric(name) or is_timing(name))
    }


def data_summary(datamodule: Any) -> dict[str, Any]:
    return {
        "name": getattr(datamodule, "name", None) or type(datamodule).__name__,
        "task": datamodule.task,
        "class_names": datamodule.class_names,
        "input_shape": list(datamodule.input_shape) if datamodule.input_shape else None,
        "num_features": datamodule.num_features,
        "splits": {name: len(split[0]) for name, split in (datamodule.splits or {}).items()},
    }


def model_summary(net: nn.Module, datamodule: Any, shapes: bool = True) -> dict[str, Any]:
    """Parameter count and output shape of each layer, found by one forward pass of an example
    in eval mode (no dropout, no random numbers drawn; ``shapes=False`` for a compiled network,
    which two samples would make recompile). A layer is a module without submodules,
    or one that holds parameters of its own (attention's projections, a Transformer's class
    token and position embeddings: the network itself, OWN_PARAMETERS); each counts only the
    parameters it holds, so the rows add up to the total."""
    layers = {
        name or OWN_PARAMETERS: module
        for name, module in net.named_modules()
        if (name and not any(module.children())) or _own_parameters(module)
    }
    found: dict[str, list[int]] = {}
    if shapes:
        _record_output_shapes(net, layers, datamodule, found)
    return {
        "name": type(net).__name__,
        "total_params": sum(p.numel() for p in net.parameters()),
        "trainable_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "layers": [
            {
                "name": name,
                "type": type(module).__name__,
                "params": _own_parameters(module),
                "output_shape": found.get(name),
            }
            for name, module in layers.items()
        ],
    }


def _own_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _record_output_shapes(
    net: nn.Module, layers: dict[str, nn.Module], datamodule: Any, shapes: dict[str, list[int]]
) -> None:
    def recorder(name: str):
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if isinstance(output, tuple):  # recurrent layers: (outputs, hidden state)
                output = output[0]
            shapes.setdefault(name, list(output.shape[1:]))  # a hook's return replaces output

        return record

    hooks = [module.register_forward_hook(recorder(name)) for name, module in layers.items()]
    was_training = net.training
    try:
        device = next(net.parameters()).device
        # With gradients on: without them PyTorch's Transformer layers take a fused fast path
        # that calls none of their sublayers, whose shapes would then stay unknown.
        with torch.enable_grad():
            net.eval()
            net(datamodule.example_inputs(device, count=2))
    except Exception:  # noqa: BLE001 - a summary without shapes is still a summary
        shapes.clear()
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()
