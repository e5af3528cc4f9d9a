"""What each logger costs: SimpleNN on real MNIST (the default run) with logger=none,
tensorboard, csv, mlflow (its SQLite database) and wandb (offline), interleaved; per logger the
median time of an epoch after the first (training, validation and what the loggers write), its
difference to no logger, and the run's start-up and end beyond its epochs (creating the
database or W&B's service, uploading the artifacts).

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
    """The wall time from one training epoch's start to the next (the last: to the fit's end)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.fit_end = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_end = time.perf_counter()
        CLOCKS.append(self)

    def epochs(self) -> list[float]:
        ends = [*self.starts[1:], self.fit_end]
        return [end - start for start, end in zip(self.starts, ends, strict=True)]


CLOCKS: list[EpochClock] = []


def one_run(logger: str, epochs: int, folder: Path) -> tuple[list[float], float]:
    """(the epochs' times, the whole train() call's time) of one run."""
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
    return CLOCKS[-1].epochs(), whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    epoch_times: dict[str, list[float]] = {name: [] for name in LOGGERS}
    overheads: dict[str, list[float]] = {name: [] for name in LOGGERS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved: the VM's drift touches every logger alike
            for logger in LOGGERS:
                epochs, whole = one_run(logger, args.epochs, Path(tmp))
                epoch_times[logger] += epochs[1:]
                overheads[logger].append(whole - sum(epochs))
    base = statistics.median(epoch_times["none"])
    print(f"SimpleNN on MNIST, {args.epochs} epochs x {args.repeats} runs per logger (medians)")
    print("| logger | s per epoch | added per epoch | run outside its epochs |")
    print("|---|---:|---:|---:|")
    for logger in LOGGERS:
        epoch = statistics.median(epoch_times[logger])
        outside = statistics.median(overheads[logger])
        print(f"| {logger} | {epoch:.3f} | {epoch - base:+.3f} | {outside:.2f} s |")


if __name__ == "__main__":
    main()
