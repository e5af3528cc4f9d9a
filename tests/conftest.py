"""Fixtures: configs composed from conf/ into tmp folders, and tiny MNIST IDX files. Under
pytest-xdist (`pytest -n 2`, the default) each worker trains with one thread, and a fixture that
trains for minutes is trained once and shared by the workers."""

import os
from pathlib import Path

import pytest
import torch
from filelock import FileLock
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


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker trains with one thread, and so do the commands its tests start: two
    workers then use the two cores without fighting over them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this test session that every xdist worker sees (the workers' temporary
    folders share a parent)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


@pytest.fixture(scope="session")
def real_cnn(tmp_path_factory) -> Path:
    """The best checkpoint of experiment=lesson_cnn (LeNet-5, 8 epochs, 99.22 % test accuracy)
    on real MNIST, trained once per test session for the slow tests that use it (lesson 10
    reads its metrics, lesson 13 and test_predict.py its predictions), whichever worker asks
    first."""
    folder = shared_folder(tmp_path_factory, "real_cnn")
    best = folder / "run" / CHECKPOINTS / BEST_CHECKPOINT
    with FileLock(f"{folder}.lock"):
        if not best.is_file():
            cfg = compose_quiet(
                ["experiment=lesson_cnn", f"paths.data_dir={REAL_DATA_DIR}"], folder / "run"
            )
            train(cfg)
    return best
