"""litlab.metric_names: which metrics are overall, what each kind of problem logs, and the
float32 digits every file prints."""

import numpy as np
import pytest

from litlab.metric_names import (
    class_names_or_indices,
    headline_metric,
    is_overall_metric,
    shortest_float32,
    validation_metrics,
)


@pytest.mark.parametrize(
    ("name", "overall"),
    [
        ("test/acc", True),
        ("val/acc_best", True),
        ("train/loss", True),
        ("test/f1/7", False),
        ("val/recall/cat", False),
        ("time/train_epoch_s", False),
        ("diagnostics/grad_norm/total", False),
        ("lr-Adam", False),
        ("test/", False),
    ],
)
def test_overall_metrics(name, overall):
    assert is_overall_metric(name) is overall


def test_what_a_run_can_monitor():
    assert headline_metric("regression") == "mae" and headline_metric("binary") == "acc"
    assert validation_metrics("regression") == ["val/loss", "val/mae", "val/mse", "val/r2"]
    multiclass = validation_metrics("multiclass", ["cat", "dog"])
    assert {"val/acc", "val/f1", "val/f1/cat", "val/recall/dog"} <= set(multiclass)
    assert class_names_or_indices(None, 3) == ["0", "1", "2"]
    assert class_names_or_indices([1, "b"], 2) == ["1", "b"]


def test_float32_values_keep_the_fewest_digits_that_read_back():
    value = float(np.float32(0.9738))
    assert value != 0.9738 and shortest_float32(value) == 0.9738
    assert np.float32(shortest_float32(1 / 3)) == np.float32(1 / 3)
