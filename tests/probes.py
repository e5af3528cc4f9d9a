"""Callbacks that tests inject through the config (`+callbacks.x._target_=tests.probes.X`) to
observe a real run from inside, e.g. in DDP worker processes."""

import hashlib
import json
import os
import signal
from pathlib import Path

import lightning as L
import torch


class BatchRecorder(L.Callback):
    """Writes, per rank and epoch, a digest of every training sample that rank saw."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir, self.seen = Path(out_dir), {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        inputs = batch[0].detach().cpu()
        digests = [hashlib.sha1(row.numpy().tobytes()).hexdigest()[:16] for row in inputs]
        self.seen.setdefault(trainer.current_epoch, []).extend(digests)

    def on_train_end(self, trainer, pl_module) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps({str(epoch): seen for epoch, seen in self.seen.items()}))


class SignalAt(L.Callback):
    """Sends ``signum`` to this very process once training reaches ``step``: a real signal, as a
    scheduler or Ctrl+C would deliver it."""

    def __init__(
        self,
        step: int,
        signum: int = signal.SIGTERM,
        in_validation: bool = False,
        steps_later_per_rank: int = 0,
    ) -> None:
        self.step, self.signum, self.in_validation = step, signum, in_validation
        self.steps_later_per_rank = steps_later_per_rank  # DDP ranks signalled at other steps

    def on_train_batch_end(self, trainer, *args) -> None:
        step = self.step + trainer.global_rank * self.steps_later_per_rank
        if trainer.global_step == step and not self.in_validation:
            os.kill(os.getpid(), self.signum)

    def on_validation_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step and self.in_validation and not trainer.sanity_checking:
            os.kill(os.getpid(), self.signum)


class GradientNormRecorder(L.Callback):
    """Writes the total gradient norm of every training step, as the optimizer applied it
    (after any clipping), to ``out_file`` as a JSON list."""

    def __init__(self, out_file: str) -> None:
        self.out_file, self.norms = Path(out_file), []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        grads = [p.grad.flatten() for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(torch.cat(grads).norm().item())

    def on_train_end(self, trainer, pl_module) -> None:
        self.out_file.write_text(json.dumps(self.norms))


class Crash(L.Callback):
    """Raises a RuntimeError (a bug, not a user error) when training starts, if ``enabled``."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled:
            raise RuntimeError("probe crash: a bug inside training")


class CheckpointSteps(L.Callback):
    """After every training batch, notes the global step that last.ckpt holds (a step save of
    LastCheckpoint, configured before this probe, has happened by then)."""

    def __init__(self, checkpoint: str, out_file: str) -> None:
        self.checkpoint, self.out_file, self.steps = Path(checkpoint), Path(out_file), []

    def on_train_batch_end(self, trainer, *args) -> None:
        if self.checkpoint.is_file():
            self.steps.append(torch.load(self.checkpoint, weights_only=True)["global_step"])

    def on_train_end(self, trainer, pl_module) -> None:
        self.out_file.write_text(json.dumps(self.steps))
