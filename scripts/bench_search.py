"""A 24-trial Optuna search on real MNIST with and without the median pruner: wall time, the
best validation accuracy, trials pruned and epochs trained (the figures in the README).

Both searches are the same command but for ``hydra.sweeper.pruner``: the MLP of
hparams_search=mnist_optuna with Adam at batch 128, searching the learning rate (log scale),
the first hidden width and the dropout, 4 epochs per trial at most, the TPE sampler seeded alike
(its first 10 trials are the same random ones in both). Epochs trained is the compute measure
that does not drift with the machine's speed; the wall time includes each job's start-up, test
and report.

    LITLAB_DATA_DIR=../shared/data python scripts/bench_search.py [--trials 24] [--epochs 4]
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from litlab import PROJECT_ROOT

SPACE = [
    "optimizer=adam",
    "data.batch_size=128",
    "search.width_2=64",
    "optimizer.lr=tag(log, interval(0.0001, 0.1))",
    "search.width_1=choice(32, 64, 128, 256, 512)",
    "model.dropout=interval(0.0, 0.6)",
]


def search(folder: Path, pruner: str, trials: int, epochs: int) -> dict[str, float]:
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        "hparams_search=mnist_optuna",
        f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweeper.pruner={pruner}",
        f"trainer.max_epochs={epochs}",
        f"hydra.sweep.dir={folder}",
        *SPACE,
    ]
    env = {**os.environ, "LITLAB_ROOT": str(folder.parent)}
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    with (folder / "sweep_summary.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    epochs_trained = sum(
        len((folder / row["run_folder"] / "history.csv").read_text().splitlines()) - 1
        for row in rows
    )
    best = yaml.safe_load((folder / "optimization_results.yaml").read_text())
    return {
        "seconds": seconds,
        "best_val_acc": best["best_value"],
        "pruned": sum(row["status"] == "pruned" for row in rows),
        "epochs": epochs_trained,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--pruners", nargs="+", default=["none", "median", "hyperband"])
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for pruner in args.pruners:
            results[pruner] = search(Path(scratch) / pruner, pruner, args.trials, args.epochs)
            print(f"{pruner}: {results[pruner]}", flush=True)
    print("\n| pruner | wall time | best val/acc | trials pruned | epochs trained |")
    print("|---|---:|---:|---:|---:|")
    for name, row in results.items():
        print(
            f"| {name} | {row['seconds'] / 60:.1f} min | {row['best_val_acc']:.4f} | "
            f"{row['pruned']} of {args.trials} | {row['epochs']} of {args.trials * args.epochs} |"
        )
    print()
    none = results.get("none")
    for name, row in results.items():
        if none and name != "none":
            print(
                f"{name}/none: time {row['seconds'] / none['seconds']:.2f}, epochs "
                f"{row['epochs'] / none['epochs']:.2f}, best "
                f"{100 * (row['best_val_acc'] - none['best_val_acc']):+.2f} points"
            )


if __name__ == "__main__":
    main()
