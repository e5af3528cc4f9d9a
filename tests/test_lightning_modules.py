"""The LightningModule: metrics per stage, the best monitored value, epoch losses, schedulers."""

from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from litlab.build import build_datamodule, build_module
from litlab.lightning_modules import make_scheduler, metric_float, stage_metrics
from litlab.train import train


@pytest.mark.parametrize(("mode", "best"), [("max", 0.9), ("min", 0.1)])
def test_best_value_follows_the_monitor_mode(make_config, mode, best):
    module = build_module(make_config(f"monitors.multiclass={{metric: val/f1, mode: {mode}}}"))
    for value in (0.1, 0.9, 0.5):
        module.best.update(torch.tensor(value))
    assert module.best.compute().item() == pytest.approx(best)


def test_epoch_loss_weights_a_short_last_batch_by_its_size(make_config):
    """1200 test samples in batches of 1000 and 200: test/loss is the mean over samples."""
    cfg = make_config("data=synthetic_classification", "model=mlp", "trainer.max_epochs=1")
    metrics = train(cfg)
    checkpoint = torch.load(
        Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt", weights_only=True
    )
    datamodule = build_datamodule(cfg)
    datamodule.setup("test")
    module = build_module(cfg)
    module.load_state_dict(checkpoint["state_dict"])
    inputs, targets = datamodule.splits["test"]
    assert len(inputs) == 1200 and cfg.data.eval_batch_size == 1000
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(module.eval()(inputs), targets).item()
    assert metrics["test/loss"] == pytest.approx(loss, rel=1e-5)


def test_validation_metrics_are_overall_and_per_class_by_name():
    metrics = stage_metrics("multiclass", 3, "val", ["cat", "dog", "eel"])
    predictions = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 2.0, 0], [0, 0, 2.0]])
    metrics.update(predictions, torch.tensor([0, 1, 2, 2]))
    values = {name: metric_float(value) for name, value in metrics.compute().items()}
    assert values["val/acc"] == 0.75
    assert values["val/recall/eel"] == 0.5 and values["val/precision/dog"] == 0.5
    assert values["val/f1/cat"] == 1.0
    assert set(stage_metrics("multiclass", 3, "train").keys()) == {"train/acc"}  # cheap
    assert set(stage_metrics("regression", None, "test").keys()) == {
        "test/mae",
        "test/mse",
        "test/r2",
    }


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("cross_entropy", nn.functional.cross_entropy),
        # NLLLoss wants log-probabilities: the module applies log_softmax to the logits
        ("nll", lambda logits, y: nn.functional.nll_loss(logits.log_softmax(-1), y)),
    ],
)
def test_the_loss_gets_the_input_it_expects(make_config, loss, expected):
    module = build_module(make_config(f"loss={loss}", "model=perceptron"))
    logits = module(torch.randn(5, 1, 28, 28))
    targets = torch.tensor([0, 1, 2, 3, 4])
    assert module.loss(module.loss_input(logits), targets).item() == pytest.approx(
        expected(logits, targets).item()
    )


def test_onecycle_steps_per_batch_and_the_others_per_epoch():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    onecycle = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1.0)
    scheduler, interval = make_scheduler(onecycle, optimizer, lambda: 50)
    assert interval == "step" and scheduler.total_steps == 50
    step = partial(torch.optim.lr_scheduler.StepLR, step_size=1)
    _, interval = make_scheduler(step, optimizer, lambda: 1 / 0)  # the total is never asked for
    assert interval == "epoch"
