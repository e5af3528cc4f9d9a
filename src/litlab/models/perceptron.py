import torch
from torch import nn

from litlab.config.domains import PositiveInt
from litlab.config.entries import checked


class Perceptron(nn.Module):
    """A single linear layer: ``logits = W x + b``.

    Input ``(N, *)`` with ``in_features`` values per sample (images are flattened),
    output ``(N, out_features)`` logits. Separates only linearly separable classes.
    """

    @checked
    def __init__(self, in_features: PositiveInt, out_features: PositiveInt) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(x))
