"""LightningDataModules that keep data sets in memory as tensors and batch them by indexing."""

from litlab.data.base import TensorDataModule
from litlab.data.image_folder import ImageFolderDataModule
from litlab.data.mnist import MNISTDataModule
from litlab.data.sequences import SequenceDataModule
from litlab.data.sklearn_datasets import SklearnDataModule
from litlab.data.synthetic import SyntheticDataModule
from litlab.data.table import TableDataModule
from litlab.data.tensor_loader import EpochPermutation, TensorBatchLoader

__all__ = [
    "EpochPermutation",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "SequenceDataModule",
    "SklearnDataModule",
    "SyntheticDataModule",
    "TableDataModule",
    "TensorBatchLoader",
    "TensorDataModule",
]
