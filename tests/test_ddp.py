"""Two real DDP processes on CPU (gloo): each rank trains on its own shard of every epoch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from litlab import PROJECT_ROOT
from tests.conftest import QUIET


def train_on_two_ranks(run_dir, *overrides: str, data: str = "xor") -> subprocess.CompletedProcess:
    """`python train.py trainer=ddp_cpu data=xor model=mlp ...`: two gloo processes."""
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        *QUIET,
        "trainer=ddp_cpu",
        f"data={data}",
        "model=mlp",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        command, cwd=run_dir.parent, env=env, capture_output=True, text=True, timeout=300
    )


def test_ddp_ranks_see_disjoint_shards_that_cover_the_epoch(tmp_path):
    run_dir, probe_dir = tmp_path / "run", tmp_path / "probe"
    result = train_on_two_ranks(
        run_dir,
        "trainer.max_epochs=2",
        "callbacks.early_stopping=null",
        "+callbacks.batch_recorder._target_=tests.probes.BatchRecorder",
        f"+callbacks.batch_recorder.out_dir={probe_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]

    ranks = [json.loads((probe_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    for epoch in ("0", "1"):
        first, second = ranks[0][epoch], ranks[1][epoch]
        assert len(first) == len(second) == 700  # 1400 training samples, split evenly
        assert not set(first) & set(second)
        assert len(set(first) | set(second)) == 1400
    assert ranks[0]["0"] != ranks[0]["1"]  # a new shuffle each epoch
    assert set(ranks[0]["0"]) != set(ranks[0]["1"])  # and new shards, not the same ones
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.9


def test_ddp_ranks_signalled_at_different_steps_stop_together(tmp_path):
    run_dir = tmp_path / "run"
    result = train_on_two_ranks(
        run_dir,
        "data.batch_size=32",  # 22 steps per epoch and rank
        "trainer.max_epochs=5",
        "+callbacks.signal._target_=tests.probes.SignalAt",
        "+callbacks.signal.step=3",
        "+callbacks.signal.steps_later_per_rank=4",  # rank 0 at step 3, rank 1 at step 7
    )
    assert result.returncode == 143, result.stderr[-3000:]  # no hang, no kill of rank 1
    assert "SIGTERM received" in result.stderr
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 10  # the first step at which the ranks agree


@pytest.mark.slow
def test_ddp_report_holds_every_ranks_test_predictions(tmp_path):
    run_dir = tmp_path / "run"
    result = train_on_two_ranks(
        run_dir, "loss=mse", "trainer.max_epochs=1", data="synthetic_regression"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    test = json.loads((run_dir / "report_data.json").read_text())["test"]
    assert len(test["true"]) == len(test["predicted"]) == 1200  # both ranks' shards
    squared = [(p - t) ** 2 for p, t in zip(test["predicted"], test["true"], strict=True)]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert sum(squared) / len(squared) == pytest.approx(metrics["test/mse"], rel=1e-4)
    assert (run_dir / "plots" / "predicted_vs_true.png").is_file()
