"""Batched random affine augmentation, drawn per sample, on whatever device the batch is on.

Written by hand because torchvision's RandomAffine draws one set of parameters per call, i.e.
per batch; per-sample draws with it would mean a Python loop over the batch.
"""

import math

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,
    max_shift: float = 2.0,
    max_rotation: float = 10.0,
    flip: bool = False,
    min_crop: float = 1.0,
) -> torch.Tensor:
    """Shift each image of ``(N, C, H, W)`` by up to ``max_shift`` pixels and rotate it by up to
    ``max_rotation`` degrees, independently per sample (bilinear, zero padding); with ``flip``
    mirror half of them left to right; with ``min_crop`` < 1 cut a random crop of that share of
    the area or more, scaled back to the full size. One resampling for all of it."""
    n, _, height, width = images.shape
    device = images.device
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(max_rotation)
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / size
    shift = (torch.rand(n, 2, device=device) * 2 - 1) * max_shift
    area = 1 - torch.rand(n, device=device) * (1 - min_crop)
    scale = area.sqrt()  # of each side: the share of the image the output shows
    mirror = (
        torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
        if flip
        else torch.ones(n, device=device)
    )
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, shift[:, 0] * 2 / width], dim=1),
            torch.stack([sin * mirror, cos, shift[:, 1] * 2 / height], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
