"""Seeded synthetic tabular data sets for classification, binary, regression and XOR problems."""

from collections.abc import Callable

import torch

from litlab.data.base import (
    Split,
    Standardisation,
    TensorDataModule,
    held_out_counts,
    seeded_split,
)
from litlab.errors import ConfigError

Generator = Callable[[int, int, int | None, float, torch.Generator], Split]


def blobs(n: int, features: int, classes: int | None, noise: float, rng: torch.Generator) -> Split:
    """Gaussian clusters around random class centres that differ in 5 of the features, seen
    through a random rotation so that no single feature gives the class away."""
    informative = min(5, features)
    centres = torch.randn(classes, informative, generator=rng)
    labels = torch.randint(classes, (n,), generator=rng)
    inputs = noise * torch.randn(n, features, generator=rng)
    inputs[:, :informative] += centres[labels]
    rotation, _ = torch.linalg.qr(torch.randn(features, features, generator=rng))
    return inputs @ rotation, labels


def xor(n: int, features: int, classes: int | None, noise: float, rng: torch.Generator) -> Split:
    """Clusters at the four corners (+-1, +-1); class 1 where the two signs differ. Features
    beyond the first two are pure noise."""
    corners = torch.randint(0, 2, (n, 2), generator=rng) * 2 - 1
    inputs = noise * torch.randn(n, features, generator=rng)
    inputs[:, :2] += corners
    return inputs, (corners[:, 0] != corners[:, 1]).long()


def regression(
    n: int, features: int, classes: int | None, noise: float, rng: torch.Generator
) -> Split:
    """A linear trend plus smooth non-linear terms of the first three features, plus noise."""
    inputs = torch.randn(n, features, generator=rng)
    weights = torch.randn(features, generator=rng) / features**0.5
    target = inputs @ weights + 0.5 * torch.sin(2 * inputs[:, 0])
    if features >= 3:
        target += 0.3 * inputs[:, 1] * inputs[:, 2]
    target += noise * torch.randn(n, generator=rng)
    return inputs, target


GENERATORS: dict[str, Generator] = {"blobs": blobs, "xor": xor, "regression": regression}


class SyntheticDataModule(TensorDataModule):
    """Generates ``num_samples`` samples with a seeded generator, standardises inputs (and
    regression targets) with the training split's statistics, and splits train/val/test."""

    def __init__(
        self,
        generator: str,
        num_samples: int = 6000,
        noise: float = 1.0,
        val_size: int | float = 0.1,
        test_size: int | float = 0.2,
        **facts,
    ) -> None:
        super().__init__(**facts)
        if generator not in GENERATORS:
            raise ConfigError(
                f"data.generator={generator!r} is unknown; use one of {', '.join(GENERATORS)}."
            )
        needs_classes = generator != "regression"
        if needs_classes and (self.num_classes or 0) < 2:
            raise ConfigError(
                f"data.generator={generator} makes classes, so data.num_classes must be at least "
                f"2 (got {self.num_classes}); e.g. data.num_classes=3."
            )
        if generator == "xor" and (self.num_classes != 2 or self.num_features < 2):
            raise ConfigError(
                "data.generator=xor needs data.num_classes=2 and data.num_features >= 2, got "
                f"{self.num_classes} and {self.num_features}."
            )
        expected_task = {"regression": {"regression"}}.get(generator, {"multiclass", "binary"})
        if self.task not in expected_task or (self.task == "binary" and self.num_classes != 2):
            raise ConfigError(
                f"data.task={self.task} does not match data.generator={generator} with "
                f"data.num_classes={self.num_classes}: use data.task="
                f"{' or '.join(sorted(expected_task))} (binary needs exactly 2 classes)."
            )
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 3:
            raise ConfigError(f"data.num_samples={num_samples!r} must be an integer >= 3.")
        self.generator, self.num_samples, self.noise = generator, num_samples, noise
        self.val_count, self.test_count = held_out_counts(val_size, test_size, num_samples)

    def load_splits(self) -> dict[str, Split]:
        rng = torch.Generator().manual_seed(self.seed)
        inputs, targets = GENERATORS[self.generator](
            self.num_samples, self.num_features, self.num_classes, self.noise, rng
        )
        train, val, test = seeded_split(
            self.num_samples, [self.val_count, self.test_count], self.seed + 1
        )
        self.input_scaling = Standardisation.per_feature(inputs[train])
        inputs = self.input_scaling.apply(inputs)
        if self.task == "regression":
            self.target_scaling = Standardisation.per_feature(targets[train])
            targets = self.target_scaling.apply(targets)
        targets = targets.float() if self.task != "multiclass" else targets.long()
        return {
            name: (inputs[idx], targets[idx])
            for name, idx in (("train", train), ("val", val), ("test", test))
        }
