"""The data modules, built with the keyword arguments of conf/data/*.yaml, on tiny local files.

No test here touches the network: missing files always come with download=False, and
torchvision's downloader is patched to fail loudly if anything calls it.
"""

import re
import shutil
import struct
from pathlib import Path

import pytest
import torch
from torchvision.datasets import KMNIST, MNIST, FashionMNIST

from litlab.config.domains import ArgumentError
from litlab.data import (
    MNISTDataModule,
    SequenceDataModule,
    SklearnDataModule,
    SyntheticDataModule,
    TensorBatchLoader,
)
from litlab.data.synthetic import SPAM_BIAS, SPAM_WEIGHTS
from litlab.errors import ConfigError, DataError
from tests.helpers import TINY_TEST, TINY_TRAIN, data_kwargs, make_tiny_mnist, mnist_module

# A value outside its key's domain is refused by the constructor (ArgumentError, naming the
# argument); one that fits its domain but not the data (too large a split) by setup().
REFUSED = (ConfigError, ArgumentError)


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    def refuse(self):
        raise AssertionError("a test tried to download MNIST")

    monkeypatch.setattr(MNIST, "download", refuse)


def row_keys(images: torch.Tensor, labels: torch.Tensor) -> list[bytes]:
    """One hashable key per (image, label) sample."""
    pairs = zip(images, labels, strict=True)
    return [img.numpy().tobytes() + bytes([int(lab)]) for img, lab in pairs]


# --- MNIST ------------------------------------------------------------------------------------


def test_mnist_config_kwargs_are_the_expected_facts(tiny_mnist):
    dm = mnist_module(tiny_mnist)
    assert dm.task == "multiclass"
    assert dm.num_classes == dm.num_outputs == 10
    assert dm.num_features == 784
    assert dm.input_shape == (1, 28, 28)
    assert dm.class_names == [str(i) for i in range(10)]
    assert dm.batch_size == 128


def test_mnist_splits(tiny_mnist):
    dm = mnist_module(tiny_mnist, val_size=100)
    dm.setup("fit")
    sizes = {name: len(x) for name, (x, _) in dm.splits.items()}
    assert sizes == {"train": TINY_TRAIN - 100, "val": 100, "test": TINY_TEST}
    for name, (images, labels) in dm.splits.items():
        assert images.dtype == torch.uint8, name
        assert images.shape[1:] == (28, 28)
        assert labels.dtype == torch.int64, name
        assert len(labels) == len(images)
        assert 0 <= int(labels.min()) and int(labels.max()) <= 9
    # Train and val together are exactly the training file, without overlap.
    train_keys = row_keys(*dm.splits["train"])
    val_keys = row_keys(*dm.splits["val"])
    assert len(set(train_keys)) == len(train_keys)
    assert not set(train_keys) & set(val_keys)
    train_file = MNIST(str(tiny_mnist), train=True, download=False)
    assert set(train_keys) | set(val_keys) == set(row_keys(train_file.data, train_file.targets))


def test_mnist_val_split_depends_on_seed(tiny_mnist):
    def val_keys(seed: int) -> set[bytes]:
        dm = mnist_module(tiny_mnist, seed=seed)
        dm.setup()
        return set(row_keys(*dm.splits["val"]))

    assert val_keys(0) == val_keys(0)
    assert val_keys(0) != val_keys(1)


def test_mnist_val_size_as_fraction(tiny_mnist):
    dm = mnist_module(tiny_mnist, val_size=0.25)
    dm.setup()
    assert len(dm.splits["val"][0]) == 150
    assert len(dm.splits["train"][0]) == 450


def test_mnist_prepare_inputs_normalises(tiny_mnist):
    dm = mnist_module(tiny_mnist)
    dm.setup()
    images = dm.splits["train"][0][:8]
    prepared = dm.prepare_inputs(images)
    assert prepared.dtype == torch.float32
    assert prepared.shape == (8, 1, 28, 28)
    expected = ((images.double() / 255 - 0.1307) / 0.3081).float().unsqueeze(1)
    torch.testing.assert_close(prepared, expected)
    assert images.dtype == torch.uint8  # the stored batch is left alone
    batch_inputs, batch_labels = dm.on_after_batch_transfer((images, dm.splits["train"][1][:8]), 0)
    torch.testing.assert_close(batch_inputs, expected)


