"""The raw material of report.md, written into the run folder as training goes: per-epoch
metrics (``history.csv``) and ``report_data.json``'s data, model and test sections.

Written by hand: Lightning's CSVLogger logs whatever reaches the logger, step by step, and only
when it is the chosen logger; the report needs one row per finished epoch in every run. The rows
are kept in checkpoints, so a resumed run's history.csv holds every epoch once.
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
from litlab.callbacks.early_stopping import EarlyStopping
from litlab.callbacks.top_losses import per_sample_loss
from litlab.callbacks.trial_pruning import TrialPruning
from litlab.library_internals import at_last_batch
from litlab.lightning_modules import metric_float
from litlab.metric_names import is_overall_metric, is_timing
from litlab.report_data import DataSummary, EvaluatedSplit, Layer, ModelSummary, write_section
from litlab.run_folder import HISTORY, PLOTS, TEST_PLOTS, write_atomically

# A regression report plots each test prediction; beyond this many, a sample is enough.
MAX_STORED_PREDICTIONS = 20_000


class ReportData(L.Callback):
    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.rows: list[dict[str, float]] = []
        self._trainer: L.Trainer | None = None
        self._epoch_in_progress: int | None = None
        self._epoch_lr = math.nan
        self._val_metrics: dict[int, dict[str, float]] = {}
        self._predictions: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._loss_moments = torch.zeros(3, dtype=torch.float64)  # n, sum, sum of squares
        self._summarised = False

    # -- state kept in checkpoints ---------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The finished epochs' rows. A checkpoint saved at an epoch's end (after the epoch's
        validation and training metrics, before the next epoch writes its row) holds that
        epoch's row too."""
        rows = list(self.rows)
        trainer = self._trainer
        ended = trainer is not None and trainer.training and at_last_batch(trainer)
        if ended and self._epoch_in_progress is not None:
            rows.append(self._row(trainer, self._epoch_in_progress))
        return {"rows": rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict["rows"])

    # -- fitting -------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer
        if stage == "test" and not self._summarised:  # testing without fitting: eval.py
            self._summarise(trainer, pl_module)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._summarise(trainer, pl_module)

    def _summarise(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            datamodule = trainer.datamodule
            write_section(self.run_dir, "data", data_summary(datamodule))
            shapes = not pl_module.compiled
            write_section(self.run_dir, "model", model_summary(pl_module.net, datamodule, shapes))
        self._summarised = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
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
        # early stopping's or a search's pruning: the callbacks that can end training early
        explanations = (c.stop_explanation() for c in trainer.callbacks if _stops_early(c))
        stopped = next((text for text in explanations if text), None)
        if trainer.is_global_zero:
            write_section(self.run_dir, "stopped_early", stopped)

    def _finish_epoch(self, trainer: L.Trainer) -> None:
        epoch, self._epoch_in_progress = self._epoch_in_progress, None
        if epoch is None or not trainer.is_global_zero:
            return
        if not self.rows or self.rows[-1]["epoch"] < epoch:  # a checkpoint may hold it already
            self.rows.append(self._row(trainer, epoch))
        self._write_history()

    def _row(self, trainer: L.Trainer, epoch: int) -> dict[str, float]:
        return {
            "epoch": epoch,
            "step": trainer.global_step,
            "lr": self._epoch_lr,
            **_scalars(trainer, "train/"),
            **_scalars(trainer, "time/"),
            **self._val_metrics.get(epoch, {}),
        }

    def _write_history(self) -> None:
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomically(self.run_dir / HISTORY, text.getvalue())

    # -- testing -------------------------------------------------------------------------
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._predictions, self._targets = [], []
        self._loss_moments = torch.zeros(3, dtype=torch.float64)
        if trainer.is_global_zero:  # an earlier test's images (a resumed run) are not this one's
            for name in TEST_PLOTS:
                (self.run_dir / PLOTS / name).unlink(missing_ok=True)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        loss = per_sample_loss(pl_module.hparams.task, outputs.detach(), batch[1]).double()
        moments = torch.stack([loss.new_tensor(loss.numel()), loss.sum(), loss.square().sum()])
        # summed where the outputs are (no copy to the CPU per batch), moved once at the end
        self._loss_moments = self._loss_moments.to(moments.device) + moments
        stored = sum(len(p) for p in self._predictions)
        if pl_module.hparams.task == "regression" and stored < MAX_STORED_PREDICTIONS:
            self._predictions.append(outputs.detach().float().cpu())
            self._targets.append(batch[1].detach().float().cpu())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        test = EvaluatedSplit(split=pl_module.test_name, loss_spread=self._loss_spread())
        confusion = pl_module.confusion_matrices.get("test")
        if confusion is not None:
            test.confusion_matrix = confusion.tolist()  # already summed over ranks
        if pl_module.hparams.task == "regression":  # the same on every rank: all gather
            test.true = _gathered([v for batch in self._targets for v in batch.tolist()])
            test.predicted = _gathered([v for batch in self._predictions for v in batch.tolist()])
        if trainer.is_global_zero:
            write_section(self.run_dir, "test", test)

    def _loss_spread(self) -> float | None:
        """The standard deviation of the per-sample test loss, over every rank's samples."""
        moments = _gathered(self._loss_moments.cpu().tolist())
        n, total, squares = torch.tensor(moments).view(-1, 3).sum(0)
        if n < 2:
            return None
        variance = (squares - total**2 / n) / (n - 1)
        return float(variance.clamp(min=0).sqrt())


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


def data_summary(datamodule: Any) -> DataSummary:
    return DataSummary(
        name=getattr(datamodule, "name", None) or type(datamodule).__name__,
        task=datamodule.task,
        class_names=datamodule.class_names,
        input_shape=list(datamodule.input_shape) if datamodule.input_shape else None,
        num_features=datamodule.num_features,
        splits={name: len(split[0]) for name, split in (datamodule.splits or {}).items()},
        notes=list(getattr(datamodule, "preparation_notes", [])),
    )


def model_summary(net: nn.Module, datamodule: Any, shapes: bool = True) -> ModelSummary:
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
    return ModelSummary(
        name=type(net).__name__,
        total_params=sum(p.numel() for p in net.parameters()),
        trainable_params=sum(p.numel() for p in net.parameters() if p.requires_grad),
        layers=[
            Layer(name, type(module).__name__, _own_parameters(module), found.get(name))
            for name, module in layers.items()
        ],
    )


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


def _stops_early(callback: L.Callback) -> bool:
    return isinstance(callback, (EarlyStopping, TrialPruning))
