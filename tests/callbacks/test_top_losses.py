"""TopLosses: the test samples the model got most wrong, by the loss of their true answer."""

import math

import pytest
import torch

from litlab.callbacks.top_losses import _rows, _worst, per_sample_results


def test_multiclass_losses_are_the_true_class_cross_entropy_and_only_mistakes_count():
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.5]])
    targets = torch.tensor([0, 0, 1])
    loss, predicted, confidence, wrong = per_sample_results("multiclass", logits, targets)
    assert wrong.tolist() == [False, True, True]
    assert predicted.tolist() == [0, 1, 0]
    assert loss[1].item() == pytest.approx(-math.log(math.exp(0) / (1 + math.exp(3))), rel=1e-5)
    assert confidence[1].item() == pytest.approx(math.exp(3) / (1 + math.exp(3)), rel=1e-5)


def test_binary_and_regression_losses():
    loss, predicted, _, wrong = per_sample_results(
        "binary", torch.tensor([0.9, 0.2]), torch.tensor([0.0, 0.0])
    )
    assert predicted.tolist() == [1, 0] and wrong.tolist() == [True, False]
    assert loss[0].item() == pytest.approx(-math.log(0.1), rel=1e-4)
    loss, predicted, confidence, wrong = per_sample_results(
        "regression", torch.tensor([1.0, 4.0]), torch.tensor([2.0, 2.0])
    )
    assert loss.tolist() == [1.0, 4.0] and confidence is None and wrong.all()


def test_the_worst_are_kept_highest_first_with_class_names():
    kept = {
        "loss": torch.tensor([0.5, 2.0, 1.0]),
        "index": torch.tensor([7, 3, 9]),
        "true": torch.tensor([0.0, 1.0, 1.0]),
        "predicted": torch.tensor([1.0, 0.0, 0.0]),
        "confidence": torch.tensor([0.6, 0.9, 0.7]),
    }
    rows = _rows(_worst(kept, 2), "multiclass", ["cat", "dog"])
    assert [(row.index, row.true, row.predicted) for row in rows] == [
        (3, "dog", "cat"),
        (9, "dog", "cat"),
    ]
    assert rows[0].confidence == pytest.approx(0.9)