def test_mnist_loaders(tiny_mnist):
    dm = mnist_module(tiny_mnist, batch_size=64)
    dm.setup()
    train = dm.train_dataloader()
    assert isinstance(train, TensorBatchLoader)
    assert len(train) == 8  # ceil(500 / 64)
    assert sum(len(y) for _, y in train) == 500
    test = dm.test_dataloader()
    images, labels = next(iter(test))
    assert len(labels) == TINY_TEST  # eval_batch_size 1000 holds the whole tiny test set
    assert torch.equal(labels, dm.splits["test"][1])  # evaluation is not shuffled


def test_mnist_missing_files(tmp_path):
    data_dir = tmp_path / "nowhere"
    dm = mnist_module(data_dir)
    with pytest.raises(DataError) as info:
        dm.setup()
    message = str(info.value)
    assert str(data_dir / "MNIST" / "raw") in message
    assert "LITLAB_DATA_DIR" in message
    assert "paths.data_dir" in message


def damaged_copy(tiny_mnist: Path, tmp_path: Path, name: str, damage) -> Path:
    copy = tmp_path / "damaged"
    shutil.copytree(tiny_mnist, copy)
    path = copy / "MNIST" / "raw" / name
    path.write_bytes(damage(path.read_bytes()))
    return copy


def wrong_magic(data: bytes) -> bytes:
    return struct.pack(">I", 0x12345678) + data[4:]


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "damage"),
    [("train-labels-idx1-ubyte", wrong_magic), ("train-images-idx3-ubyte", truncate)],
    ids=["labels_wrong_magic", "images_truncated"],
)
def test_mnist_damaged_file_raises_data_error(tiny_mnist, tmp_path, name, damage):
    data_dir = damaged_copy(tiny_mnist, tmp_path, name, damage)
    with pytest.raises(DataError) as info:
        mnist_module(data_dir).setup()
    assert str(data_dir / "MNIST" / "raw") in str(info.value)


def test_mnist_wrong_magic_is_reported_as_unparsable(tiny_mnist, tmp_path):
    data_dir = damaged_copy(tiny_mnist, tmp_path, "train-labels-idx1-ubyte", wrong_magic)
    with pytest.raises(DataError, match="could not be parsed"):
        mnist_module(data_dir).setup()


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"])
def test_mnist_truncated_file_is_reported_as_unparsable(tiny_mnist, tmp_path, name):
    data_dir = damaged_copy(tiny_mnist, tmp_path, name, truncate)
    with pytest.raises(DataError) as info:
        mnist_module(data_dir).setup()
    assert "could not be parsed" in str(info.value)
    assert "not found" not in str(info.value)


@pytest.mark.parametrize("val_size", [TINY_TRAIN, 0, 1.0 * TINY_TRAIN, -5])
def test_mnist_val_size_must_leave_both_sides(tiny_mnist, val_size):
    with pytest.raises(REFUSED, match="val_size"):
        mnist_module(tiny_mnist, val_size=val_size).setup()


@pytest.mark.parametrize("train_size", [50, 0.1])
def test_mnist_train_size_keeps_a_seeded_subset_of_the_training_split(tiny_mnist, train_size):
    full = mnist_module(tiny_mnist)
    full.setup()
    dm = mnist_module(tiny_mnist, train_size=train_size, batch_size=32)
    dm.setup()
    assert len(dm.splits["train"][0]) == 50  # 0.1 of the 500 left beside validation
    assert torch.equal(dm.splits["val"][0], full.splits["val"][0])  # validation is untouched
    kept = {tuple(image.flatten().tolist()) for image in dm.splits["train"][0]}
    assert kept <= {tuple(image.flatten().tolist()) for image in full.splits["train"][0]}
    other = mnist_module(tiny_mnist, train_size=train_size, batch_size=32, seed=1)
    other.setup()
    assert not torch.equal(other.splits["train"][0], dm.splits["train"][0])


