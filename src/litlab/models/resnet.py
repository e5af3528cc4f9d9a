from typing import Annotated

import torch
from torch import nn

from litlab.config.domains import (
    ArgumentError,
    ImageShape,
    PositiveInt,
    example,
    int_at_least,
    one_of,
)
from litlab.config.entries import checked


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut: ``relu(x' + shortcut(x))``; the
    shortcut is a strided 1x1 convolution where the block halves the size or widens."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A small residual network for images of any size and channel count, after He et al.
    (2016)'s CIFAR networks: a 3x3 convolution, three stages of ``(depth - 2) / 6`` basic
    blocks of ``width``, 2x and 4x channels (the last two halving the size), global average
    pooling and a linear layer. ``depth=8``: ResNet-8 (78k parameters at width 16), ``20``:
    ResNet-20 (0.27M). ``stem_stride=2`` halves large images (96 pixels and more) at once.

    Input ``(N, C, H, W)`` with ``input_shape == (C, H, W)``, output ``(N, out_features)``.
    """

    @checked
    def __init__(
        self,
        input_shape: ImageShape,
        out_features: PositiveInt,
        depth: Annotated[int, example(int_at_least(8), 20)] = 8,
        width: PositiveInt = 16,
        stem_stride: Annotated[int, one_of(1, 2)] = 1,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ArgumentError(
                "depth", depth, "a ResNet of this kind has 6n+2 layers: 8, 14, 20, 32, 44, 56"
            )
        blocks = (depth - 2) // 6
        channels = input_shape[0]
        layers: list[nn.Module] = [
            nn.Conv2d(channels, width, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        in_channels = width
        for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(in_channels, out_channels, stride))
                in_channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(in_channels, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
