"""Training speed on MNIST: a raw PyTorch loop, the classic Lightning pipeline, and litlab.

    python scripts/bench.py                  # CPU, SimpleNN and CNN, batch 128
    python scripts/bench.py --quick          # a quarter of each epoch: about 40 s on CPU
    python scripts/bench.py --device cuda    # the same on a GPU
    python scripts/bench.py --whole-run      # whole train.py commands, itemised (bench_whole_run)
    python scripts/bench.py --speedrun       # time to 99 %: mnist_speedrun vs the raw recipe
    python scripts/bench.py --folder         # an image folder: ImageFolder vs the decode-once cache

1. raw: a plain loop over normalised float tensors in memory (the reference);
2. classic: torchvision MNIST + ToTensor/Normalize + DataLoader, trained by a default
   Lightning Trainer, as the usual Lightning + Hydra template does;
3. litlab: `train(cfg)` with its default callbacks and TensorBoard logging;
4. with --dashboards: litlab without its dashboard callbacks (diagnostics, evaluation images,
   report data), to show what they cost.

Each pipeline trains the same model (litlab.models) with Adam on the same 55k training images.
The first epoch is a warm-up and not counted; the figure is the median of the other epochs, training
only (validation excluded). Prints a table and writes bench.json.
"""

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import bench_folder
import bench_speedrun
import bench_whole_run
import lightning as L
import torch
import torch.nn.functional as F
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, random_split
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy
from torchvision import transforms
from torchvision.datasets import MNIST

from litlab import PROJECT_ROOT
from litlab.callbacks import EpochTimer
from litlab.config import compose_config
from litlab.models import CNN, SimpleNN
from litlab.train import train