@pytest.mark.parametrize("train_size", [0, 501, -3, 1.5, True])
def test_mnist_train_size_out_of_range_names_the_key(tiny_mnist, train_size):
    with pytest.raises(REFUSED, match=r"(data.train_size=.* from 1 to 500|train_size must be)"):
        mnist_module(tiny_mnist, train_size=train_size).setup()


def test_mnist_batch_size_larger_than_train_split(tiny_mnist):
    dm = mnist_module(tiny_mnist, val_size=100, batch_size=501)
    with pytest.raises(ConfigError, match="data.batch_size=501") as info:
        dm.setup()
    assert "500" in str(info.value)
    mnist_module(tiny_mnist, val_size=100, batch_size=500).setup()  # exactly the split is fine


def test_mnist_batch_size_error_is_not_forgotten_on_second_setup(tiny_mnist):
    dm = mnist_module(tiny_mnist, val_size=100, batch_size=501)
    with pytest.raises(ConfigError):
        dm.setup("fit")
    with pytest.raises(ConfigError):
        dm.setup("fit")


# --- Synthetic --------------------------------------------------------------------------------

# config name -> (num_features, train, val, test sizes)
SYNTHETIC = {
    "synthetic_classification": (20, 4200, 600, 1200),
    "synthetic_binary": (20, 4200, 600, 1200),
    "synthetic_regression": (13, 4200, 600, 1200),
    "xor": (2, 1400, 200, 400),
    "spam": (3, 1400, 200, 400),
}


def synthetic_module(name: str, **overrides) -> SyntheticDataModule:
    target, kwargs = data_kwargs(name, **{"seed": 0, **overrides})
    assert target == "litlab.data.SyntheticDataModule"
    return SyntheticDataModule(**kwargs)


