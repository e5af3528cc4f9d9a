"""`bench.py --speedrun`: time to 99 % on MNIST. `experiment=mnist_speedrun` through litlab's
`train(cfg)` against a raw loop of the published one-epoch recipe (conv 24/32 k5, fc 256, Adam
betas (0.7, 0.9), one-cycle to max lr 1e-2, batch 256, one epoch on the official 60k), seed by
seed, interleaved. Training time only (litlab: time/train_epoch_s, validation excluded); test
accuracy on the official 10k.
"""

import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_whole_run import sync
from torch import nn
from torchvision.datasets import MNIST

from litlab.config import compose_config
from litlab.train import train

MEAN, STD = 0.1307, 0.3081


def mnist_tensors(data_dir: str, device: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    splits = {}
    for name, is_train in (("train", True), ("test", False)):
        mnist = MNIST(data_dir, train=is_train, download=True)  # .gz files: unpacked
        images = ((mnist.data.float() / 255 - MEAN) / STD).unsqueeze(1)
        splits[name] = images.to(device), mnist.targets.to(device)
    return splits


def published_recipe() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 24, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(24, 32, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def raw_recipe(seed: int, data: dict, device: str) -> tuple[float, float, int]:
    """The published recipe as a plain loop: (training seconds, test accuracy, images)."""
    torch.manual_seed(seed)
    model = published_recipe().to(device)
    optimizer = torch.optim.Adam(model.parameters(), betas=(0.7, 0.9))
    inputs, targets = data["train"]
    batches = torch.randperm(len(inputs), device=device).split(256)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=len(batches))
    sync(device)
    start = time.perf_counter()
    model.train()
    for batch in batches:
        loss = F.cross_entropy(model(inputs[batch]), targets[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    sync(device)
    seconds = time.perf_counter() - start
    model.eval()
    test_inputs, test_targets = data["test"]
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in test_inputs.split(1000)])
    return seconds, (predicted == test_targets).float().mean().item(), len(inputs)


def litlab_speedrun(seed: int, args, workdir: Path) -> tuple[float, float, int]:
    overrides = [
        "experiment=mnist_speedrun",
        f"seed={seed}",
        f"paths.data_dir={args.data_dir}",
        *(["trainer.accelerator=gpu"] if args.device == "cuda" else []),
        *args.overrides,
    ]
    metrics = train(compose_config(overrides, workdir / f"speedrun_{seed}"))
    seconds = metrics["time/train_epoch_s"]
    return seconds, metrics["test/acc"], round(seconds * metrics["time/train_samples_per_s"])


def summary(rows: list[tuple[float, float, int]]) -> dict[str, float]:
    seconds, accuracies, images = zip(*rows, strict=True)
    return {
        "train_s_median": statistics.median(seconds),
        "train_images": images[0],
        "us_per_image": statistics.median(
            s / n * 1e6 for s, n in zip(seconds, images, strict=True)
        ),
        "test_acc_mean": statistics.mean(accuracies),
        "test_acc_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "test_acc_min": min(accuracies),
        "train_s": list(seconds),
        "test_acc": list(accuracies),
    }


def main(args) -> dict:
    logging.getLogger("lightning").setLevel(logging.WARNING)
    data = mnist_tensors(args.data_dir, args.device)
    raw_recipe(0, data, args.device)  # warm-up: allocator and kernel choices
    Row = tuple[float, float, int]
    rows: dict[str, list[Row]] = {"raw recipe": [], "litlab mnist_speedrun": []}
    with tempfile.TemporaryDirectory() as workdir:
        for seed in range(1, args.seeds + 1):
            rows["raw recipe"].append(raw_recipe(seed, data, args.device))
            rows["litlab mnist_speedrun"].append(litlab_speedrun(seed, args, Path(workdir)))
            latest = ", ".join(f"{k} {v[-1][0]:.2f} s {v[-1][1]:.2%}" for k, v in rows.items())
            print(f"  seed {seed}: {latest}", flush=True)
    result = {name: summary(values) for name, values in rows.items()}
    raw, ours = result["raw recipe"], result["litlab mnist_speedrun"]
    result["litlab_vs_raw"] = ours["train_s_median"] / raw["train_s_median"]
    header = f"{'speedrun':<24} {'images':>7} {'train s':>8} {'us/image':>9}"
    print(f"\n{header} test acc mean ± std, min")
    for name in rows:
        r = result[name]
        print(
            f"{name:<24} {r['train_images']:>7} {r['train_s_median']:>8.2f} "
            f"{r['us_per_image']:>9.1f} {r['test_acc_mean']:.2%} ± {r['test_acc_std']:.2%}, "
            f"{r['test_acc_min']:.2%}"
        )
    print(
        f"litlab / raw training time: {result['litlab_vs_raw']:.2f}x ({args.seeds} seeds; per "
        f"image {ours['us_per_image'] / raw['us_per_image']:.2f}x)"
    )
    return result
