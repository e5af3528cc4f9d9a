"""Accuracy targets on the real MNIST files (slow: about a minute and a half on 2 cores)."""

import pytest
from torchvision.datasets import MNIST

from litlab.train import train
from tests.helpers import REAL_DATA_DIR, requires_real_mnist

pytestmark = [pytest.mark.slow, requires_real_mnist]


def test_torchvision_reads_the_shared_files_without_download():
    train_set = MNIST(str(REAL_DATA_DIR), train=True, download=False)
    test_set = MNIST(str(REAL_DATA_DIR), train=False, download=False)
    assert train_set.data.shape == (60_000, 28, 28) and len(test_set) == 10_000


@pytest.mark.parametrize(("model", "target"), [("simple_nn", 0.97), ("cnn", 0.985)])
def test_three_epochs_reach_the_target_accuracy(make_config, model, target):
    metrics = train(
        make_config(
            f"paths.data_dir={REAL_DATA_DIR}",
            "data.download=false",
            f"model={model}",
            "trainer.max_epochs=3",
        )
    )
    assert metrics["test/acc"] >= target
    assert metrics["val/acc_best"] >= target - 0.01
