"""GracefulStop: Ctrl+C, SIGTERM and submitit's SIGUSR2 save the step in flight and stop."""

import signal

import pytest
import torch

from litlab.callbacks.graceful_stop import stop_on_ctrl_c
from litlab.errors import TrainingInterrupted
from litlab.train import train
from tests.helpers import STEPS_PER_EPOCH, tiny_config


def test_ctrl_c_saves_the_step_in_flight_and_exits_130(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    probe = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        "+callbacks.signal.step=5",
        f"+callbacks.signal.signum={int(signal.SIGINT)}",
    ]
    cfg = tiny_config(tiny_mnist, run_dir, *probe)
    # Python's default handler, or SIG_IGN in a process started in the background by a shell
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="SIGINT received") as stopped:
        train(cfg)
    assert stopped.value.exit_code == 130
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    assert not (run_dir / "metrics.json").exists()  # unfinished: resume=auto may continue it
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_submitits_time_limit_signal_saves_and_stops(tiny_mnist, tmp_path):
    """hydra/launcher=slurm: submitit sends SIGUSR2 signal_delay_s before the time limit."""
    probe = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        "+callbacks.signal.step=5",
        f"+callbacks.signal.signum={int(signal.SIGUSR2)}",
    ]
    with pytest.raises(TrainingInterrupted, match="SIGUSR2 received") as stopped:
        train(tiny_config(tiny_mnist, tmp_path / "run", *probe))
    assert stopped.value.exit_code == 128 + signal.SIGUSR2
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6


def test_a_signal_during_the_last_validation_stops_before_testing(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    probe = [
        "+callbacks.signal._target_=tests.probes.SignalAt",
        f"+callbacks.signal.step={STEPS_PER_EPOCH}",
        "+callbacks.signal.in_validation=true",
        "trainer.max_epochs=1",
    ]
    with pytest.raises(TrainingInterrupted, match="SIGTERM received"):
        train(tiny_config(tiny_mnist, run_dir, *probe))
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == STEPS_PER_EPOCH
    assert not (run_dir / "metrics.json").exists()  # not tested: resume=auto will finish it


def _interrupted_inside(library_call):
    with stop_on_ctrl_c("while testing."):
        library_call()


def test_ctrl_c_wins_when_a_library_turns_it_into_its_own_error():
    """inspect.getfullargspec, in Lightning's validation loop, caught the interruption and
    raised "TypeError: unsupported callable": the command ended with a traceback, status 1."""

    def wraps_every_exception():
        try:
            signal.raise_signal(signal.SIGINT)
        except Exception as err:
            raise TypeError("unsupported callable") from err

    with pytest.raises(TrainingInterrupted, match="SIGINT received while testing"):
        _interrupted_inside(wraps_every_exception)


def test_ctrl_c_wins_when_a_library_swallows_it():
    def swallows_every_exception():
        try:
            signal.raise_signal(signal.SIGINT)
        except Exception:
            pass

    with pytest.raises(TrainingInterrupted, match="SIGINT received while testing"):
        _interrupted_inside(swallows_every_exception)


def test_without_ctrl_c_a_library_error_passes_unchanged():
    def fails():
        raise TypeError("a bug")

    with pytest.raises(TypeError, match="a bug"):
        _interrupted_inside(fails)