TRAIN_SIZE, BATCH_SIZE, LR, MEAN, STD = 55_000, 128, 1e-3, 0.1307, 0.3081
MODELS = {
    "simple_nn": lambda: SimpleNN(784, 256, 10),
    # as conf/model/cnn.yaml: channels-last weights
    "cnn": lambda: CNN([1, 28, 28], 10).to(memory_format=torch.channels_last),
}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def raw_loop(model_name: str, args: argparse.Namespace) -> list[float]:
    mnist = MNIST(args.data_dir, train=True, download=True)
    labels = mnist.targets[:TRAIN_SIZE].to(args.device)
    inputs = ((mnist.data[:TRAIN_SIZE].float() / 255 - MEAN) / STD).unsqueeze(1).to(args.device)
    model = MODELS[model_name]().to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True)  # as litlab
    steps = math.ceil(len(inputs) / BATCH_SIZE * args.fraction)  # as Lightning counts batches
    seconds = []
    for _ in range(args.epochs):
        sync(args.device)
        start = time.perf_counter()
        order = torch.randperm(len(inputs), device=args.device)
        for batch in order.split(BATCH_SIZE)[:steps]:
            loss = F.cross_entropy(model(inputs[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(args.device)
        seconds.append(time.perf_counter() - start)
    return seconds


class ClassicModule(L.LightningModule):
    """The usual template's module: metric objects called every step, logged per epoch."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.train_loss, self.train_acc = MeanMetric(), MulticlassAccuracy(num_classes=10)

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        logits = self.net(inputs)
        loss = F.cross_entropy(logits, targets)
        self.train_loss(loss)
        self.train_acc(logits.argmax(dim=1), targets)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LR)  # the template: no fused kernel


def classic_pipeline(model_name: str, args: argparse.Namespace, workdir: Path) -> list[float]:
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    dataset = MNIST(args.data_dir, train=True, transform=transform, download=True)
    train_set, _ = random_split(dataset, [TRAIN_SIZE, len(dataset) - TRAIN_SIZE])
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        default_root_dir=workdir / "classic",
        limit_train_batches=args.fraction,
        callbacks=[timer],
    )
    loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
    trainer.fit(ClassicModule(MODELS[model_name]()), train_dataloaders=loader)
    return timer.epoch_seconds


# The callbacks that feed TensorBoard's images, histograms and the run report.
DASHBOARDS_OFF = [
    "callbacks.diagnostics=null",
    "callbacks.evaluation_images=null",
    "callbacks.report_data=null",
]


def litlab_pipeline(
    model_name: str, args: argparse.Namespace, workdir: Path, extra: tuple[str, ...] = ()
) -> list[float]:
    run_dir = workdir / f"litlab_{model_name}{'_plain' if extra else ''}"
    overrides = [
        f"paths.data_dir={args.data_dir}",
        f"model={model_name}",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"+trainer.limit_train_batches={args.fraction}",
        "callbacks.early_stopping=null",  # time every epoch, whatever the metric does
        "test=false",
        *extra,
    ]
    train(compose_config(overrides, run_dir))
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [event.value for event in events.Scalars("time/train_epoch_s")]


def summarise(seconds: list[float], fraction: float) -> dict[str, float]:
    measured = seconds[1:]  # the first epoch is the warm-up
    median = statistics.median(measured)
    samples = TRAIN_SIZE * fraction
    return {
        "epoch_s": median / fraction,  # scaled to a full 55k-sample epoch
        "samples_per_s": samples / median,
        "epochs_measured": len(measured),
        "raw_epoch_seconds": seconds,
    }


def print_table(results: list[dict]) -> None:
    print(f"\n{'model':<10} {'pipeline':<9} {'s/epoch':>8} {'samples/s':>10} {'vs raw':>7}")
    for row in results:
        print(
            f"{row['model']:<10} {row['pipeline']:<9} {row['epoch_s']:>8.3f} "
            f"{row['samples_per_s']:>10,.0f} {row['vs_raw']:>6.2f}x"
        )
    for model in dict.fromkeys(row["model"] for row in results):
        by = {row["pipeline"]: row["epoch_s"] for row in results if row["model"] == model}
        print(
            f"{model}: litlab/raw = {by['litlab'] / by['raw']:.2f}x, "
            f"classic/litlab = {by['classic'] / by['litlab']:.1f}x"
        )
        if "plain" in by:
            print(f"{model}: dashboards add {by['litlab'] / by['plain'] - 1:+.1%} per epoch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--epochs", type=int, default=4, help="including one warm-up epoch")
    parser.add_argument("--quick", action="store_true", help="a quarter of each epoch")
    parser.add_argument(
        "--dashboards", action="store_true", help="also litlab without its dashboard callbacks"
    )
    parser.add_argument(
        "--whole-run",
        action="store_true",
        help="time whole train.py commands of 1 and --epochs epochs, itemised per callback",
    )
    parser.add_argument(
        "--no-itemise", dest="itemise", action="store_false", help="--whole-run: defaults only"
    )
    parser.add_argument(
        "--speedrun", action="store_true", help="experiment=mnist_speedrun vs the raw recipe"
    )
    parser.add_argument("--seeds", type=int, default=5, help="--speedrun: seeds 1..N")
    parser.add_argument(
        "--folder", action="store_true", help="a folder of images: ImageFolder vs litlab's cache"
    )
    parser.add_argument("--images", type=int, default=5000, help="--folder: images written")
    parser.add_argument("--reps", type=int, default=3, help="--whole-run: interleaved repetitions")
    parser.add_argument(
        "--overrides", nargs="*", default=[], help="--whole-run: extra train.py overrides"
    )
    parser.add_argument("--out", type=Path, default=Path("bench.json"))
    default_data = os.environ.get("LITLAB_DATA_DIR", str(PROJECT_ROOT.parent / "shared" / "data"))
    parser.add_argument("--data-dir", default=default_data)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first one is a warm-up")
    args.fraction = 0.25 if args.quick else 1.0
    torch.manual_seed(0)
    if args.whole_run or args.speedrun or args.folder:
        report = {"machine": machine_facts(args)}
        if args.folder:
            report["folder"] = bench_folder.main(args)
        if args.whole_run:
            report["whole_run"] = bench_whole_run.main(args)
        if args.speedrun:
            report["speedrun"] = bench_speedrun.main(args)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nWrote {args.out}")
        return

    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for model in args.models:
            pipelines = {
                "raw": lambda m=model: raw_loop(m, args),
                "classic": lambda m=model: classic_pipeline(m, args, Path(workdir)),
                "litlab": lambda m=model: litlab_pipeline(m, args, Path(workdir)),
            }
            if args.dashboards:
                pipelines["plain"] = lambda m=model: litlab_pipeline(
                    m, args, Path(workdir), tuple(DASHBOARDS_OFF)
                )
            for name, run in pipelines.items():
                results.append(
                    {"model": model, "pipeline": name, **summarise(run(), args.fraction)}
                )
    for row in results:
        raw = next(r for r in results if r["model"] == row["model"] and r["pipeline"] == "raw")
        row["vs_raw"] = row["epoch_s"] / raw["epoch_s"]

    print_table(results)
    machine = machine_facts(args)
    args.out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    print(f"\nWrote {args.out}")


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_facts(args: argparse.Namespace) -> dict:
    return {
        "date": date.today().isoformat(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "batch_size": BATCH_SIZE,
        "fraction_of_epoch": args.fraction,
    }


if __name__ == "__main__":
    main()
