from typing import Annotated

import torch
from torch import nn

from litlab.config.domains import (
    STARTING_WEIGHTS,
    Flag,
    PositiveInt,
    PositiveInts,
    Probability,
    one_of,
    or_none,
)
from litlab.config.entries import checked
from litlab.models.activations import Activation, activation_layer

# How the linear layers' weights start (biases at zero for "he" and "xavier"): None keeps
# PyTorch's uniform(+-1/sqrt(fan_in)), "he" draws normal(0, 2/fan_in) (He et al. 2015: keeps the
# signal's size through ReLU layers), "xavier" uniform with variance 2/(fan_in + fan_out)
# (Glorot & Bengio 2010: designed for tanh and sigmoid).
INITS = ("he", "xavier")
Init = Annotated[str | None, or_none(one_of(*INITS), "PyTorch's default"), STARTING_WEIGHTS]


def initialise(layer: nn.Linear, init: str) -> None:
    if init == "he":
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    else:
        nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)


class MLP(nn.Module):
    """Multilayer perceptron: [Linear, (BatchNorm1d), activation, (Dropout)] per hidden layer,
    then a Linear output layer; ``init`` picks how the weights start (one of ``INITS``, or None
    for PyTorch's default).

    Input ``(N, *)`` with ``in_features`` values per sample (images are flattened),
    output ``(N, out_features)`` logits.
    """

    @checked
    def __init__(
        self,
        in_features: PositiveInt,
        hidden_sizes: PositiveInts,
        out_features: PositiveInt,
        activation: Activation = "relu",
        dropout: Probability = 0.0,
        batch_norm: Flag = False,
        init: Init = None,
    ) -> None:
        super().__init__()
        widths = [in_features, *hidden_sizes]
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers.append(nn.Linear(fan_in, fan_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(activation_layer(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], out_features))
        self.layers = nn.Sequential(*layers)
        for layer in self.layers:
            if isinstance(layer, nn.Linear) and init is not None:
                initialise(layer, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
