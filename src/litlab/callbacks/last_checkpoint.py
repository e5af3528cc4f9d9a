"""checkpoints/last.ckpt: the state to resume from."""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from litlab.library_internals import also_every_epoch, at_last_batch
from litlab.run_folder import CHECKPOINTS, LAST_CHECKPOINT


class LastCheckpoint(ModelCheckpoint):
    """Saves ``<run_dir>/checkpoints/last.ckpt`` after every epoch and, with
    ``every_n_train_steps``, also every N training steps, so that a killed run loses at most N
    steps.

    Lightning's ModelCheckpoint takes either a step or an epoch trigger; its saving logic handles
    both at once, so the epoch trigger is set back after its constructor's check. (Its
    ``save_last=True`` would not do: it refreshes last.ckpt only when a top-k file is saved.)
    """

    def __init__(self, run_dir: str | Path, every_n_train_steps: int | None = None) -> None:
        super().__init__(
            dirpath=Path(run_dir) / CHECKPOINTS,
            filename=Path(LAST_CHECKPOINT).stem,
            monitor=None,
            save_top_k=1,
            auto_insert_metric_name=False,
            enable_version_counter=False,  # overwrite last.ckpt, never write last-v1.ckpt
            every_n_train_steps=every_n_train_steps,
        )
        also_every_epoch(self)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        # A save at an epoch's last batch would precede its validation and suppress the save at
        # the epoch's end (same step): a resume would then skip that validation.
        if not at_last_batch(trainer):
            super().on_train_batch_end(trainer, *args)
