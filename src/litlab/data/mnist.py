"""MNIST and the data sets made in its format (Fashion-MNIST, Kuzushiji-MNIST) through
torchvision's own classes and IDX parser, held in memory as uint8 tensors."""

from pathlib import Path
from typing import Annotated

import torch
from torchvision.datasets import KMNIST, MNIST, FashionMNIST

from litlab.config.domains import (
    COUNT_OR_FRACTION,
    CountOrFraction,
    Domain,
    Flag,
    example,
    is_number,
    number_above,
    number_between,
    one_of,
    or_none,
)
from litlab.config.entries import checked
from litlab.data.augment import random_affine
from litlab.data.base import Split, TensorDataModule, seeded_split, split_count
from litlab.data.images import ImageForm
from litlab.errors import DataError

# data.dataset -> torchvision's class; it keeps the files in <data_dir>/<class name>/raw/.
DATASETS = {"mnist": MNIST, "fashion_mnist": FashionMNIST, "kmnist": KMNIST}
# How each data set's images were made, white ink on black: MNIST's digits were scaled to fit
# a 20x20 box and centred by their centre of mass in 28x28 (LeCun et al.); Fashion-MNIST's
# products were scaled so the longer side fills 28 and centred (Xiao et al. 2017); Kuzushiji-
# MNIST follows MNIST's recipe (Clanuwat et al. 2018).
IMAGE_FORMS = {
    "mnist": ImageForm(height=28, width=28, box=20, centre="mass"),
    "fashion_mnist": ImageForm(height=28, width=28, box=28, centre="box"),
    "kmnist": ImageForm(height=28, width=28, box=20, centre="mass"),
}
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(TensorDataModule):
    """The official 60k/10k split of an MNIST-format data set (``dataset``: mnist,
    fashion_mnist or kmnist) plus a seeded validation split carved from train; ``train_size``
    (a count or a fraction) keeps a seeded subset of the remaining training images, e.g. to
    watch a large network overfit 1,000 digits.

    Images stay uint8 ``(N, 28, 28)`` in memory (47 MB); each batch is scaled and normalised on
    the device to float ``(B, 1, 28, 28)`` with the training set's ``mean`` and ``std`` (of
    pixel values in [0, 1], the data config's facts).
    """

    @checked
    def __init__(
        self,
        data_dir: str,
        mean: Annotated[float, Domain(is_number, "a number", example=0.1307)],
        std: Annotated[float, example(number_above(0), 0.3081)],
        dataset: Annotated[str, one_of(*DATASETS)] = "mnist",
        val_size: CountOrFraction = 5000,
        train_size: Annotated[int | float | None, or_none(COUNT_OR_FRACTION, "all")] = None,
        download: Flag = True,
        augment: Flag = False,
        max_shift: Annotated[float, number_between(0, 14, "a number of pixels in [0, 14]")] = 2.0,
        max_rotation: Annotated[float, number_between(0, 180, "degrees in [0, 180]")] = 10.0,
        **facts,
    ) -> None:
        super().__init__(**facts)
        self.source, self.name = DATASETS[dataset], dataset
        self.image_form = IMAGE_FORMS[dataset]
        self.mean, self.std = mean, std
        self.data_dir, self.val_size, self.download = Path(data_dir), val_size, download
        self.train_size = train_size
        self.augment, self.max_shift, self.max_rotation = augment, max_shift, max_rotation

    def load_splits(self) -> dict[str, Split]:
        train_images, train_labels = self._read(train=True)
        test_images, test_labels = self._read(train=False)
        val_count = split_count("data.val_size", self.val_size, len(train_images))
        train_idx, val_idx = seeded_split(len(train_images), [val_count], self.seed)
        train_idx, val_idx, _ = self.fold_parts(
            [train_idx, val_idx, val_idx[:0]], train_labels, "MNIST's training images"
        )
        train_idx = train_idx[: self._train_count(len(train_idx))]  # in seeded random order
        return {
            "train": (train_images[train_idx], train_labels[train_idx]),
            "val": (train_images[val_idx], train_labels[val_idx]),
            "test": (test_images, test_labels),
        }

    def _train_count(self, available: int) -> int:
        if self.train_size is None:
            return available
        return split_count("data.train_size", self.train_size, available, leave_rest=False)

    def prepare_inputs(self, inputs: torch.Tensor, training: bool = False) -> torch.Tensor:
        images = inputs.unsqueeze(1).float()
        if self.augment and training:
            images = random_affine(images, self.max_shift, self.max_rotation)
        return self.normalise(images)

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """Pixels 0..255 -> ``(x / 255 - mean) / std`` as one multiply and one subtract; needs no
        data files (the statistics are the data config's)."""
        return raw.mul(1 / (255 * self.std)).sub_(self.mean / self.std)  # sub_: no 3rd tensor

    def raw_inputs(self, split: str) -> torch.Tensor:
        self.setup()
        assert self.splits is not None
        return self.splits[split][0].unsqueeze(1).float()

    def _read(self, train: bool) -> Split:
        raw_dir = self.data_dir / self.source.__name__ / "raw"
        try:
            dataset = self.source(str(self.data_dir), train=train, download=self.download)
        except Exception as err:  # torchvision raises RuntimeError, AssertionError, ValueError
            if not all((raw_dir / name).is_file() for name in RAW_FILES):
                raise DataError(self._missing_message(raw_dir, err)) from err
            raise DataError(
                f"The {self.source.__name__} files in {raw_dir} could not be parsed "
                f"({type(err).__name__}: {err or 'bad header'}). They are damaged or not IDX "
                "files: delete them so that torchvision downloads fresh copies, or point "
                "paths.data_dir (or LITLAB_DATA_DIR) at a folder holding good ones under "
                f"{self.source.__name__}/raw/."
            ) from err
        images, labels = dataset.data, dataset.targets
        if images.shape[1:] != self.input_shape[1:] or len(images) != len(labels):
            raise DataError(
                f"The {self.source.__name__} files in {raw_dir} hold {len(images)} images of shape "
                f"{tuple(images.shape[1:])} and {len(labels)} labels; expected one label per "
                f"{self.input_shape[1:]} image. Replace the files with the original ones."
            )
        if labels.numel() and int(labels.max()) >= self.num_classes:
            raise DataError(
                f"The {self.source.__name__} labels in {raw_dir} go up to {int(labels.max())}, "
                f"beyond data.num_classes={self.num_classes}. Replace the files with the original "
                "ones."
            )
        return images, labels

    def _missing_message(self, raw_dir: Path, err: Exception) -> str:
        present = [name for name in RAW_FILES if (raw_dir / name).exists()]
        action = (
            f"downloading them failed ({err})"
            if self.download
            else "downloading is off (data.download=false)"
        )
        return (
            f"{self.source.__name__} was not found in {raw_dir} (present: "
            f"{', '.join(present) or 'none'} of {', '.join(RAW_FILES)}) and {action}. Point "
            "paths.data_dir=<folder> or the environment variable LITLAB_DATA_DIR at a folder "
            f"that holds {self.source.__name__}/raw/ with the four IDX files (.gz copies are "
            "unpacked automatically), or run once with network access."
        )
