"""Fixtures: configs composed from conf/ into tmp folders, and tiny MNIST IDX files."""

from pathlib import Path

import pytest
from omegaconf import DictConfig

from litlab.run_folder import BEST_CHECKPOINT, CHECKPOINTS
from litlab.train import train
from tests.helpers import REAL_DATA_DIR, compose_quiet, make_tiny_mnist, mnist_overrides


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """A data_dir holding small but learnable MNIST-format files."""
    return make_tiny_mnist(tmp_path / "data")


@pytest.fixture
def make_config(tmp_path: Path):
    """make_config(*overrides) -> cfg whose run folder is tmp_path/run."""

    def make(*overrides: str, config_name: str = "train", run_dir: str = "run") -> DictConfig:
        return compose_quiet(list(overrides), tmp_path / run_dir, config_name)

    return make


@pytest.fixture
def mnist_run(tiny_mnist, make_config):
    """A finished 3-epoch run of a 784-32-10 MLP on tiny MNIST: (cfg, returned metrics)."""
    cfg = make_config(*mnist_overrides(tiny_mnist, "model=mlp", "model.hidden_sizes=[32]"))
    return cfg, train(cfg)


@pytest.fixture(scope="session")
def real_cnn(tmp_path_factory) -> Path:
    """The best checkpoint of experiment=lesson_cnn (LeNet-5, 8 epochs, 99.22 % test accuracy)
    on real MNIST, trained once for the slow tests that use it (lesson 10 reads its metrics,
    lesson 13 and test_predict.py its predictions)."""
    folder = tmp_path_factory.mktemp("cnn") / "run"
    cfg = compose_quiet(["experiment=lesson_cnn", f"paths.data_dir={REAL_DATA_DIR}"], folder)
    train(cfg)
    return folder / CHECKPOINTS / BEST_CHECKPOINT
