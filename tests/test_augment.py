"""Per-sample random affine augmentation, batched, in training batches only."""

import lightning as L
import torch

from litlab.data.augment import random_affine
from tests.helpers import mnist_module


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    """(N, 2) centres of mass (x, y) of (N, 1, H, W) non-negative images."""
    _, _, height, width = images.shape
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    mass = images.sum(dim=(1, 2, 3))
    return (
        torch.stack([(images[:, 0] * xs).sum((1, 2)), (images[:, 0] * ys).sum((1, 2))], 1)
        / (mass[:, None])
    )


def blobs(n: int) -> torch.Tensor:
    images = torch.zeros(n, 1, 28, 28)
    images[:, :, 11:17, 11:17] = 1.0
    return images


def test_zero_ranges_are_the_identity():
    images = torch.rand(8, 1, 28, 28)
    torch.testing.assert_close(random_affine(images, 0.0, 0.0), images, atol=1e-5, rtol=0)


def test_shifts_are_drawn_per_sample_and_bounded():
    torch.manual_seed(0)
    shifted = random_affine(blobs(64), max_shift=2.0, max_rotation=0.0)
    moves = centre_of_mass(shifted) - centre_of_mass(blobs(64))
    assert moves.abs().max() <= 2.0 + 1e-4
    assert moves.abs().max() > 1.0  # some samples really moved
    assert len({tuple(m.round(decimals=3).tolist()) for m in moves}) > 60  # all different
    assert torch.allclose(shifted.sum((1, 2, 3)), blobs(64).sum((1, 2, 3)), rtol=1e-4)


def test_rotation_keeps_the_centre_and_mass():
    torch.manual_seed(1)
    rotated = random_affine(blobs(16), max_shift=0.0, max_rotation=30.0)
    torch.testing.assert_close(
        centre_of_mass(rotated), centre_of_mass(blobs(16)), atol=1e-3, rtol=0
    )
    assert not torch.allclose(rotated, blobs(16), atol=1e-3)


def test_only_training_batches_are_augmented(tiny_mnist):
    datamodule = mnist_module(tiny_mnist, val_size=100)
    datamodule.augment = True
    datamodule.setup()
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    datamodule.trainer = trainer
    inputs, targets = datamodule.splits["train"][0][:32], datamodule.splits["train"][1][:32]
    plain = mnist_module(tiny_mnist).prepare_inputs(inputs.clone())

    def prepared() -> torch.Tensor:
        return datamodule.on_after_batch_transfer((inputs.clone(), targets), 0)[0]

    trainer.validating = True
    torch.testing.assert_close(prepared(), plain)
    trainer.training = True
    assert not torch.allclose(prepared(), plain)
    # examples for the model summary and graph are never augmented, and draw no random numbers
    state = torch.get_rng_state()
    expected = mnist_module(tiny_mnist).prepare_inputs(datamodule.splits["val"][0][:4].clone())
    torch.testing.assert_close(datamodule.example_inputs(torch.device("cpu"), 4), expected)
    assert torch.equal(torch.get_rng_state(), state)


def test_flip_alone_mirrors_about_half_of_the_images_and_keeps_the_rest():
    torch.manual_seed(0)
    images = torch.rand(200, 3, 6, 6)
    out = random_affine(images, max_shift=0.0, max_rotation=0.0, flip=True)
    same = (out - images).abs().amax((1, 2, 3)) < 1e-5
    mirrored = (out - images.flip(-1)).abs().amax((1, 2, 3)) < 1e-5
    assert bool((same | mirrored).all())
    assert 70 < int(mirrored.sum()) < 130


def test_a_random_crop_enlarges_part_of_the_image():
    torch.manual_seed(0)
    image = torch.zeros(1, 1, 32, 32)
    image[..., 8:24, 8:24] = 1.0  # a square of a quarter of the area
    crops = random_affine(image.expand(50, 1, 32, 32), 0.0, 0.0, min_crop=0.5)
    ink = crops.sum((1, 2, 3)) / image.sum()
    assert bool((ink >= 0.99).all()) and float(ink.max()) > 1.5  # larger, never smaller
