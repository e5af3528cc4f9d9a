"""Stop on SIGINT or SIGTERM at a step boundary, with a checkpoint to resume from."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import lightning as L

from litlab.errors import TrainingInterrupted
from litlab.library_internals import at_last_batch
from litlab.resume import continue_command
from litlab.run_folder import last_checkpoint

# SIGUSR2: what submitit (hydra/launcher=slurm) sends signal_delay_s before a time limit.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)
DDP_CHECK_EVERY_N_STEPS = 10


class GracefulStop(L.Callback):
    """On Ctrl+C (SIGINT), a scheduler's SIGTERM or submitit's SIGUSR2, finish the current
    training step, save ``<run_dir>/checkpoints/last.ckpt`` and stop with a message that says how to
    resume. A signal during validation takes effect after the next training step, or before
    testing when the last epoch has ended; a second Ctrl+C stops at once, without saving. Under
    DDP the ranks agree every 10 steps, so they stop at the same one.

    Written by hand: on SIGTERM Lightning stops without saving, and on Ctrl+C it raises wherever
    the program happens to be, e.g. between a backward pass and its optimizer step. Under DDP
    every process must receive the signal (a terminal's Ctrl+C, SLURM and torchrun do that).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = last_checkpoint(Path(run_dir))
        self.received: int | None = None
        self._previous_handlers: dict[int, object] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning's own SIGTERM handler was active until now (sanity check, restoring)
        self.received = signal.SIGTERM if trainer.received_sigterm else None
        if threading.current_thread() is threading.main_thread():  # signals reach that only
            self._previous_handlers = {sig: signal.signal(sig, self._note) for sig in SIGNALS}

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        self.received = signum

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if at_last_batch(trainer):
            return  # validation and the epoch's end belong to this state: stop after them
        if trainer.world_size > 1 and trainer.global_step % DDP_CHECK_EVERY_N_STEPS:
            return  # agreeing costs a collective and a host sync: not every step
        self._stop_if_signalled(trainer)

    # Handlers go back before Lightning's teardown restores those it found at the start.
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()
        self._stop_if_signalled(trainer)  # received during the last validation: skip testing

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, err: BaseException):
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers = {}

    def _stop_if_signalled(self, trainer: L.Trainer) -> None:
        # Under DDP the ranks may see the signal at different steps: all stop at the same one.
        signalled = trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)
        if not signalled:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the full state, to resume
        name = signal.Signals(self.received or signal.SIGTERM).name
        raise TrainingInterrupted(
            f"{name} received: training stopped at epoch {trainer.current_epoch}, step "
            f"{trainer.global_step}, and saved {self.path}. {continue_command(self.path)}",
            self.received or signal.SIGTERM,
        )


@contextmanager
def stop_on_ctrl_c(where: str) -> Iterator[None]:
    """Outside GracefulStop's training steps (the learning-rate finder, testing), Ctrl+C ends
    the command at once with status 130 and ``where`` in its message (what was done and what
    to run next). Python's KeyboardInterrupt would reach Lightning, which ignores every further
    Ctrl+C and ends the process with status 1 and no word; TrainingInterrupted, an ordinary
    exception, it passes on after its teardown. Library code that catches every Exception may
    turn it into its own error (``inspect.getfullargspec``, in Lightning's validation loop,
    raises "TypeError: unsupported callable") or swallow it: the interruption still wins."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[TrainingInterrupted] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        received.append(
            TrainingInterrupted(f"{signal.Signals(signum).name} received {where}", signum)
        )
        raise received[0]

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    except TrainingInterrupted:
        raise
    except Exception as err:
        if received:
            raise received[0] from err
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise received[0]
