"""EpochTimer: training time per epoch, without the validation inside it."""

import time

import lightning as L
import torch
from torch import nn

from litlab.callbacks import EpochTimer
from litlab.data import EpochPermutation, TensorBatchLoader


class SlowSteps(L.LightningModule):
    """Every training step sleeps 10 ms and every validation step 50 ms."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        time.sleep(0.01)
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        time.sleep(0.05)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def loader(batches: int) -> TensorBatchLoader:
    data = torch.zeros(batches, 2)
    return TensorBatchLoader((data, data), 1, EpochPermutation(batches, shuffle=False))


def test_validation_time_is_not_training_time():
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        val_check_interval=5,
        num_sanity_val_steps=0,
    )
    trainer.fit(SlowSteps(), loader(20), loader(4))  # 20 x 10 ms training, 4 x 50 ms per val
    assert len(timer.epoch_seconds) == 2
    for seconds in timer.epoch_seconds:  # 0.2 s of training; each epoch validates 4 times
        assert 0.2 <= seconds < 0.2 + 0.15  # 0.8 s of validation would show
