"""One LightningModule for supervised learning, parameterised by the problem kind (data.task)."""

import functools
import inspect
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import OneCycleLR
from torchmetrics import MaxMetric, MeanMetric, MinMetric

from litlab.checkpoint import restore_rng_states, rng_states
from litlab.config.losses import LOG_PROBABILITIES, LOGITS, PROBABILITIES
from litlab.library_internals import HOOK_NAME_ATTRIBUTE, trainer_or_none
from litlab.lightning_modules.metrics import confusion_matrix, stage_metrics
from litlab.metric_names import headline_metric

# What a loss takes (its entry's ``inputs``, litlab.config.losses), from the network's outputs.
LOSS_INPUTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    LOGITS: lambda outputs: outputs,
    LOG_PROBABILITIES: lambda logits: torch.log_softmax(logits, dim=-1),
    PROBABILITIES: torch.sigmoid,  # of a binary logit
}


def task_outputs(task: str, outputs: torch.Tensor) -> torch.Tensor:
    """A network's outputs as the task reads them: ``(N, classes)`` logits for multiclass, one
    value per sample ``(N,)`` otherwise (the binary logit, the regression value)."""
    return outputs if task == "multiclass" else outputs.squeeze(-1)


def as_predictions(task: str, outputs: torch.Tensor) -> torch.Tensor:
    """What metrics, callbacks and predict get: multiclass logits, the probability of class 1
    (binary), the value (regression)."""
    return torch.sigmoid(outputs) if task == "binary" else outputs


def class_probabilities(task: str, predictions: torch.Tensor) -> torch.Tensor:
    """``(N, classes)`` probabilities from :func:`as_predictions`' output: the predicted class
    is their argmax, its confidence their max."""
    if task == "binary":
        return torch.stack([1 - predictions, predictions], dim=-1)
    return predictions.float().softmax(dim=-1)


