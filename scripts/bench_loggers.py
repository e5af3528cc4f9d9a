"""What each logger costs: SimpleNN on real MNIST (the default run) with logger=none,
tensorboard, csv, mlflow (its SQLite database) and wandb (offline), interleaved; per logger the
median time of an epoch after the first (training, validation and what the loggers write), the
time spent inside the loggers' own calls per epoch (what a logger adds; the epochs themselves
drift by more on a VM), and the run's start-up and end beyond its epochs (creating the database
or W&B's service, uploading the artifacts, the test and the report).

    LITLAB_DATA_DIR=../shared/data python scripts/bench_loggers.py [--epochs 4] [--repeats 2]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L

from litlab.config import compose_config
from litlab.train import train

LOGGERS = ("none", "tensorboard", "csv", "mlflow", "wandb")


class EpochClock(L.Callback):
    """The wall time from one training epoch's start to the next (the last: to the fit's end),
    and the time spent inside the loggers' own calls (log_metrics, save, ...): the epoch times
    drift by more than a logger costs on this VM, the calls' own time does not."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.fit_end = 0.0
        self.in_loggers = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            for name in ("log_metrics", "log_hyperparams", "save", "log_graph"):
                setattr(logger, name, self._timed(getattr(logger, name)))

    def _timed(self, call):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.in_loggers += time.perf_counter() - started

        return timed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_end = time.perf_counter()
        CLOCKS.append(self)

    def epochs(self) -> list[float]:
        ends = [*self.starts[1:], self.fit_end]
        return [end - start for start, end in zip(self.starts, ends, strict=True)]


CLOCKS: list[EpochClock] = []


def one_run(logger: str, epochs: int, folder: Path) -> tuple[list[float], float, float]:
    """(the epochs' times, the whole train() call's time, the time inside the loggers' calls
    during fit) of one run."""
    overrides = [
        f"logger={logger}",
        f"trainer.max_epochs={epochs}",
        "callbacks.early_stopping=null",
        "callbacks.progress_bar=null",
        "+callbacks.epoch_clock._target_=__main__.EpochClock",
        f"paths.log_dir={folder}",
    ]
    cfg = compose_config(overrides, folder / f"{logger}_{time.monotonic_ns()}")
    started = time.perf_counter()
    train(cfg)
    whole = time.perf_counter() - started
    return CLOCKS[-1].epochs(), whole, CLOCKS[-1].in_loggers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--loggers", nargs="+", default=LOGGERS, choices=LOGGERS)
    args = parser.parse_args()
    epoch_times: dict[str, list[float]] = {name: [] for name in args.loggers}
    overheads: dict[str, list[float]] = {name: [] for name in args.loggers}
    calls: dict[str, list[float]] = {name: [] for name in args.loggers}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved: the VM's drift touches every logger alike
            for logger in args.loggers:
                epochs, whole, in_loggers = one_run(logger, args.epochs, Path(tmp))
                epoch_times[logger] += epochs[1:]
                overheads[logger].append(whole - sum(epochs))
                calls[logger].append(in_loggers / len(epochs))
    print(f"SimpleNN on MNIST, {args.epochs} epochs x {args.repeats} runs per logger (medians)")
    print("| logger | s per epoch | in the logger's calls per epoch | run outside its epochs |")
    print("|---|---:|---:|---:|")
    for logger in args.loggers:
        epoch = statistics.median(epoch_times[logger])
        inside = statistics.median(calls[logger]) * 1000
        outside = statistics.median(overheads[logger])
        print(f"| {logger} | {epoch:.3f} | {inside:.1f} ms | {outside:.2f} s |")


if __name__ == "__main__":
    main()