def synthetic_splits(name: str, **overrides) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    dm = synthetic_module(name, **overrides)
    dm.setup()
    return dm.splits


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_shapes_and_sizes(name):
    features, *sizes = SYNTHETIC[name]
    splits = synthetic_splits(name)
    assert [len(splits[s][0]) for s in ("train", "val", "test")] == sizes
    for inputs, targets in splits.values():
        assert inputs.dtype == torch.float32
        assert inputs.shape[1:] == (features,)
        assert targets.shape == (len(inputs),)
        assert torch.isfinite(inputs).all() and torch.isfinite(targets.float()).all()


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_train_inputs_are_standardised(name):
    inputs = synthetic_splits(name)["train"][0]
    torch.testing.assert_close(inputs.mean(0), torch.zeros(inputs.shape[1]), atol=1e-4, rtol=0)
    torch.testing.assert_close(inputs.std(0), torch.ones(inputs.shape[1]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_is_seeded(name):
    first, again, other = (synthetic_splits(name, seed=s) for s in (11, 11, 12))
    for split in ("train", "val", "test"):
        for a, b in zip(first[split], again[split], strict=True):
            assert torch.equal(a, b)
        assert not torch.equal(first[split][0], other[split][0])


def test_synthetic_multiclass_labels():
    splits = synthetic_splits("synthetic_classification")
    for _, labels in splits.values():
        assert labels.dtype == torch.int64
    train_labels = splits["train"][1]
    assert set(train_labels.tolist()) == {0, 1, 2}
    # No class is vanishingly rare.
    assert torch.bincount(train_labels).min() > len(train_labels) // 10


def test_synthetic_binary_labels():
    dm = synthetic_module("synthetic_binary")
    assert (dm.task, dm.num_classes, dm.num_outputs) == ("binary", 2, 1)
    dm.setup()
    for _, labels in dm.splits.values():
        assert labels.dtype == torch.float32
        assert set(labels.unique().tolist()) == {0.0, 1.0}


def test_synthetic_regression_targets():
    splits = synthetic_splits("synthetic_regression")
    for _, targets in splits.values():
        assert targets.dtype == torch.float32
    train_targets = splits["train"][1]
    assert abs(train_targets.mean().item()) < 1e-4
    assert abs(train_targets.std().item() - 1) < 1e-3
    assert len(train_targets.unique()) == len(train_targets)  # continuous, not classes


def test_spam_features_are_counts_and_a_flag_and_the_labels_follow_the_rule():
    dm = synthetic_module("spam", noise=0.0)
    assert dm.feature_names == ["free_words", "links", "known_sender"]
    raw = dm.raw_inputs("train")  # in the e-mails' own units
    free_words, links, known_sender = raw.round(decimals=4).T  # exact up to float32 rounding
    torch.testing.assert_close(raw, raw.round(), atol=1e-4, rtol=0)
    assert free_words.min() == 0 and links.min() == 0
    assert set(known_sender.tolist()) == {0.0, 1.0}
    rule = (raw.round() @ torch.tensor(SPAM_WEIGHTS) + SPAM_BIAS > 0).float()
    assert torch.equal(rule, dm.splits["train"][1])  # without noise the rule is the label
    assert 0.2 < rule.mean() < 0.8  # both classes common


def test_spam_needs_its_three_features():
    with pytest.raises(ArgumentError, match="spam makes 2 classes from 3 features, not 2 from 4"):
        synthetic_module("spam", num_features=4)


def test_outliers_corrupt_only_training_targets():
    clean = synthetic_splits("synthetic_regression")
    dm = synthetic_module("synthetic_regression", outliers=0.05)
    dm.setup()
    # In the original units: 5 % of the training targets moved up by 10 times their spread.
    shift = dm.target_units(dm.splits["train"][1]) - synthetic_module(
        "synthetic_regression"
    ).target_units(clean["train"][1])
    moved = shift > 1e-3
    assert moved.sum() == round(0.05 * len(shift))
    clean_spread = synthetic_module("synthetic_regression").target_units(clean["train"][1]).std()
    torch.testing.assert_close(shift[moved], torch.full_like(shift[moved], 10 * clean_spread))
    assert shift[~moved].abs().max() < 1e-4
    for split in ("val", "test"):
        torch.testing.assert_close(
            dm.target_units(dm.splits[split][1]),
            synthetic_module("synthetic_regression").target_units(clean[split][1]),
        )


@pytest.mark.parametrize("outliers", [1.0, -0.1, "many"])
def test_outliers_must_be_a_share(outliers):
    with pytest.raises(ArgumentError, match="outliers must be a number in"):
        synthetic_module("synthetic_regression", outliers=outliers)


def test_outliers_need_regression_targets():
    _, kwargs = data_kwargs("xor", seed=0)
    with pytest.raises(ArgumentError, match="only generator=regression has targets"):
        SyntheticDataModule(**kwargs, outliers=0.05)


def test_xor_labels_follow_the_signs():
    splits = synthetic_splits("xor")
    inputs = torch.cat([x for x, _ in splits.values()])
    labels = torch.cat([y for _, y in splits.values()])
    assert labels.dtype == torch.int64
    assert set(labels.tolist()) == {0, 1}
    rule = (torch.sign(inputs[:, 0]) != torch.sign(inputs[:, 1])).long()
    assert (rule == labels).float().mean().item() >= 0.99


def test_synthetic_int_split_sizes():
    splits = synthetic_splits("xor", val_size=300, test_size=500)
    assert [len(splits[s][0]) for s in ("train", "val", "test")] == [1200, 300, 500]


def test_synthetic_train_loader_shuffles_by_epoch():
    dm = synthetic_module("xor", batch_size=32)
    dm.setup()
    loader = dm.train_dataloader()
    assert len(loader) == 44  # ceil(1400 / 32)
    first = torch.cat([x for x, _ in loader])
    assert len(first) == 1400
    loader.sampler.set_epoch(1)
    second = torch.cat([x for x, _ in loader])
    assert not torch.equal(first, second)
    # The same samples, in another order.
    assert torch.equal(first[:, 0].sort().values, second[:, 0].sort().values)


@pytest.mark.parametrize(
    ("name", "overrides", "pattern"),
    [
        ("synthetic_classification", {"generator": "spiral"}, "generator must be blobs or xor"),
        (
            "synthetic_regression",
            {"task": "multiclass", "num_classes": 3, "num_outputs": 3},
            "needs task regression",
        ),
        ("xor", {"num_classes": 3}, "needs num_classes=2"),
        ("synthetic_classification", {"task": "binary"}, "binary needs exactly 2 classes"),
        ("synthetic_classification", {"num_classes": 1}, "num_classes must be an integer >= 2"),
        ("synthetic_classification", {"val_size": 0}, "val_size must be a count"),
        ("synthetic_classification", {"test_size": 1.5}, "test_size must be a count"),
    ],
    ids=[
        "unknown_generator",
        "regression_as_multiclass",
        "xor_three_classes",
        "binary_three_classes",
        "one_class",
        "val_size_zero",
        "test_size_too_big",
    ],
)
def test_synthetic_config_errors(name, overrides, pattern):
    with pytest.raises(REFUSED, match=re.escape(pattern)):
        synthetic_module(name, **overrides)


# --- Fashion-MNIST and Kuzushiji-MNIST: MNIST's format, torchvision's own classes --------------
@pytest.mark.parametrize(
    ("name", "folder", "first_class"),
    [("fashion_mnist", "FashionMNIST", "T-shirt/top"), ("kmnist", "KMNIST", "o")],
)
def test_mnist_format_data_sets_read_their_own_folder(tmp_path, name, folder, first_class):
    target, kwargs = data_kwargs(name, data_dir=str(tmp_path), seed=0, val_size=100)
    kwargs["download"] = False
    with pytest.raises(DataError, match=f"{folder}/raw"):  # not MNIST's files
        MNISTDataModule(**kwargs).setup()
    make_tiny_mnist(tmp_path, folder=folder)
    dm = MNISTDataModule(**kwargs)
    dm.setup()
    assert dm.class_names[0] == first_class and len(dm.class_names) == 10
    batch = dm.prepare_inputs(dm.splits["train"][0][:64])
    expected = (dm.splits["train"][0][:64].float() / 255 - kwargs["mean"]) / kwargs["std"]
    torch.testing.assert_close(batch, expected.unsqueeze(1))  # the data set's own statistics


@pytest.mark.parametrize(("name", "source"), [("fashion_mnist", FashionMNIST), ("kmnist", KMNIST)])
def test_class_names_are_torchvisions(name, source):
    _, kwargs = data_kwargs(name)
    assert kwargs["class_names"] == source.classes


def test_an_unknown_mnist_format_data_set_is_named(tmp_path):
    _, kwargs = data_kwargs("mnist", data_dir=str(tmp_path), seed=0)
    with pytest.raises(ArgumentError, match="dataset must be mnist or .*kmnist, got 'emnist'"):
        MNISTDataModule(**{**kwargs, "dataset": "emnist"})


# --- scikit-learn's bundled data sets -----------------------------------------------------------
SKLEARN = {  # name: (total samples, num_features, input shape of one sample)
    "iris": (150, 4, (4,)),
    "wine": (178, 13, (13,)),
    "breast_cancer": (569, 30, (30,)),
    "digits": (1797, 64, (1, 8, 8)),
    "diabetes": (442, 10, (10,)),
}


def sklearn_module(name: str, **overrides) -> SklearnDataModule:
    target, kwargs = data_kwargs(name, **{"seed": 0, **overrides})
    assert target == "litlab.data.SklearnDataModule"
    module = SklearnDataModule(**kwargs)
    module.setup()
    return module


@pytest.mark.parametrize("name", sorted(SKLEARN))
def test_sklearn_data_sets_split_and_standardise_with_training_statistics(name):
    total, features, shape = SKLEARN[name]
    dm = sklearn_module(name)
    sizes = {split: len(inputs) for split, (inputs, _) in dm.splits.items()}
    assert sum(sizes.values()) == total and sizes["test"] == round(0.2 * total)
    train = dm.splits["train"][0]
    assert train.shape[1:] == shape and train[0].numel() == features
    if name == "digits":  # images: one mean and std over every training pixel
        assert train.mean().item() == pytest.approx(0, abs=1e-5)
        assert train.std().item() == pytest.approx(1, abs=1e-3)
    else:
        torch.testing.assert_close(train.mean(0), torch.zeros(features), atol=1e-5, rtol=0)
    held_out = torch.cat([dm.splits["val"][0], dm.splits["test"][0]])
    assert held_out.mean().abs().item() > 1e-4  # their own statistics were not used


@pytest.mark.parametrize("name", ["iris", "wine", "digits"])
def test_sklearn_class_splits_are_stratified_and_seeded(name):
    dm = sklearn_module(name)
    labels = {split: targets for split, (_, targets) in dm.splits.items()}
    overall = torch.bincount(torch.cat(list(labels.values()))).float()
    share = torch.bincount(labels["test"], minlength=len(overall)).float() / len(labels["test"])
    assert torch.allclose(share, overall / overall.sum(), atol=0.03)  # every class in its share
    again, other = sklearn_module(name), sklearn_module(name, seed=1)
    assert torch.equal(again.splits["test"][0], dm.splits["test"][0])
    assert not torch.equal(other.splits["test"][0], dm.splits["test"][0])


def test_sklearn_targets_fit_their_task():
    assert sklearn_module("breast_cancer").splits["train"][1].dtype == torch.float32  # binary
    assert set(sklearn_module("breast_cancer").splits["train"][1].tolist()) == {0.0, 1.0}
    diabetes = sklearn_module("diabetes").splits["train"][1]
    assert diabetes.dtype == torch.float32 and diabetes.mean().abs().item() < 1e-5
    assert sklearn_module("iris").class_names == ["setosa", "versicolor", "virginica"]


def test_sklearn_facts_must_be_the_data_sets_own():
    with pytest.raises(DataError, match=r"data.num_features=5 \(it has 4\)"):
        sklearn_module("iris", num_features=5)
    with pytest.raises(ConfigError, match="leave no training samples"):
        sklearn_module("wine", val_size=0.5, test_size=0.5)
    with pytest.raises(ConfigError, match="data.val_size leaves 2 samples .* fewer than its 3"):
        sklearn_module("iris", val_size=2)
    with pytest.raises(ArgumentError, match="dataset must be iris or .*, got 'boston'"):
        SklearnDataModule(dataset="boston", task="regression", num_features=13, num_outputs=1)


# --- the adding problem ------------------------------------------------------------------------
def adding_module(**overrides) -> SequenceDataModule:
    target, kwargs = data_kwargs("adding", **{"seed": 0, "num_samples": 500, **overrides})
    assert target == "litlab.data.SequenceDataModule"
    module = SequenceDataModule(**kwargs)
    module.setup()
    return module


def test_adding_sequences_mark_one_value_in_each_half_and_sum_them():
    dm = adding_module(seq_len=10)
    inputs, targets = dm.splits["train"]
    assert inputs.shape == (400, 10, 2) and dm.input_shape == (10, 2) and dm.num_features == 20
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert (markers[:, :5].sum(1) == 1).all() and (markers[:, 5:].sum(1) == 1).all()
    torch.testing.assert_close(targets, (values * markers).sum(1))
    # the mean predictor's MSE is the variance of a sum of two U(0, 1): 1/6
    assert targets.var().item() == pytest.approx(1 / 6, abs=0.03)


def test_adding_is_seeded_and_its_facts_follow_seq_len():
    first, again, other = adding_module(), adding_module(), adding_module(seed=1)
    assert torch.equal(first.splits["test"][0], again.splits["test"][0])
    assert not torch.equal(first.splits["test"][0], other.splits["test"][0])
    _, kwargs = data_kwargs("adding", seq_len=7)
    assert kwargs["input_shape"] == [7, 2] and kwargs["num_features"] == 14
    with pytest.raises(ArgumentError, match="input_shape and num_features .* seq_len=7"):
        SequenceDataModule(**{**kwargs, "input_shape": [100, 2]})
