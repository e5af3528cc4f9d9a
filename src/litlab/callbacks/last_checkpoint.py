"""checkpoints/last.ckpt: the state to resume from."""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from litlab.run_folder import LAST_CHECKPOINT


class LastCheckpoint(ModelCheckpoint):
    """Saves ``<dirpath>/<filename>.ckpt`` after every epoch and, with ``every_n_train_steps``,
    also every N training steps, so that a killed run loses at most N steps.

    Lightning's ModelCheckpoint takes either a step or an epoch trigger; its saving logic handles
    both at once, so the epoch trigger is set back after its constructor's check. (Its
    ``save_last=True`` would not do: it refreshes last.ckpt only when a top-k file is saved.)
    """

    def __init__(
        self,
        dirpath: str,
        filename: str = Path(LAST_CHECKPOINT).stem,
        every_n_train_steps: int | None = None,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=None,
            save_top_k=1,
            auto_insert_metric_name=False,
            enable_version_counter=False,  # overwrite last.ckpt, never write last-v1.ckpt
            every_n_train_steps=every_n_train_steps,
        )
        self._every_n_epochs = 1

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        # A save at an epoch's last batch would precede its validation and suppress the save at
        # the epoch's end (same step): a resume would then skip that validation.
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            super().on_train_batch_end(trainer, *args)
