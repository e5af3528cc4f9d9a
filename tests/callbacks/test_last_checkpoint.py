"""LastCheckpoint: checkpoints/last.ckpt after every epoch and every N training steps."""

import json

import torch

from litlab.train import train
from tests.helpers import STEPS_PER_EPOCH, tiny_config


def test_last_ckpt_is_saved_every_n_steps_and_at_each_epochs_end(tiny_mnist, tmp_path):
    run, out = tmp_path / "run", tmp_path / "steps.json"
    probe = [
        "callbacks.last_checkpoint.every_n_train_steps=5",
        "+callbacks.probe._target_=tests.probes.CheckpointSteps",
        f"+callbacks.probe.checkpoint={run}/checkpoints/last.ckpt",
        f"+callbacks.probe.out_file={out}",
        "trainer.max_epochs=2",
    ]
    train(tiny_config(tiny_mnist, run, *probe))
    held = sorted(set(json.loads(out.read_text())))
    # steps 5, 10, 15; the epoch's end (16) after its validation, not at its last batch
    assert held == [5, 10, 15, 16, 20, 25, 30]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2 * STEPS_PER_EPOCH
