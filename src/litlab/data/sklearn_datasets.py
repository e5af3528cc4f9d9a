"""Real tabular data that ships inside scikit-learn (no download): iris, wine, breast_cancer,
digits (8x8 images) and diabetes (regression), split with a seed and standardised with the
training split's statistics only."""

import functools
from collections.abc import Callable
from typing import Annotated

import numpy as np
import torch

from litlab.config.domains import CountOrFraction, one_of
from litlab.config.entries import checked
from litlab.data.base import (
    Split,
    Standardisation,
    TensorDataModule,
    held_out_counts,
    seeded_split,
    stratified_split,
)
from litlab.data.images import ImageForm
from litlab.errors import DataError

DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
# digits: 32x32 bitmaps of handwriting, the digit filling the box, counted in 4x4 blocks
# (values 0..16, ink high): https://archive.ics.uci.edu/dataset/80
DIGITS_FORM = ImageForm(height=8, width=8, box=8, centre="box", max_value=16.0)


def _loader(dataset: str) -> Callable:
    """``sklearn.datasets.load_<dataset>``; scikit-learn is imported only when one is used."""
    import sklearn.datasets

    return getattr(sklearn.datasets, f"load_{dataset}")


class SklearnDataModule(TensorDataModule):
    """One of scikit-learn's bundled data sets (``dataset``), split into train/val/test by
    ``val_size`` and ``test_size`` (counts or fractions) with a seeded permutation.

    Tabular inputs are standardised per feature, image inputs (digits, ``input_shape`` set) with
    one mean and std over all pixels, so that neighbouring pixels keep their relation; both from
    the training split only. Regression targets are standardised the same way (R2 and the
    ranking of models do not change; losses are in units of the target's spread).
    """

    @checked
    def __init__(
        self,
        dataset: Annotated[str, one_of(*DATASETS)],
        val_size: CountOrFraction = 0.2,
        test_size: CountOrFraction = 0.2,
        **facts,
    ) -> None:
        super().__init__(**facts)
        self.dataset, self.val_size, self.test_size = dataset, val_size, test_size
        self.name = dataset  # the report names the data set by it
        self.image_form = DIGITS_FORM if dataset == "digits" else None

    @functools.cached_property
    def feature_names(self) -> list[str]:
        """scikit-learn's names (iris: sepal length (cm) ..., digits: pixel_0_0 ...), read
        once."""
        return [str(name) for name in _loader(self.dataset)().feature_names]

    def load_splits(self) -> dict[str, Split]:
        bunch = _loader(self.dataset)()
        inputs = torch.as_tensor(np.asarray(bunch.data), dtype=torch.float32)
        targets = torch.as_tensor(np.asarray(bunch.target))
        self._check_facts(inputs, targets)
        val_count, test_count = held_out_counts(self.val_size, self.test_size, len(inputs))
        train, val, test = self.fold_parts(
            self._split(targets, val_count, test_count), targets, f"data={self.dataset}"
        )
        if self.input_shape is not None:  # images: one statistic for every pixel
            inputs = inputs.reshape(-1, *self.input_shape)
            self.input_scaling = Standardisation.overall(inputs[train])
        else:
            self.input_scaling = Standardisation.per_feature(inputs[train])
        inputs = self.input_scaling.apply(inputs)
        if self.task == "regression":
            self.target_scaling = Standardisation.per_feature(targets[train].float())
            targets = self.target_scaling.apply(targets.float())
        targets = targets.long() if self.task == "multiclass" else targets.float()
        return {
            name: (inputs[idx], targets[idx])
            for name, idx in (("train", train), ("val", val), ("test", test))
        }

    def _split(self, targets: torch.Tensor, val_count: int, test_count: int) -> list[torch.Tensor]:
        """Seeded; stratified for classes."""
        if self.task == "regression":
            return seeded_split(len(targets), [val_count, test_count], self.seed)
        return stratified_split(targets, val_count, test_count, self.seed, f"data={self.dataset}")

    def _check_facts(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """The data config's facts (what the model and the loss were built for) must be the
        data set's own."""
        found = {"data.num_features": inputs.shape[1]}
        if self.task != "regression":
            found["data.num_classes"] = int(targets.max()) + 1
        expected = {"data.num_features": self.num_features, "data.num_classes": self.num_classes}
        wrong = [
            f"{key}={expected[key]} (it has {value})"
            for key, value in found.items()
            if expected[key] != value
        ]
        if wrong:
            raise DataError(
                f"data={self.dataset} does not have {', '.join(wrong)}: these keys are facts of "
                "the data set, set in conf/data/; leave them as they are there."
            )
