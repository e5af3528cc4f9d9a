import torch
from torch import nn

from litlab.models.checks import require_positive_int


class SimpleNN(nn.Module):
    """The classic MNIST network: Flatten, Linear(784, 256), ReLU, Linear(256, 10).

    Input ``(N, 1, 28, 28)`` or ``(N, 784)``, output ``(N, out_features)`` logits.
    With the defaults it has 203,530 parameters.
    """

    def __init__(self, in_features: int = 784, hidden_size: int = 256, out_features: int = 10):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(
                require_positive_int("in_features", in_features),
                require_positive_int("hidden_size", hidden_size),
            ),
            nn.ReLU(),
            nn.Linear(hidden_size, require_positive_int("out_features", out_features)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
