"""Every recipe (conf/experiment/) runs a few steps on a small slice of its data, and its losses
are pinned: a change that alters what a recipe computes (initialisation, data order, a
default) fails here in seconds, where the full run's figures would show it in minutes
(tests/test_lessons.py, tests/test_targets.py). After a change meant to alter them, rerun
with LITLAB_PIN_RECIPES=1 to write the new values into tests/recipe_losses.json."""

import json
import os
from pathlib import Path

import pytest
from filelock import FileLock

from litlab.config.catalog import options
from litlab.train import train
from tests.helpers import TINY_MNIST, compose_quiet, make_tiny_mnist, own_data_overrides

PINNED = Path(__file__).with_name("recipe_losses.json")
# Three training steps, one batch of validation and of test, on a small slice of the data.
FEW_STEPS = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "callbacks.early_stopping=null",
]
# Relative: a few steps on another CPU's kernels move the losses by about 1e-6.
TOLERANCE = 1e-4


def small_slice(data_target: str, data_dir: Path) -> list[str]:
    """Overrides that put the recipe's data set on a small slice (MNIST: tiny files; a folder
    of your own: two tiny classes; a table of your own: the example wines)."""
    if data_target.endswith("MNISTDataModule"):
        return [f"paths.data_dir={data_dir}", *TINY_MNIST, "data.train_size=null"]
    if data_target.endswith("SequenceDataModule"):
        return ["data.num_samples=300"]
    if data_target.endswith("ImageFolderDataModule"):
        return [
            *own_data_overrides(data_target, data_dir),
            f"data.cache_dir={data_dir / 'cache'}",
            "data.workers=1",
            "data.batch_size=16",
        ]
    return own_data_overrides(data_target, data_dir)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_mnist(tmp_path_factory.mktemp("recipes") / "data")


def few_steps(recipe: str, tiny_data: Path, run: Path) -> dict[str, float]:
    cfg = compose_quiet([f"experiment={recipe}"], run)
    overrides = [f"experiment={recipe}", *small_slice(cfg.data._target_, tiny_data), *FEW_STEPS]
    metrics = train(compose_quiet(overrides, run))
    return {name: metrics[name] for name in ("train/loss", "val/loss", "test/loss")}


@pytest.mark.parametrize("recipe", options("experiment"))
def test_a_recipes_first_steps_compute_what_they_did(recipe, tiny_data, tmp_path):
    losses = few_steps(recipe, tiny_data, tmp_path / "run")
    pinned = json.loads(PINNED.read_text()) if PINNED.is_file() else {}
    if os.environ.get("LITLAB_PIN_RECIPES") == "1":
        with FileLock(f"{PINNED}.lock"):  # xdist workers: one read-modify-write at a time
            pinned = json.loads(PINNED.read_text()) if PINNED.is_file() else {}
            pinned[recipe] = losses
            PINNED.write_text(json.dumps(dict(sorted(pinned.items())), indent=1) + "\n")
    assert recipe in pinned, f"{recipe} has no pinned losses: run with LITLAB_PIN_RECIPES=1"
    assert losses == pytest.approx(pinned[recipe], rel=TOLERANCE), recipe


def test_every_pinned_recipe_still_exists():
    assert set(json.loads(PINNED.read_text())) == set(options("experiment"))
