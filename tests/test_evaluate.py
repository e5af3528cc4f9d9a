"""evaluate(cfg): a checkpoint tested with the config it was trained with."""

import json
import shutil
from pathlib import Path

import pytest

from litlab.evaluate import evaluate
from litlab.train import train


def test_eval_uses_the_checkpoints_own_config(mnist_run, make_config, tmp_path):
    cfg, metrics = mnist_run
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    moved = tmp_path / "moved_data"  # on another machine the data lives elsewhere
    shutil.move(cfg.paths.data_dir, moved)
    # eval.yaml knows nothing of the MLP with 32 hidden units: it must come from the checkpoint
    eval_cfg = make_config(
        f"ckpt_path={best}",
        f"paths.data_dir={moved}",
        config_name="eval",
        run_dir="eval",
    )
    results = evaluate(eval_cfg)
    assert results["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-7)
    assert results["test/f1"] == pytest.approx(metrics["test/f1"], abs=1e-7)
    written = json.loads((Path(eval_cfg.paths.output_dir) / "metrics.json").read_text())
    assert written == pytest.approx(results)


def test_eval_of_a_regression_checkpoint_on_the_validation_split(make_config):
    cfg = make_config("data=synthetic_regression", "model=mlp", "loss=mse", "trainer.max_epochs=2")
    metrics = train(cfg)
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    results = evaluate(
        make_config(f"ckpt_path={best}", "split=val", config_name="eval", run_dir="eval")
    )
    assert set(results) == {"val/loss", "val/mse", "val/mae", "val/r2"}
    assert results["val/loss"] == pytest.approx(metrics["val/loss_best"], rel=1e-5)
