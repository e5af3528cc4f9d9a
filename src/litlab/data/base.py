"""The common part of litlab's data modules: splits held as tensors, loaders, batch preparation."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import lightning as L
import numpy as np
import torch

from litlab.config.domains import (
    BOOLEAN,
    POSITIVE_INT,
    SHAPE,
    PositiveInt,
    example,
    int_at_least,
    one_of,
    or_none,
)
from litlab.config.entries import checked
from litlab.data.images import Formed, ImageForm, Preprocessing, to_form
from litlab.data.tensor_loader import EpochPermutation, TensorBatchLoader
from litlab.errors import ConfigError, DataError
from litlab.metric_names import TASKS, class_names_or_indices

if TYPE_CHECKING:
    from PIL import Image

Split = tuple[torch.Tensor, torch.Tensor]

# The data set's facts, which the model, the loss and the metrics read (conf/data/*.yaml).
Task = Annotated[str, example(one_of(*TASKS), "multiclass")]
NumClasses = Annotated[int | None, or_none(example(int_at_least(2), 3), "regression")]
NumFeatures = Annotated[int, example(POSITIVE_INT, 13)]
NumOutputs = Annotated[int, example(POSITIVE_INT, 1)]
InputShape = Annotated[Sequence[int] | None, or_none(example(SHAPE, [1, 28, 28]), "tabular data")]
Seed = Annotated[int, int_at_least(0)]
OnDevice = Annotated[bool | None, or_none(example(BOOLEAN, False), "auto: on a GPU, yes")]


def split_count(key: str, value: int | float, total: int, leave_rest: bool = True) -> int:
    """Resolve a split size given as a count (int) or a fraction (float in (0, 1)) of ``total``;
    it must leave samples for the rest unless ``leave_rest`` is false (a subset may be all)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"{key}={value!r} is not a number. Give a count or a fraction, e.g. {key}=0.1."
        )
    count = round(value * total) if isinstance(value, float) and 0 < value < 1 else value
    most = total - 1 if leave_rest else total
    if isinstance(count, float) or not 1 <= count <= most:
        rule = (
            "it must leave at least one sample on each side" if leave_rest else "it keeps 1 to all"
        )
        raise ConfigError(
            f"{key}={value!r} does not fit a data set of {total} samples: {rule}. Give a "
            f"count from 1 to {most} or a fraction such as {key}=0.1."
        )
    return int(count)


def held_out_counts(val_size: int | float, test_size: int | float, total: int) -> tuple[int, int]:
    """``(val_count, test_count)`` of a data set that has no official test split; both must
    leave training samples."""
    test_count = split_count("data.test_size", test_size, total)
    val_count = split_count("data.val_size", val_size, total)
    if val_count + test_count >= total:
        raise ConfigError(
            f"data.val_size={val_size} and data.test_size={test_size} leave no training "
            f"samples out of {total}; make them smaller, e.g. data.val_size=0.1 "
            "data.test_size=0.2."
        )
    return val_count, test_count


@dataclass(frozen=True)
class Fold:
    """Which part of a k-fold cross-validation a run trains (``cv.folds``, ``cv.fold``): fold
    ``index`` (0-based) of ``count`` validates on one of ``count`` seeded parts of the training
    and validation samples pooled; ``index`` None is the refit, which trains on all of them."""

    index: int | None
    count: int


