"""Seeded synthetic sequence problems that need memory over time.

The adding problem (Hochreiter & Schmidhuber 1997): each sample is ``seq_len`` steps of (a
value drawn uniformly from [0, 1], a marker); exactly two steps are marked, one in each half of
the sequence, and the target is the sum of the two marked values. Predicting the mean (1)
scores MSE 1/6 = 0.167; solving it means carrying a value across up to ``seq_len`` steps, where
a plain tanh RNN's gradient vanishes and an LSTM's or GRU's does not.
"""

from typing import Annotated

import torch

from litlab.config.domains import ArgumentError, CountOrFraction, int_at_least, one_of
from litlab.config.entries import checked
from litlab.data.base import Split, TensorDataModule, held_out_counts, seeded_split

GENERATORS = ("adding",)


def adding(num_samples: int, seq_len: int, rng: torch.Generator) -> Split:
    """``(num_samples, seq_len, 2)`` inputs (value, marker) and ``(num_samples,)`` sums."""
    values = torch.rand(num_samples, seq_len, generator=rng)
    rows = torch.arange(num_samples)
    half = seq_len // 2
    first = torch.randint(0, half, (num_samples,), generator=rng)
    second = torch.randint(half, seq_len, (num_samples,), generator=rng)
    markers = torch.zeros(num_samples, seq_len)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = torch.stack([values, markers], dim=-1)
    return inputs, values[rows, first] + values[rows, second]


class SequenceDataModule(TensorDataModule):
    """``num_samples`` sequences of a seeded ``generator`` (``adding``), split train/val/test.
    Inputs are used as generated (markers are 0 or 1, values in [0, 1]); targets are not
    standardised, so the MSE reads against the mean-predictor's 0.167."""

    @checked
    def __init__(
        self,
        generator: Annotated[str, one_of(*GENERATORS)] = "adding",
        seq_len: Annotated[int, int_at_least(2)] = 100,
        num_samples: Annotated[int, int_at_least(3)] = 10_000,
        val_size: CountOrFraction = 0.1,
        test_size: CountOrFraction = 0.1,
        **facts,
    ) -> None:
        super().__init__(**facts)
        if self.input_shape != (seq_len, 2) or self.num_features != 2 * seq_len:
            raise ArgumentError(
                "input_shape",
                list(self.input_shape or []),
                f"input_shape and num_features (here {self.num_features}) must be [{seq_len}, 2] "
                f"and {2 * seq_len} for seq_len={seq_len}: leave them to their interpolations",
            )
        self.generator, self.seq_len, self.num_samples = generator, seq_len, num_samples
        self.name = f"{generator} (seq_len={seq_len})"  # the report names the data set by it
        self.val_count, self.test_count = held_out_counts(val_size, test_size, num_samples)

    def load_splits(self) -> dict[str, Split]:
        rng = torch.Generator().manual_seed(self.seed)
        inputs, targets = adding(self.num_samples, self.seq_len, rng)
        train, val, test = self.fold_parts(
            seeded_split(self.num_samples, [self.val_count, self.test_count], self.seed + 1),
            targets,
            self.name,
        )
        return {
            name: (inputs[idx], targets[idx])
            for name, idx in (("train", train), ("val", val), ("test", test))
        }
