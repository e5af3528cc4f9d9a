"""A folder of images read epoch after epoch: torchvision's ImageFolder with DataLoader workers
(the classic pipeline) against data=image_folder's decode-once cache (`bench.py --folder`).

Both read the same files (real MNIST digits in random colours, PNG and JPEG, written by
scripts/mnist_folder.py) into normalised float batches of 3x32x32 in a random order, with no
model: the figure is the data pipeline alone. The first epoch of litlab includes decoding every
file into the cache; the classic pipeline decodes every file in every epoch. Memory: the
process's own (anonymous) resident memory against the cache's size, and the mapped cache pages
that are resident (page cache, which the kernel reclaims under pressure).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from mnist_folder import write_folder
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import ImageFolder

from litlab.data import ImageFolderDataModule

BATCH = 64


def resident_mib() -> dict[str, float]:
    """The process's resident memory, own (anonymous) and file-mapped, in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def classic_epochs(root: Path, epochs: int, workers: int) -> list[float]:
    transform = transforms.Compose(
        [
            transforms.Resize(32),
            transforms.CenterCrop(32),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        ]
    )
    dataset = ImageFolder(str(root / "train"), transform=transform)
    loader = DataLoader(
        dataset, batch_size=BATCH, shuffle=True, num_workers=workers, persistent_workers=True
    )
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for images, _labels in loader:
            assert images.shape[1:] == (3, 32, 32)
        seconds.append(time.perf_counter() - started)
    return seconds


def litlab_epochs(root: Path, cache: Path, epochs: int, workers: int) -> tuple[list[float], dict]:
    datamodule = ImageFolderDataModule(
        root=str(root),
        cache_dir=str(cache),
        image_size=32,
        channels=3,
        workers=workers,
        batch_size=BATCH,
        task="multiclass",
        num_classes=10,
        num_features=3 * 32 * 32,
        num_outputs=10,
        input_shape=[3, 32, 32],
        class_names=[str(d) for d in range(10)],
    )
    seconds, memory = [], {"before": resident_mib()}
    for epoch in range(epochs):
        started = time.perf_counter()
        if epoch == 0:
            datamodule.setup()  # decodes every file into the cache (this is the first epoch's)
        for images, _labels in datamodule.train_dataloader():
            batch = datamodule.prepare_inputs(images)
            assert batch.shape[1:] == (3, 32, 32)
        seconds.append(time.perf_counter() - started)
    memory["after"] = resident_mib()
    memory["cache_mib"] = sum(f.stat().st_size for f in cache.glob("*.npy")) / 2**20
    return seconds, memory


def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir) / "digits"
        started = time.perf_counter()
        written = write_folder(root, Path(args.data_dir), args.images, 0, colour=True)
        print(f"Wrote {written['train']:,} images in {time.perf_counter() - started:.1f} s")
        litlab, memory = litlab_epochs(root, Path(workdir) / "cache", args.epochs, 2)
        classic = classic_epochs(root, args.epochs, 2)
    later_classic, later_litlab = statistics.median(classic[1:]), statistics.median(litlab[1:])
    rows = [
        ("classic: ImageFolder + DataLoader(num_workers=2)", classic[0], later_classic),
        ("litlab: data=image_folder (decode once)", litlab[0], later_litlab),
    ]
    print(f"\n{args.images:,} images, 3x32x32, batch {BATCH}, {args.epochs} epochs\n")
    print("| pipeline | first epoch (s) | later epochs (s, median) |")
    print("|---|---:|---:|")
    for name, first, later in rows:
        print(f"| {name} | {first:.2f} | {later:.3f} |")
    print(
        f"\nlater epochs: litlab {later_classic / later_litlab:.0f}x faster; first epoch "
        f"{classic[0] / litlab[0]:.1f}x the classic speed"
    )
    after, before = memory["after"], memory["before"]
    print(
        f"cache {memory['cache_mib']:.1f} MiB; the process's own memory grew by "
        f"{after['RssAnon'] - before['RssAnon']:.1f} MiB, mapped cache pages resident "
        f"{after['RssFile'] - before['RssFile']:.1f} MiB (page cache, reclaimable)"
    )
    return {
        "images": args.images,
        "classic_s": classic,
        "litlab_s": litlab,
        "memory": memory,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data-dir", default=str(Path(__file__).parents[2] / "shared" / "data"))
    torch.set_num_threads(2)
    main(parser.parse_args())