class TensorDataModule(L.LightningDataModule):
    """Holds train/val/test splits as ``(inputs, targets)`` tensors on the CPU and serves them
    through :class:`TensorBatchLoader`. Subclasses implement :meth:`load_splits` and, for raw
    inputs such as uint8 images, :meth:`prepare_inputs`, which runs per batch on the device.

    The keyword arguments ``task``, ``num_classes``, ``num_outputs``, ``num_features``,
    ``input_shape`` and ``class_names`` are the data set's facts that the rest of the config
    reads; subclasses check that the loaded data agrees with them.

    A trained model is used on inputs in the data set's *raw* form: float ``(N, *input_shape)``
    (or ``(N, num_features)`` for tabular data) in the units of the original data (MNIST:
    pixels 0..255, white ink on black; tables: each feature in its own unit). :meth:`normalise`
    turns raw inputs into model inputs, :meth:`raw_inputs` gives a stored split in raw form,
    and :meth:`target_units` turns a regression model's outputs back into the target's units;
    ``image_form`` says how the images were made and ``feature_names`` name the columns.
    """

    image_form: ImageForm | None = None
    input_scaling: "Standardisation | None" = None  # set by load_splits of standardised data
    target_scaling: "Standardisation | None" = None

    @checked
    def __init__(
        self,
        *,
        task: Task,
        num_features: NumFeatures,
        num_outputs: NumOutputs,
        num_classes: NumClasses = None,
        input_shape: InputShape = None,
        class_names: Sequence[str] | None = None,
        batch_size: PositiveInt = 128,
        eval_batch_size: PositiveInt = 1000,
        seed: Seed = 0,
        on_device: OnDevice = None,
    ) -> None:
        super().__init__()
        self.task, self.num_features, self.num_outputs = task, num_features, num_outputs
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.class_names = class_names_or_indices(class_names, num_classes)
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.on_device = on_device
        self.splits: dict[str, Split] | None = None
        self.test_split = "test"  # the split test_dataloader serves (eval.py split=val)
        self.preparation_notes: list[str] = []  # what was done to the data, for the report
        self.fold: Fold | None = None  # cross-validation: set by litlab.build

    def fold_parts(
        self, parts: Sequence[torch.Tensor], targets: torch.Tensor | None, name: str
    ) -> list[torch.Tensor]:
        """This run's ``[train, val, test]`` sample indices: as split (``parts``) without
        cross-validation; in a fold, the training and validation samples pooled and cut into
        ``fold.count`` seeded parts (stratified by ``targets`` for classes), one of which
        validates. The test split stays as it was, held out from every fold. Each data module
        calls this on its split, before it fits any statistic to the training samples."""
        if self.fold is None:
            return list(parts)
        train, val, test = parts
        pool = torch.cat([train, val]).sort().values
        if self.fold.index is None:  # the refit: every pooled sample trains
            return [pool, pool[:0], test]
        labels = None if targets is None or self.task == "regression" else targets[pool]
        train_at, val_at = cross_validation_split(len(pool), labels, self.fold, self.seed, name)
        return [pool[train_at], pool[val_at], test]

    def load_splits(self) -> dict[str, Split]:
        """Return ``{"train": (x, y), "val": (x, y), "test": (x, y)}`` as CPU tensors."""
        raise NotImplementedError

    def prepare_inputs(self, inputs: torch.Tensor, training: bool = False) -> torch.Tensor:
        """Turn a batch of stored inputs into model inputs (on the model's device); ``training``
        batches may be augmented."""
        return inputs

    def form_image(self, image: "Image.Image", steps: Preprocessing) -> Formed:
        """A person's picture in the data set's raw form (predict.py)."""
        assert self.image_form is not None, "only image data sets take pictures"
        return to_form(image, self.image_form, steps)

    def sample_name(self, split: str, index: int) -> str | None:
        """Where sample ``index`` of ``split`` came from (a file, a table's line), if known."""
        return None

    @property
    def feature_names(self) -> list[str]:
        """The names of the ``num_features`` inputs, as a CSV header gives them."""
        return [f"x{index}" for index in range(1, self.num_features + 1)]

    def describe_raw_inputs(self) -> str:
        """The raw form in words, for an exported model's metadata."""
        form = self.image_form
        if form is not None:
            return f"pixels 0..{form.max_value:g}, light ink on a dark background"
        if self.input_shape is not None:
            return "the sequence's values, as the data set holds them"
        return "features in their own units: " + ", ".join(self.feature_names)

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw inputs (see the class docstring) -> model inputs; traceable, for export."""
        scaling = self._scaling("input_scaling")
        return raw if scaling is None else scaling.apply(raw)

    def raw_inputs(self, split: str) -> torch.Tensor:
        """A split's inputs in raw form (float), as :meth:`normalise` takes them."""
        self.setup()
        assert self.splits is not None
        stored = self.splits[split][0].float()
        scaling = self.input_scaling
        return stored if scaling is None else scaling.invert(stored)

    def target_units(self, values: torch.Tensor) -> torch.Tensor:
        """A regression model's outputs in the units of the original target."""
        scaling = self._scaling("target_scaling")
        return values if scaling is None else scaling.invert(values)

    def _scaling(self, name: str) -> "Standardisation | None":
        self.setup()  # the statistics are the training split's
        return getattr(self, name)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        splits = self.load_splits()
        train_size = len(splits["train"][0])
        if self.batch_size > train_size:
            raise ConfigError(
                f"data.batch_size={self.batch_size} is larger than the training split "
                f"({train_size} samples). Use a batch size of at most {train_size}, "
                f"e.g. data.batch_size={min(64, train_size)}."
            )
        self.splits = splits

    def _loader(self, split: str, batch_size: int, train: bool) -> TensorBatchLoader:
        assert self.splits is not None, "setup() runs before the loaders are asked for"
        trainer = self.trainer
        if trainer is not None and self._keep_on_device(trainer.strategy.root_device):
            self._move_splits(trainer.strategy.root_device)
        inputs, targets = self.splits[split]
        # debug=overfit must see the same few batches every epoch; Lightning only turns off
        # shuffling for DataLoaders.
        overfitting = trainer is not None and bool(trainer.overfit_batches)
        sampler = EpochPermutation(
            len(inputs),
            shuffle=train and not overfitting,
            seed=self.seed,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            even_shards=train,
        )
        return TensorBatchLoader((inputs, targets), batch_size, sampler)

    def _keep_on_device(self, device: torch.device) -> bool:
        """data.on_device: null means yes on a GPU; on the CPU the data is there already."""
        return device.type != "cpu" and self.on_device is not False

    def _move_splits(self, device: torch.device) -> None:
        assert self.splits is not None
        tensors = [t for split in self.splits.values() for t in split if t.device != device]
        if not tensors:
            return
        needed = sum(t.numel() * t.element_size() for t in tensors)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if needed > free // 2:  # leave the model and activations at least half
                raise ConfigError(
                    f"data.on_device=true needs {needed / 2**20:.0f} MiB on {device}, but only "
                    f"{free / 2**20:.0f} MiB are free there. Set data.on_device=false to keep "
                    "the data in host memory and copy each batch."
                )
        self.splits = {
            name: (x.to(device, non_blocking=True), y.to(device, non_blocking=True))
            for name, (x, y) in self.splits.items()
        }

    def train_dataloader(self) -> TensorBatchLoader:
        return self._loader("train", self.batch_size, train=True)

    def val_dataloader(self) -> TensorBatchLoader:
        return self._loader("val", self.eval_batch_size, train=False)

    def test_dataloader(self) -> TensorBatchLoader:
        return self._loader(self.test_split, self.eval_batch_size, train=False)

    def on_after_batch_transfer(self, batch: Split, dataloader_idx: int) -> Split:
        inputs, targets = batch
        training = self.trainer is not None and self.trainer.training
        return self.prepare_inputs(inputs, training), targets

    def example_inputs(self, device: torch.device, count: int = 2) -> torch.Tensor:
        """The first ``count`` validation inputs as the model sees them (never augmented): for
        the model summary's shapes and TensorBoard's graph."""
        assert self.splits is not None, "setup() runs before examples are asked for"
        val, train = self.splits["val"][0], self.splits["train"][0]
        inputs = (val if len(val) else train)[:count].to(device)  # a refit has no validation
        return self.prepare_inputs(inputs.clone(), training=False)


