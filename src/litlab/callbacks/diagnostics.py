"""What the tutorials teach to watch while a network trains: per-layer gradient norms
(vanishing or exploding gradients), the fraction of dead ReLU units per layer, weight and
activation histograms, and the model graph.

Written by hand: Lightning's ``grad_norm`` utility gives norms per parameter and needs calling
from the module, and neither Lightning nor torchmetrics measures dead units. Everything is
sampled every ``every_n_steps`` steps, so the steps in between cost nothing.
"""

import copy
import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from litlab.library_internals import unscales_in_step
from litlab.models.activations import ACTIVATION_TYPES
from litlab.report_data import Diagnostics, write_section
from litlab.tensorboard import writers

log = logging.getLogger(__name__)

# The name under which a network's own parameters (a Transformer's class token and position
# embeddings: held by the network, not by a layer) are reported.
OWN_PARAMETERS = "(own)"


class TrainingDiagnostics(L.Callback):
    """Every ``every_n_steps`` training steps logs ``diagnostics/grad_norm/<layer>`` (L2 norm of
    the layer's gradients, before clipping), ``diagnostics/grad_norm/total`` and
    ``diagnostics/dead_relu/<layer>`` (fraction of a ReLU layer's units, or channels, that
    output zero for every sample of the batch). Each epoch: histograms of every parameter
    (``weights/<name>``) and of each activation layer's output at the epoch's first sampled
    step (``activations/<layer>``). With ``graph``, the network's graph at the start. With
    ``run_dir``, the sampled norms and dead shares also go to its report_data.json after every
    epoch, for the report's training problems (vanishing or exploding gradients, dying ReLU).
    The samples are kept in checkpoints: a resumed run reports on all of its steps."""

    def __init__(
        self,
        every_n_steps: int | None = 50,
        histograms: bool = True,
        graph: bool = True,
        run_dir: str | Path | None = None,
    ) -> None:
        self.every_n_steps = every_n_steps
        self.histograms, self.graph = histograms, graph
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._series: dict[str, dict[str, list[float]]] = {"grad_norm": {}, "dead_relu": {}}
        self._steps: list[int] = []
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self._dead: dict[str, torch.Tensor] = {}
        self._grad_norms: dict[str, torch.Tensor] = {}
        self._activations: dict[str, torch.Tensor] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"steps": list(self._steps), "series": copy.deepcopy(self._series)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._steps, self._series = list(state_dict["steps"]), state_dict["series"]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.graph or not writers(trainer):
            return
        example = trainer.datamodule.example_inputs(pl_module.device, count=2)
        was_training = pl_module.net.training
        fast_attention = torch.backends.mha.get_fastpath_enabled()
        try:
            pl_module.net.eval()  # tracing must not draw dropout masks
            # the fused attention path traces differently twice, failing add_graph's check
            torch.backends.mha.set_fastpath_enabled(False)
            with warnings.catch_warnings():  # add_graph traces with the deprecated jit.trace
                warnings.simplefilter("ignore", FutureWarning)
                for writer in writers(trainer):
                    writer.add_graph(pl_module.net, example)
        except Exception as err:  # noqa: BLE001 - e.g. a compiled network does not trace
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            log.warning("The model graph is not in TensorBoard: tracing failed (%s).", reason)
        finally:
            torch.backends.mha.set_fastpath_enabled(fast_attention)
            pl_module.net.train(was_training)

    def _sampled(self, trainer: L.Trainer) -> bool:
        every = self.every_n_steps
        return trainer.is_global_zero and every is not None and trainer.global_step % every == 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Hooks inside a torch.compile'd network would make it recompile at every sample.
        if pl_module.compiled or not self._sampled(trainer):
            return
        capture = self.histograms and not self._activations  # first sample of the epoch
        for name, module in pl_module.net.named_modules():
            if isinstance(module, ACTIVATION_TYPES):
                hook = module.register_forward_hook(self._recorder(name, module, capture))
                self._hooks.append(hook)

    def _recorder(self, name: str, module: nn.Module, capture: bool):
        def record(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
            output = output.detach()
            if isinstance(module, nn.ReLU):
                alive = (output > 0).transpose(0, 1).flatten(1).any(dim=1)  # per unit/channel
                self._dead[name] = 1 - alive.float().mean()
            if capture:
                self._activations[name] = output.flatten()[:100_000].clone()

        return record

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not self._sampled(trainer):
            return
        for name, module in pl_module.net.named_modules():
            grads = [p.grad for p in module.parameters(recurse=False) if p.grad is not None]
            if grads:
                self._grad_norms[name or OWN_PARAMETERS] = torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(g) for g in grads])
                )
        if not self._grad_norms:
            return
        total = torch.linalg.vector_norm(torch.stack(list(self._grad_norms.values())))
        self._grad_norms["total"] = total
        scale = _loss_scale_left_in_gradients(trainer, optimizer)
        if scale != 1.0:
            self._grad_norms = {name: norm / scale for name, norm in self._grad_norms.items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._hooks and not self._grad_norms:
            return
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        if not self._grad_norms:
            # accumulating gradients: no optimizer step yet, the stepping batch measures again
            self._dead = {}
            return
        values = {f"diagnostics/grad_norm/{k}": v for k, v in self._grad_norms.items()}
        values |= {f"diagnostics/dead_relu/{k}": v for k, v in self._dead.items()}
        self._grad_norms, self._dead = {}, {}
        numbers = torch.stack(list(values.values())).float().tolist()  # one device sync
        step = trainer.global_step - 1  # the step these gradients made
        for logger in trainer.loggers:
            logger.log_metrics(dict(zip(values, numbers, strict=True)), step=step)
        self._steps.append(step)
        for name, number in zip(values, numbers, strict=True):
            kind, layer = name.split("/", 2)[1:]
            self._series[kind].setdefault(layer, []).append(number)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.run_dir is not None and trainer.is_global_zero and self._steps:
            clip = trainer.gradient_clip_val
            sampled = Diagnostics(
                steps=self._steps,
                grad_norm=self._series["grad_norm"],
                dead_relu=self._series["dead_relu"],
                gradient_clip_val=float(clip) if clip else None,
            )
            write_section(self.run_dir, "diagnostics", sampled)
        activations, self._activations = self._activations, {}
        if not self.histograms:
            return
        for writer in writers(trainer):
            for name, parameter in pl_module.net.named_parameters():
                writer.add_histogram(f"weights/{name}", parameter.detach(), trainer.global_step)
            for name, values in activations.items():
                writer.add_histogram(f"activations/{name}", values, trainer.global_step)


def _loss_scale_left_in_gradients(trainer: L.Trainer, optimizer: torch.optim.Optimizer) -> float:
    """Under 16-bit mixed precision Lightning unscales gradients before this hook, except for
    optimizers that unscale inside their own step (fused Adam, litlab's default): their
    gradients still carry the loss scale."""
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    optimizer = getattr(optimizer, "optimizer", optimizer)  # unwrap a LightningOptimizer
    handles_unscaling = unscales_in_step(optimizer)
    return float(scaler.get_scale()) if scaler is not None and handles_unscaling else 1.0
