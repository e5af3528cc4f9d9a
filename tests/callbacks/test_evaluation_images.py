"""EvaluationImages: confusion matrices as images, in TensorBoard and plots/confusion_matrix.png."""

from types import SimpleNamespace

import torch
from PIL import Image

from litlab.callbacks import EvaluationImages


def run_state(tmp_path, stage: str):
    trainer = SimpleNamespace(
        is_global_zero=True,
        loggers=[],  # no TensorBoard: the per-epoch images are skipped, the test one is a file
        global_step=12,
        current_epoch=1,
        sanity_checking=False,
        datamodule=SimpleNamespace(class_names=["cat", "dog", "bird"]),
    )
    counts = torch.tensor([[5, 1, 0], [0, 6, 0], [2, 0, 4]])
    module = SimpleNamespace(confusion_matrices={stage: counts}, test_name="test")
    return trainer, module


def test_the_tests_confusion_matrix_is_drawn_in_the_run_folder(tmp_path):
    trainer, module = run_state(tmp_path, "test")
    EvaluationImages(tmp_path).on_test_end(trainer, module)
    with Image.open(tmp_path / "plots" / "confusion_matrix.png") as image:
        assert image.format == "PNG" and image.size[0] >= 300


def test_per_epoch_images_are_for_tensorboard_only(tmp_path):
    trainer, module = run_state(tmp_path, "val")
    EvaluationImages(tmp_path)._log_confusion(trainer, module, "val")
    assert not (tmp_path / "plots").exists()