def rarest_class(labels: torch.Tensor) -> tuple[int, int]:
    """``(class index, samples)`` of the class with the fewest samples among those present."""
    counts = torch.bincount(labels.long())
    smallest = int(counts[counts > 0].min())
    return int(torch.where(counts == smallest)[0][0]), smallest


def cross_validation_split(
    num_samples: int, labels: torch.Tensor | None, fold: Fold, seed: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(train, val)`` of ``fold`` among ``num_samples`` pooled samples: scikit-learn's
    StratifiedKFold when ``labels`` are classes (each fold holds every class in its share),
    KFold otherwise; shuffled with ``seed``, so each seed's folds are its own."""
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = fold.count
    if labels is None:
        if folds > num_samples:
            raise ConfigError(
                f"cv.folds={folds} needs at least {folds} training and validation samples; "
                f"{name} has {num_samples}. Use fewer folds, e.g. cv.folds=5."
            )
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(num_samples)))[fold.index]
    rarest, smallest = rarest_class(labels)
    if smallest < folds:
        raise ConfigError(
            f"cv.folds={folds} is more folds than {name} has samples of class index {rarest} "
            f"({smallest} in its training and validation splits): a stratified fold holds one "
            f"of each class at least. Use cv.folds={max(2, smallest)} or fewer, or add samples "
            "of that class."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(num_samples), labels.numpy()))[fold.index]


