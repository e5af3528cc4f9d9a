import torch
from torch import nn

from litlab.config.domains import PositiveInt
from litlab.config.entries import checked


class SimpleNN(nn.Module):
    """The classic MNIST network: Flatten, Linear(784, 256), ReLU, Linear(256, 10).

    Input ``(N, 1, 28, 28)`` or ``(N, 784)``, output ``(N, out_features)`` logits.
    With the defaults it has 203,530 parameters.
    """

    @checked
    def __init__(
        self,
        in_features: PositiveInt = 784,
        hidden_size: PositiveInt = 256,
        out_features: PositiveInt = 10,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
