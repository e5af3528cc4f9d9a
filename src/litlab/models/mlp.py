from collections.abc import Sequence

import torch
from torch import nn

from litlab.models.activations import activation_layer
from litlab.models.checks import (
    require_positive_int,
    require_positive_ints,
    require_probability,
)


class MLP(nn.Module):
    """Multilayer perceptron: [Linear, (BatchNorm1d), activation, (Dropout)] per hidden layer,
    then a Linear output layer.

    Input ``(N, *)`` with ``in_features`` values per sample (images are flattened),
    output ``(N, out_features)`` logits.
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        widths = [require_positive_int("in_features", in_features)]
        widths += require_positive_ints("hidden_sizes", hidden_sizes)
        dropout = require_probability("dropout", dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers.append(nn.Linear(fan_in, fan_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(activation_layer(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], require_positive_int("out_features", out_features)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
