from collections.abc import Sequence

import torch
from torch import nn

from litlab.models.checks import (
    ArgumentError,
    require_one_of,
    require_positive_int,
    require_probability,
    sequence_shape,
)

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNN(nn.Module):
    """A recurrent network (plain RNN, LSTM or GRU: ``cell``) and a linear head.

    Input ``(N, steps, features)`` with ``input_shape == (steps, features)``, or images
    ``(N, C, H, W)`` with ``input_shape == (C, H, W)``, read one row per step (MNIST: 28 steps of
    28 features). The head reads the last step's hidden state (``pool="last"``; with
    ``bidirectional``, the forward direction's last and the backward direction's first) or the
    mean over steps (``pool="mean"``). Output ``(N, out_features)``. Uses ``torch.nn.RNN``,
    ``LSTM`` and ``GRU`` (cuDNN on a GPU); ``dropout`` acts between stacked layers.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
        pool: str = "last",
    ) -> None:
        super().__init__()
        self.steps, features = sequence_shape(input_shape)
        self.pool = require_one_of("pool", pool, ("last", "mean"))
        recurrent = CELLS[require_one_of("cell", cell, tuple(CELLS))]
        options = {"nonlinearity": require_one_of("nonlinearity", nonlinearity, ("tanh", "relu"))}
        if cell != "rnn" and nonlinearity != "tanh":
            raise ArgumentError(
                "nonlinearity", nonlinearity, f"nonlinearity applies to cell=rnn only, not {cell}"
            )
        num_layers = require_positive_int("num_layers", num_layers)
        dropout = require_probability("dropout", dropout)
        self.recurrent = recurrent(
            features,
            require_positive_int("hidden_size", hidden_size),
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bool(bidirectional),
            dropout=dropout if num_layers > 1 else 0.0,
            **(options if cell == "rnn" else {}),
        )
        directions = 2 if bidirectional else 1
        self.head = nn.Linear(
            hidden_size * directions, require_positive_int("out_features", out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.recurrent(as_sequence(x, self.steps))  # (N, steps, H * directions)
        if self.pool == "mean":
            return self.head(outputs.mean(dim=1))
        if self.recurrent.bidirectional:
            hidden = self.recurrent.hidden_size
            last = torch.cat([outputs[:, -1, :hidden], outputs[:, 0, hidden:]], dim=-1)
        else:
            last = outputs[:, -1]
        return self.head(last)


def as_sequence(x: torch.Tensor, steps: int) -> torch.Tensor:
    """``(N, steps, features)``: images ``(N, C, H, W)`` become H steps of C * W features."""
    if x.dim() == 4:
        return x.permute(0, 2, 1, 3).flatten(2)
    if x.dim() == 2:  # flattened sequences
        return x.reshape(x.shape[0], steps, -1)  # shape[0], not len(): export keeps N free
    return x
