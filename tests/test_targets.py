"""The figures the README promises, as tests (slow: several minutes on 2 cores): accuracy on
real MNIST, on scikit-learn's bundled data sets with an MLP, and recurrent models on MNIST.
The Transformer on MNIST and the adding problem are lessons 11 and 12: tests/test_lessons.py."""

import statistics

import pytest
from torchvision.datasets import MNIST

from litlab.train import train
from tests.helpers import REAL_DATA_DIR, REAL_MNIST, claim, requires_real_mnist

pytestmark = [pytest.mark.slow, pytest.mark.claim]


@requires_real_mnist
def test_torchvision_reads_the_shared_files_without_download():
    train_set = MNIST(str(REAL_DATA_DIR), train=True, download=False)
    test_set = MNIST(str(REAL_DATA_DIR), train=False, download=False)
    assert train_set.data.shape == (60_000, 28, 28) and len(test_set) == 10_000


@requires_real_mnist
# Over scripts/claims.py's paths the CNN gave 98.45 % to 98.66 % and simple_nn 97.33 % to
# 97.42 %: each target sits at least 0.3 points under its lowest, more than the spread.
@pytest.mark.parametrize(("model", "target"), [("simple_nn", 0.97), ("cnn", 0.98)])
def test_three_epochs_reach_the_target_accuracy(make_config, model, target):
    metrics = train(make_config(*REAL_MNIST, f"model={model}", "trainer.max_epochs=3"))
    claim("test accuracy", metrics["test/acc"], above=target)
    claim("best validation accuracy", metrics["val/acc_best"], above=target - 0.01)


# data set: (metric, target), at the data set's defaults (`python train.py data=X model=mlp`:
# its recommended epochs, the task's loss; early stopping's patience_steps outlast them but for
# digits' 1,360 steps, where it does not stop). The
# seed picks the split and the starting weights, and on test splits of 30 to 360 samples one
# seed's figure moves by several samples (docs/results.md: seeds 42 to 46; seed 43 failed the
# old single-seed iris bound of 0.93). The test asserts the mean over seeds 42-44; beside each
# target, the lowest mean of any three consecutive seeds of 42-46 (claims.py's seed+1 moves
# the window).
TARGETS = {
    "iris": ("test/acc", 0.88),  # 0.911
    "wine": ("test/acc", 0.92),  # 0.944
    "breast_cancer": ("test/acc", 0.94),  # 0.962
    "digits": ("test/acc", 0.955),  # 0.966
    "diabetes": ("test/r2", 0.40),  # 0.445
}
SEEDS = (42, 43, 44)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_an_mlp_reaches_the_target_on_real_tabular_data(make_config, name):
    metric, target = TARGETS[name]
    overrides = [f"data={name}", "model=mlp"]
    values = [
        train(make_config(*overrides, f"seed={seed}", run_dir=f"seed{seed}"))[metric]
        for seed in SEEDS
    ]
    claim(f"{metric}, mean over {len(SEEDS)} seeds", statistics.mean(values), above=target)


@requires_real_mnist
@pytest.mark.parametrize(
    ("extra", "target"),
    [
        ([], 0.98),  # the LSTM at the RNN's recommended settings: 3 epochs, one-cycle
        (["model.cell=gru"], 0.98),
    ],
)
def test_recurrent_models_on_mnist(make_config, extra, target):
    metrics = train(make_config(*REAL_MNIST, "model=rnn", *extra))
    claim("test accuracy", metrics["test/acc"], above=target)
