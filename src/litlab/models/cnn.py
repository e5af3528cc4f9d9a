from collections.abc import Sequence
from typing import Annotated

import torch
from torch import nn

from litlab.config.domains import (
    ArgumentError,
    Flag,
    ImageShape,
    PositiveInt,
    PositiveInts,
    Probability,
    each,
    int_at_least,
)
from litlab.config.entries import checked

Paddings = Annotated[Sequence[int], each(int_at_least(0), "a list of integers >= 0")]


class CNN(nn.Module):
    """LeNet-style convolutional network.

    Per entry of ``channels``/``kernel_sizes``/``paddings``: Conv2d, ReLU, MaxPool2d(2); then
    Flatten and fully connected layers of ``hidden_sizes`` with ReLU, and a Linear output.
    ``batch_norm`` puts a BatchNorm2d after each convolution (colour photos train faster and
    steadier with it). ``pool_first`` puts each MaxPool2d before its ReLU: the same function
    (max-pooling and ReLU are both monotone, so they commute), with ReLU on a quarter of the
    values; faster.
    With the defaults on MNIST this is LeNet-5: the first convolution pads the 28x28 digit to
    LeNet's original 32x32 input; conv 1-6 k5, pool, conv 6-16 k5, pool, 400-120-84-10.

    Input ``(N, C, H, W)`` with ``input_shape == (C, H, W)``, output ``(N, out_features)`` logits.
    """

    @checked
    def __init__(
        self,
        input_shape: ImageShape,
        out_features: PositiveInt,
        channels: PositiveInts = (6, 16),
        kernel_sizes: PositiveInts = (5, 5),
        paddings: Paddings = (2, 0),
        hidden_sizes: PositiveInts = (120, 84),
        dropout: Probability = 0.0,
        pool_first: Flag = False,
        batch_norm: Flag = False,
    ) -> None:
        super().__init__()
        in_channels, height, width = input_shape
        channels, kernel_sizes, paddings = list(channels), list(kernel_sizes), list(paddings)
        if not len(channels) == len(kernel_sizes) == len(paddings):
            raise ArgumentError(
                "paddings",
                paddings,
                f"channels {channels}, kernel_sizes {kernel_sizes} and paddings {paddings} must "
                "have the same length (one entry per convolution)",
            )

        features: list[nn.Module] = []
        for out_channels, kernel, pad in zip(channels, kernel_sizes, paddings, strict=True):
            height = (height + 2 * pad - kernel + 1) // 2
            width = (width + 2 * pad - kernel + 1) // 2
            if height < 1 or width < 1:
                raise ArgumentError(
                    "kernel_sizes",
                    kernel_sizes,
                    f"a {input_shape} input is too small for kernel sizes {kernel_sizes}: "
                    "it shrinks to nothing; use fewer or smaller kernels (8x8 digits: "
                    "kernel_sizes=[3,3] with paddings=[1,1])",
                )
            conv = nn.Conv2d(in_channels, out_channels, kernel, padding=pad, bias=not batch_norm)
            norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
            pair = [nn.MaxPool2d(2), nn.ReLU()] if pool_first else [nn.ReLU(), nn.MaxPool2d(2)]
            features += [conv, *norm, *pair]
            in_channels = out_channels
        self.features = nn.Sequential(*features)

        widths = [in_channels * height * width, *hidden_sizes]
        classifier: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            classifier += [nn.Linear(fan_in, fan_out), nn.ReLU()]
            if dropout > 0:
                classifier.append(nn.Dropout(dropout))
        classifier.append(nn.Linear(widths[-1], out_features))
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
