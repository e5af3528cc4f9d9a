from collections.abc import Sequence

import torch
from torch import nn

from litlab.models.activations import activation_layer
from litlab.models.checks import (
    ArgumentError,
    require_positive_int,
    require_positive_ints,
    require_probability,
)

# How the linear layers' weights start (biases at zero for "he" and "xavier"): None keeps
# PyTorch's uniform(+-1/sqrt(fan_in)), "he" draws normal(0, 2/fan_in) (He et al. 2015: keeps the
# signal's size through ReLU layers), "xavier" uniform with variance 2/(fan_in + fan_out)
# (Glorot & Bengio 2010: designed for tanh and sigmoid).
INITS = ("he", "xavier")


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

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        init: str | None = None,
    ) -> None:
        super().__init__()
        if init is not None and init not in INITS:
            raise ArgumentError(
                "init", init, f"unknown init {init!r}; choose one of {', '.join(INITS)} or null"
            )
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
        for layer in self.layers:
            if isinstance(layer, nn.Linear) and init is not None:
                initialise(layer, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
