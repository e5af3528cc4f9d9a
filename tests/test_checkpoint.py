"""load_checkpoint: tensors and plain data only; every bad file is a CheckpointError."""

import os
from pathlib import Path

import pytest
import torch

from litlab.checkpoint import load_checkpoint
from litlab.errors import CheckpointError
from litlab.train import train


class TouchPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # pickled as getattr(Path, "touch"): another way in
        return (Path.touch, (self.marker,))


class SystemPayload(TouchPayload):
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_litlab_checkpoint_loads(tmp_path):
    path = tmp_path / "ok.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "hyper_parameters": {"run_config": {}}}, path)
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(2))


@pytest.mark.parametrize("payload", [TouchPayload, SystemPayload])
def test_pickled_code_is_refused_and_never_run(tmp_path, payload):
    path = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": {"run_config": {}}, "x": payload(tmp_path / "pwned")}, path)
    with pytest.raises(CheckpointError, match="was refused: it asks to import"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"could not be read: it is empty \(0 bytes\)"),
        (b"not a checkpoint at all", "could not be read: it is not a PyTorch checkpoint"),
        (None, "does not exist"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.ckpt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_truncated_checkpoint_is_named_with_the_cause_and_the_fix(mnist_run, tmp_path):
    cfg, _ = mnist_run
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    copied = tmp_path / "copied.ckpt"
    copied.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(copied)
    message = str(error.value)
    assert message.startswith(f"Checkpoint {copied} could not be read: it is truncated or damaged")
    assert "An interrupted copy or download" in message
    assert "copy it again" in message and "(last.ckpt or best.ckpt)" in message
    assert "PytorchStreamReader" not in message  # torch's own sentence, cut off, said less


def test_training_refuses_a_bad_resume_checkpoint_before_building_anything(make_config, tmp_path):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"\x00" * 100)
    cfg = make_config("data=xor", "model=mlp", f"ckpt_path={bad}")
    with pytest.raises(CheckpointError, match="could not be read"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_a_failed_save_offers_only_a_checkpoint_that_exists(tmp_path):
    """It offered "the last good checkpoint" when none had been saved."""
    from litlab.checkpoint import AtomicCheckpointIO

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the run folder should be")
    with pytest.raises(CheckpointError) as refused:
        AtomicCheckpointIO().save_checkpoint({"x": 1}, blocker / "checkpoints" / "last.ckpt")
    message = str(refused.value)
    assert "No checkpoint of this run was saved: start it again once there is space." in message
    assert "resume" not in message
