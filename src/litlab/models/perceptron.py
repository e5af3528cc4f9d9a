import torch
from torch import nn

from litlab.models.checks import require_positive_int


class Perceptron(nn.Module):
    """A single linear layer: ``logits = W x + b``.

    Input ``(N, *)`` with ``in_features`` values per sample (images are flattened),
    output ``(N, out_features)`` logits. Separates only linearly separable classes.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(
            require_positive_int("in_features", in_features),
            require_positive_int("out_features", out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(x))