class SupervisedModule(L.LightningModule):
    """Trains any ``nn.Module`` on ``(inputs, targets)`` batches.

    ``task`` is ``multiclass`` (targets are class indices, outputs ``(N, num_classes)`` logits),
    ``binary`` (targets 0/1 floats, outputs ``(N, 1)`` logits) or ``regression`` (float targets,
    outputs ``(N, 1)``). ``monitor`` (e.g. ``val/acc``, mode ``max``) is tracked as
    ``<monitor>_best`` for checkpoint selection and sweeps. ``class_names`` name the per-class
    metrics (``test/f1/<name>``); after each validation and test epoch, ``confusion_matrices``
    holds that stage's counts (rows: true class) for callbacks that draw them. ``optimizer``
    and ``scheduler`` are partials completed here. Only plain values are saved as
    hyperparameters (``run_config`` is the resolved run config as a dict), so checkpoints load
    with ``weights_only=True``. ``loss_inputs`` is what the loss takes from the outputs (its
    entry's); ``compiled`` says that ``net`` runs through torch.compile, which hooks on its
    layers would make recompile.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., Optimizer],
        loss_inputs: str = LOGITS,
        compiled: bool = False,
        scheduler: Callable[..., Any] | None = None,
        task: str = "multiclass",
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        monitor: str = "val/acc",
        monitor_mode: str = "max",
        run_config: dict | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            ignore=["net", "loss", "optimizer", "scheduler", "loss_inputs", "compiled"]
        )
        self.net, self.loss, self.compiled = net, loss, compiled
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.loss_input = LOSS_INPUTS[loss_inputs]
        self.train_metrics = stage_metrics(task, num_classes, "train")
        self.val_metrics = stage_metrics(task, num_classes, "val", class_names)
        self.test_metrics = stage_metrics(task, num_classes, "test", class_names)
        self.val_confusion = confusion_matrix(task, num_classes)
        self.test_confusion = confusion_matrix(task, num_classes)
        self.confusion_matrices: dict[str, torch.Tensor] = {}
        # Loss means skip torchmetrics' NaN check: it would wait on the device every step.
        self.train_loss, self.val_loss, self.test_loss = (
            MeanMetric(nan_strategy="disable") for _ in range(3)
        )
        self.test_name = "test"  # eval.py split=val tests the validation split: evaluate_as()
        # tune=lr_find listens to every training loss (Lightning's finder keeps only an average)
        self.loss_listener: Callable[[torch.Tensor], None] | None = None
        self.monitor = monitor
        self.best = MaxMetric() if monitor_mode == "max" else MinMetric()
        # Kept in checkpoints: a resumed run knows its best, and a run resumed mid-epoch reports
        # that epoch's training metrics over all of its batches.
        for metric in (self.best, self.train_metrics, self.train_loss):
            metric.persistent(True)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == HOOK_NAME_ATTRIBUTE:  # a plain string, set ~40 times per step: no checks
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return task_outputs(self.hparams.task, self.net(inputs))

    @property
    def lr(self) -> float:
        """The learning rate training uses: the optimizer's ``lr``, or a one-cycle schedule's
        peak ``max_lr`` (which sets the optimizer's rate itself). It is the attribute
        Lightning's Tuner looks for (``update_attr``); setting it rebuilds the Hydra partial."""
        factory, key = self._lr_home()
        return float(
            factory.keywords.get(key, inspect.signature(factory.func).parameters[key].default)
        )

    @lr.setter
    def lr(self, value: float) -> None:
        factory, key = self._lr_home()
        updated = functools.partial(factory.func, *factory.args, **{**factory.keywords, key: value})
        if key == "max_lr":
            self.scheduler_factory = updated
        else:
            self.optimizer_factory = updated

    @property
    def lr_key(self) -> str:
        """The config key behind :attr:`lr`: ``optimizer.lr`` or ``scheduler.max_lr``."""
        return "scheduler.max_lr" if self._lr_home()[1] == "max_lr" else "optimizer.lr"

    def _lr_home(self) -> tuple[functools.partial, str]:
        if getattr(self.scheduler_factory, "func", None) is OneCycleLR:
            return self.scheduler_factory, "max_lr"
        return self.optimizer_factory, "lr"

    def evaluate_as(self, split: str) -> None:
        """Name the test stage's metrics after ``split``: eval.py runs the test loop on any
        split, as only that loop hands each batch's predictions to the report's callbacks."""
        hparams = self.hparams
        self.test_metrics = stage_metrics(
            hparams.task, hparams.num_classes, split, hparams.class_names
        )
        self.test_name = split

    def _step(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and predictions (probabilities for binary, else the outputs) of one batch;
        metrics are only updated here and logged once per epoch, because per-step logging costs
        more than a small model's whole step."""
        inputs, targets = batch
        outputs = self(inputs)
        loss = self.loss(self.loss_input(outputs), targets)
        predictions = as_predictions(self.hparams.task, outputs).detach()
        getattr(self, f"{stage}_metrics").update(predictions, targets)
        # One value per sample, not (loss, weight=len): with nan_strategy="disable" torchmetrics
        # (1.9) replaces weights by ones, and a short last batch would count as a full one.
        getattr(self, f"{stage}_loss").update(loss.detach().expand(len(targets)))
        confusion = getattr(self, f"{stage}_confusion", None)
        if confusion is not None:
            confusion.update(predictions, targets.long())
        return loss, predictions

    def _log_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        metrics, mean_loss = getattr(self, f"{stage}_metrics"), getattr(self, f"{stage}_loss")
        name = self.test_name if stage == "test" else stage
        values = {f"{name}/loss": mean_loss.compute(), **metrics.compute()}  # synced over ranks
        metrics.reset()
        mean_loss.reset()
        confusion = getattr(self, f"{stage}_confusion", None)
        if confusion is not None:
            self.confusion_matrices[stage] = confusion.compute().cpu()  # synced over ranks
            confusion.reset()
        shown = (f"{stage}/loss", f"{stage}/{headline_metric(self.hparams.task)}")
        for metric, value in values.items():  # the bar shows loss and the headline metric
            self.log(metric, value, prog_bar=stage != "test" and metric in shown)
        return values

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        loss = self._step(batch, "train")[0]
        if self.loss_listener is not None:
            self.loss_listener(loss.detach())
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Returns the predictions, which Lightning hands to callbacks' ``on_test_batch_end``
        (misclassified images, regression scatter plots) without keeping them."""
        return self._step(batch, "test")[1]

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        """Trainer.predict on batches of model inputs: :func:`as_predictions`."""
        return as_predictions(self.hparams.task, self(batch[0]))

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch("val")
        # the best epoch is a fact of fitting, not of a sanity check or a standalone validate()
        if self.trainer.state.fn == TrainerFn.FITTING and not self.trainer.sanity_checking:
            self.best.update(values[self.monitor])
            self.log(f"{self.monitor}_best", self.best.compute(), prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Dropout and augmentation draw from the global generators: a resumed run continues
        # with the numbers the uninterrupted one would have drawn.
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainer = trainer_or_none(self)  # None under LightningModule.load_from_checkpoint
        fitting = trainer is not None and trainer.state.fn == TrainerFn.FITTING
        if "rng_states" not in checkpoint or not fitting:
            return
        restore_rng_states(checkpoint["rng_states"])
        if trainer.global_rank > 0:
            # The checkpoint holds rank 0's generators and partial training sums: other ranks
            # must not draw rank 0's masks, nor add its sums a second time.
            seed = (self.hparams.run_config or {}).get("seed") or 0
            torch.manual_seed(seed * 1009 + trainer.global_rank + 7919 * checkpoint["global_step"])
            fresh = self.state_dict()  # called before the weights are loaded from checkpoint
            for key in checkpoint["state_dict"]:
                if key.startswith(("train_metrics.", "train_loss.")):
                    checkpoint["state_dict"][key] = fresh[key]

    def on_train_start(self) -> None:
        # After Lightning restored a checkpoint's optimizer state: a run resumed with another
        # model.channels_last has state tensors in the other memory layout, which fused
        # optimizers would pair element by element with the wrong parameter values.
        for optimizer in self.trainer.optimizers:
            for param, state in optimizer.state.items():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and value.shape == param.shape:
                        if value.stride() != param.stride():
                            state[key] = torch.empty_like(param).copy_(value)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler, interval = make_scheduler(
            self.scheduler_factory, optimizer, lambda: int(self.trainer.estimated_stepping_batches)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval, "monitor": self.monitor},
        }


def make_scheduler(
    factory: Callable[..., Any], optimizer: Optimizer, total_steps: Callable[[], int]
) -> tuple[Any, str]:
    """The scheduler and how often it steps: OneCycleLR per batch over the whole run (whose
    length only the trainer knows: ``total_steps()``), the others per epoch."""
    if getattr(factory, "func", factory) is OneCycleLR:
        return factory(optimizer, total_steps=total_steps()), "step"
    return factory(optimizer), "epoch"
