"""TrainingDiagnostics: gradient norms and dead ReLU units, sampled every N optimizer steps."""

from pathlib import Path

import torch
from torch import nn

from litlab.callbacks import TrainingDiagnostics
from litlab.train import train
from tests.helpers import events

CLASSIFICATION = ["data=synthetic_classification", "model=mlp"]


def test_dead_relu_fraction_counts_units_silent_for_the_whole_batch():
    diagnostics = TrainingDiagnostics()
    record = diagnostics._recorder("relu", nn.ReLU(), capture=False)
    outputs = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])  # units 0, 3 dead
    record(nn.ReLU(), (outputs,), outputs)
    assert diagnostics._dead["relu"].item() == 0.5
    channels = torch.zeros(3, 4, 5, 5)
    channels[1, 2, 4, 4] = 1.0  # one pixel of one image keeps channel 2 alive
    record(nn.ReLU(), (channels,), channels)
    assert diagnostics._dead["relu"].item() == 0.75


def test_diagnostics_under_gradient_accumulation_log_at_optimizer_steps(make_config):
    cfg = make_config(
        *CLASSIFICATION,
        "trainer.max_epochs=1",
        "+trainer.accumulate_grad_batches=2",
        "callbacks.diagnostics.every_n_steps=10",
    )
    train(cfg)
    accumulator = events(Path(cfg.paths.output_dir))
    norms = [p.step for p in accumulator.Scalars("diagnostics/grad_norm/total")]
    dead = [p.step for p in accumulator.Scalars("diagnostics/dead_relu/layers.2")]
    assert norms == dead == [0, 10, 20, 30]  # 33 optimizer steps of 2 batches each
