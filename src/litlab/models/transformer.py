from collections.abc import Sequence
from typing import Annotated

import torch
from torch import nn

from litlab.config.domains import (
    ArgumentError,
    PositiveInt,
    Probability,
    Shape,
    number_above,
    one_of,
)
from litlab.config.entries import checked


class Transformer(nn.Module):
    """A small Vision-Transformer-style encoder.

    Images ``(N, C, H, W)`` (``input_shape == (C, H, W)``) are cut into ``patch_size`` squares by
    a strided convolution, one token each; sequences ``(N, steps, features)``
    (``input_shape == (steps, features)``) give one token per step through a linear layer.
    Tokens get learned position embeddings, a class token (``pool="cls"``) or none
    (``pool="mean"``: the mean over tokens), then ``depth`` pre-norm
    ``torch.nn.TransformerEncoder`` layers of width ``dim`` with ``heads`` attention heads and
    an MLP of ``mlp_ratio * dim``, a final LayerNorm and a linear head. Output
    ``(N, out_features)``.
    """

    @checked
    def __init__(
        self,
        input_shape: Shape,
        out_features: PositiveInt,
        dim: PositiveInt = 64,
        depth: PositiveInt = 4,
        heads: PositiveInt = 4,
        mlp_ratio: Annotated[float, number_above(0)] = 2.0,
        dropout: Probability = 0.1,
        patch_size: PositiveInt = 4,
        pool: Annotated[str, one_of("cls", "mean")] = "cls",
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ArgumentError(
                "heads",
                heads,
                f"dim={dim} must split evenly over heads={heads}, e.g. heads="
                f"{max(h for h in range(1, min(heads, dim) + 1) if dim % h == 0)}",
            )
        self.pool = pool
        self.embed, tokens = _embedding(input_shape, dim, patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.position = nn.Parameter(torch.zeros(1, tokens + (pool == "cls"), dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=round(dim * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x)  # (N, tokens, dim)
        if self.class_token is not None:
            tokens = torch.cat([self.class_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        encoded = self.norm(self.encoder(tokens + self.position))
        return self.head(encoded[:, 0] if self.class_token is not None else encoded.mean(dim=1))


class PatchEmbedding(nn.Module):
    """``(N, C, H, W)`` -> ``(N, H/p * W/p, dim)``: one token per ``p`` x ``p`` patch."""

    def __init__(self, channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x).flatten(2).transpose(1, 2)


class StepEmbedding(nn.Module):
    """``(N, steps, features)`` (or flattened) -> ``(N, steps, dim)``: one token per step."""

    def __init__(self, steps: int, features: int, dim: int) -> None:
        super().__init__()
        self.steps = steps
        self.project = nn.Linear(features, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x.reshape(x.shape[0], self.steps, -1))


def _embedding(input_shape: Sequence[int], dim: int, patch_size: int) -> tuple[nn.Module, int]:
    if len(input_shape) == 2:
        steps, features = input_shape
        return StepEmbedding(steps, features, dim), steps
    channels, height, width = input_shape
    if height % patch_size or width % patch_size:
        raise ArgumentError(
            "patch_size",
            patch_size,
            f"a {height}x{width} image does not split into {patch_size}x{patch_size} patches; "
            "use a patch_size that divides both sides (e.g. 4 or 7 for 28x28, 2 or 4 for 8x8)",
        )
    return PatchEmbedding(channels, dim, patch_size), (height // patch_size) * (width // patch_size)
