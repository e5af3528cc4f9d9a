"""Seeded synthetic tabular data sets for classification, binary, regression, XOR and spam-score
problems."""

from collections.abc import Callable
from typing import Annotated

import torch

from litlab.config.domains import (
    PROBABILITY,
    ArgumentError,
    CountOrFraction,
    int_at_least,
    number_at_least,
    one_of,
)
from litlab.config.entries import checked
from litlab.data.base import (
    Split,
    Standardisation,
    TensorDataModule,
    held_out_counts,
    seeded_split,
)

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


SPAM_FEATURES = ["free_words", "links", "known_sender"]
# The rule behind the spam labels, in the features' own units: the weights and bias a
# perceptron on these three features can recover.
SPAM_WEIGHTS, SPAM_BIAS = (1.5, 0.8, -3.0), -2.0


def spam(n: int, features: int, classes: int | None, noise: float, rng: torch.Generator) -> Split:
    """E-mails as three numbers: how many words like "free" or "winner" they hold, how many
    links, and whether the sender is in the address book (1) or not (0). An e-mail is spam (1)
    where ``SPAM_WEIGHTS . x + SPAM_BIAS`` plus logistic noise of scale ``noise`` is above 0."""
    free_words = torch.poisson(torch.full((n,), 1.5), generator=rng)
    links = torch.poisson(torch.full((n,), 1.0), generator=rng)
    known_sender = torch.bernoulli(torch.full((n,), 0.4), generator=rng)
    inputs = torch.stack([free_words, links, known_sender], dim=1)
    uniform = torch.rand(n, generator=rng).clamp(1e-6, 1 - 1e-6)
    score = inputs @ torch.tensor(SPAM_WEIGHTS) + SPAM_BIAS + noise * torch.logit(uniform)
    return inputs, (score > 0).long()


GENERATORS: dict[str, Generator] = {
    "blobs": blobs,
    "xor": xor,
    "regression": regression,
    "spam": spam,
}
# Generators whose columns mean something; the others' are x1, x2, ...
FEATURE_NAMES = {"spam": SPAM_FEATURES}


class SyntheticDataModule(TensorDataModule):
    """Generates ``num_samples`` samples with a seeded generator, standardises inputs (and
    regression targets) with the training split's statistics, and splits train/val/test.

    ``outliers`` (regression only) is the share of *training* targets turned into gross errors,
    shifted up by ten times the targets' spread, as a broken sensor or a typo would; validation
    and test targets stay clean, so the test metrics say how well a loss ignored them."""

    @checked
    def __init__(
        self,
        generator: Annotated[str, one_of(*GENERATORS)],
        num_samples: Annotated[int, int_at_least(3)] = 6000,
        noise: Annotated[float, number_at_least(0)] = 1.0,
        val_size: CountOrFraction = 0.1,
        test_size: CountOrFraction = 0.2,
        outliers: Annotated[float, PROBABILITY] = 0.0,  # the share of training targets
        **facts,
    ) -> None:
        super().__init__(**facts)
        needs_classes = generator != "regression"
        if needs_classes and (self.num_classes or 0) < 2:
            raise ArgumentError(
                "num_classes",
                self.num_classes,
                f"generator={generator} makes classes: num_classes must be at least 2, e.g. 3",
            )
        if generator == "spam" and (self.num_classes != 2 or self.num_features != 3):
            raise ArgumentError(
                "num_features",
                self.num_features,
                f"generator=spam makes 2 classes from 3 features, not {self.num_classes} from "
                f"{self.num_features}: set num_classes=2 and num_features=3",
            )
        if generator == "xor" and (self.num_classes != 2 or self.num_features < 2):
            raise ArgumentError(
                "num_classes",
                self.num_classes,
                f"generator=xor needs num_classes=2 and num_features >= 2 (num_features is "
                f"{self.num_features})",
            )
        expected_task = {"regression": {"regression"}}.get(generator, {"multiclass", "binary"})
        if self.task not in expected_task or (self.task == "binary" and self.num_classes != 2):
            raise ArgumentError(
                "task",
                self.task,
                f"generator={generator} with num_classes={self.num_classes} needs task "
                f"{' or '.join(sorted(expected_task))} (binary needs exactly 2 classes)",
            )
        if outliers and generator != "regression":
            raise ArgumentError(
                "outliers",
                outliers,
                f"only generator=regression has targets to corrupt (this is {generator}); set "
                "outliers=0",
            )
        self.generator, self.num_samples, self.noise = generator, num_samples, noise
        self.outliers = outliers
        self.val_count, self.test_count = held_out_counts(val_size, test_size, num_samples)

    @property
    def feature_names(self) -> list[str]:
        return FEATURE_NAMES.get(self.generator) or super().feature_names

    def load_splits(self) -> dict[str, Split]:
        rng = torch.Generator().manual_seed(self.seed)
        inputs, targets = GENERATORS[self.generator](
            self.num_samples, self.num_features, self.num_classes, self.noise, rng
        )
        train, val, test = self.fold_parts(
            seeded_split(self.num_samples, [self.val_count, self.test_count], self.seed + 1),
            targets,
            f"data={self.generator}",
        )
        if self.outliers:
            targets = targets.clone()
            corrupted = train[: round(self.outliers * len(train))]  # train is in random order
            targets[corrupted] += 10 * targets[train].std()
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
