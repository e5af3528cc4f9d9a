"""The vanishing-gradient picture of a recurrent network: how much of the loss's gradient
reaches the input of each time step.

Written by hand: neither Lightning nor torchmetrics measures gradients with respect to inputs.
One forward and backward pass of ``samples`` validation sequences after each training epoch,
through ``torch.autograd.grad``, so the parameters' gradients and the optimizer are untouched.
"""

from pathlib import Path

import lightning as L
import torch

from litlab.models import RNN
from litlab.models.rnn import as_sequence
from litlab.report import plots
from litlab.run_folder import GRADIENT_BY_STEP_PLOT, PLOTS
from litlab.tensorboard import add_image


class SequenceGradients(L.Callback):
    """After each training epoch of an ``RNN``: the mean over ``samples`` validation sequences of
    ``|d loss / d x_t|`` for each step ``t``, as the TensorBoard image
    ``diagnostics/gradient_by_time_step`` and ``plots/gradient_by_time_step.png``; the last
    values stay in ``norms``. A plain tanh RNN's curve falls by orders of magnitude towards the
    first steps (it cannot learn from them); an LSTM's or GRU's stays flat. Other models: off."""

    def __init__(self, run_dir: str | Path, samples: int = 256) -> None:
        self.run_dir, self.samples = Path(run_dir), samples
        self.norms: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not isinstance(pl_module.net, RNN) or pl_module.compiled or not trainer.is_global_zero:
            return
        self.norms = self._gradient_by_step(trainer, pl_module)
        image = plots.render(plots.gradient_by_step_figure(self.norms, trainer.current_epoch))
        plots.save_image(image, self.run_dir / PLOTS / GRADIENT_BY_STEP_PLOT)
        add_image(trainer, "diagnostics/gradient_by_time_step", image, trainer.global_step)

    def _gradient_by_step(self, trainer: L.Trainer, pl_module: L.LightningModule) -> list[float]:
        datamodule = trainer.datamodule
        inputs, targets = (t[: self.samples] for t in datamodule.splits["val"])
        inputs = datamodule.prepare_inputs(inputs.to(pl_module.device).clone(), training=False)
        sequence = as_sequence(inputs, pl_module.net.steps).detach()
        precision = getattr(trainer, "precision_plugin", None)  # bf16-true: inputs in bf16
        sequence = (precision.convert_input(sequence) if precision else sequence).requires_grad_()
        was_training = pl_module.training
        pl_module.eval()  # no dropout; cuDNN's RNN backward needs training mode, so it is off
        try:
            with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
                outputs = pl_module(sequence).float()
                loss = pl_module.loss(pl_module.loss_input(outputs), targets.to(outputs.device))
                (gradient,) = torch.autograd.grad(loss, sequence)
        finally:
            pl_module.train(was_training)
        return gradient.float().norm(dim=2).mean(dim=0).tolist()  # (steps,)