def refuse_changed_data(trained_on: str | None, now: str | None, source: str) -> None:
    """A checkpoint's model meets the user's files again (eval.py, export.py, resume): were
    they changed since it was trained, its seeded splits would differ and its test split
    could hold samples it was trained on. ``trained_on`` and ``now`` digest the files."""
    if trained_on is None or now is None or trained_on == now:
        return
    raise DataError(
        f"{source} changed since this model was trained (files or rows were added, removed or "
        "edited): its training, validation and test splits would now differ, and the test "
        "split could hold samples it learned from. Use the data as it was, or train a new "
        "model on the data as it is."
    )


def seeded_split(num_samples: int, sizes: Sequence[int], seed: int) -> list[torch.Tensor]:
    """Index tensors of a seeded random partition of ``range(num_samples)`` into ``sizes``
    (whatever is left over forms the first part)."""
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    first = num_samples - sum(sizes)
    return list(order.split([first, *sizes]))


def stratified_split(
    targets: torch.Tensor, val_count: int, test_count: int, seed: int, name: str
) -> list[torch.Tensor]:
    """Seeded index tensors ``[train, val, test]`` (sorted) that hold every class in its share
    (scikit-learn's train_test_split): on 150 irises a plain random split can leave the test
    split with few of one species. ``name`` says which data set, for the message."""
    classes = len(targets.unique())
    for key, count in (("data.val_size", val_count), ("data.test_size", test_count)):
        if 0 < count < classes:
            raise ConfigError(
                f"{key} leaves {count} samples of {name}, fewer than its {classes} classes: a "
                f"stratified split holds one of each at least. Give a count of {classes} or "
                f"more, or a fraction such as {key}=0.2."
            )
    (rarest, smallest), needed = rarest_class(targets), 3 if test_count else 2
    if smallest < needed:  # one of each class in every split
        splits = "training, validation and test" if test_count else "training and validation"
        raise DataError(
            f"A class of {name} (class index {rarest}) has {smallest} sample(s): a split that "
            f"keeps every class in {splits} needs {needed} of each at least. Add samples of "
            "it, or leave the class out."
        )
    from sklearn.model_selection import train_test_split

    rest, labels = np.arange(len(targets)), targets.numpy()
    test = np.empty(0, dtype=np.int64)
    try:
        if test_count:
            rest, test = train_test_split(
                rest, test_size=test_count, random_state=seed, stratify=labels
            )
        train, val = train_test_split(
            rest, test_size=val_count, random_state=seed, stratify=labels[rest]
        )
    except ValueError as err:  # scikit-learn's refusal of a split too small for its classes
        raise DataError(
            f"{name} cannot be split by class with data.val_size and data.test_size: {err} "
            "Give larger validation and test shares (e.g. data.val_size=0.2), or more samples "
            "of the rarest class."
        ) from err
    return [torch.as_tensor(np.sort(part)) for part in (train, val, test)]


@dataclass(frozen=True)
class Standardisation:
    """``(x - mean) / std`` with the statistics of a reference: the training split's, so that
    validation and test data leak nothing into the inputs. Kept, so that new inputs get the
    same scaling and outputs can be turned back into their units."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def per_feature(cls, reference: torch.Tensor) -> "Standardisation":
        """One mean and std per feature (column); a feature constant in the reference keeps
        its scale (std 1, as scikit-learn's StandardScaler): a one-hot column that training
        never set would otherwise turn a 1 into 1e8."""
        std = reference.std(0)
        return cls(reference.mean(0), torch.where(std > 1e-8, std, torch.ones_like(std)))

    @classmethod
    def overall(cls, reference: torch.Tensor) -> "Standardisation":
        """One mean and std over every value (image pixels keep their relation)."""
        flat = reference.flatten()
        return cls(flat.mean(), flat.std().clamp_min(1e-8))

    def apply(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / self.std

    def invert(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.std + self.mean
