"""Shared fixtures: configs composed from conf/ into tmp folders, and tiny MNIST IDX files."""

import os
import struct
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from litlab import PROJECT_ROOT
from litlab.cli import compose_config

REAL_DATA_DIR = Path(os.environ.get("LITLAB_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
HAS_REAL_MNIST = (REAL_DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()
requires_real_mnist = pytest.mark.skipif(
    not HAS_REAL_MNIST, reason=f"real MNIST not found under {REAL_DATA_DIR}/MNIST/raw"
)

# Fast settings for runs in tests: no progress bar or summary, no sanity check.
QUIET = [
    "trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "+trainer.num_sanity_val_steps=0",
]


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write a uint8 tensor in the IDX format that torchvision's MNIST parser reads."""
    header = struct.pack(">I", 0x0800 + array.dim())
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    path.write_bytes(header + array.to(torch.uint8).numpy().tobytes())


def tiny_digits(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """28x28 uint8 images whose class is a bright 6x6 square at a class-specific place."""
    rng = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 10
    images = torch.randint(0, 60, (count, 28, 28), generator=rng)
    for i, label in enumerate(labels.tolist()):
        row, col = 2 + (label // 5) * 14, 1 + (label % 5) * 5
        images[i, row : row + 6, col : col + 6] = 255
    return images.to(torch.uint8), labels.to(torch.uint8)


def make_tiny_mnist(root: Path, train: int = 600, test: int = 200) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count, seed in (("train", train, 0), ("t10k", test, 1)):
        images, labels = tiny_digits(count, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """A data_dir holding small but learnable MNIST-format files."""
    return make_tiny_mnist(tmp_path / "data")


# Drawing a confusion matrix per validation epoch costs more than a tiny test run's training;
# tests/test_report.py checks the images.
NO_IMAGES = ["++callbacks.evaluation_images=null"]  # ++: also when callbacks=none


def compose_quiet(
    overrides: list[str],
    output_dir: Path,
    config_name: str = "train",
    quiet: bool = True,
    images: bool = False,
) -> DictConfig:
    """compose_config with the QUIET settings for tests (unless quiet=False), and without
    TensorBoard images (unless images=True)."""
    fast = [*(QUIET if quiet else []), *([] if images or config_name != "train" else NO_IMAGES)]
    return compose_config([*fast, *overrides], output_dir, config_name)


@pytest.fixture
def make_config(tmp_path: Path):
    """make_config(*overrides) -> cfg whose run folder is tmp_path/run."""

    def make(*overrides: str, config_name: str = "train", run_dir: str = "run") -> DictConfig:
        return compose_quiet(list(overrides), tmp_path / run_dir, config_name)

    return make
