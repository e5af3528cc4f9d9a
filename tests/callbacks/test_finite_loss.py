"""StopOnNonFiniteLoss: a diverging run stops before its NaN reaches a checkpoint."""

import pytest
import torch

from litlab.errors import NonFiniteLossError
from litlab.train import train
from tests.helpers import compose_quiet


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    steps = ["callbacks.last_checkpoint.every_n_train_steps=4", "data.batch_size=32"]
    cfg = compose_quiet(
        [f"paths.data_dir={tiny_mnist}", "data.val_size=100", "data.download=false", *steps],
        run_dir,
    )
    train(cfg)  # a healthy first run: 3 epochs... then continue it with a blown-up step size
    last = run_dir / "checkpoints" / "last.ckpt"
    good = torch.load(last, weights_only=True)
    for state in good["optimizer_states"][0]["param_groups"]:
        state["lr"] = 1e30
    torch.save(good, last)
    before = last.read_bytes()
    resumed = compose_quiet(
        [
            f"paths.data_dir={tiny_mnist}",
            "data.val_size=100",
            "data.download=false",
            *steps,
            "trainer.max_epochs=20",
            f"ckpt_path={last}",
        ],
        run_dir,
    )
    with pytest.raises(NonFiniteLossError) as diverged:
        train(resumed)
    message = str(diverged.value)
    step = good["global_step"] + 2  # one step makes the weights huge, the next loss overflows
    assert f"at step {step}" in message and "1e+30" in message
    assert "optimizer.lr" in message and "trainer.gradient_clip_val" in message
    assert str(last) in message
    assert diverged.value.exit_code == 3
    assert last.read_bytes() == before  # nothing saved after the fault
