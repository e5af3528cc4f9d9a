"""A folder of images read epoch after epoch: torchvision's ImageFolder with DataLoader workers
(the classic pipeline) against data=image_folder's decode-once cache (`bench.py --folder`).

Both read the same files (real MNIST digits in random colours, PNG and JPEG, written by
scripts/mnist_folder.py) into normalised float batches of 3x32x32 in a random order, with no
model: the figure is the data pipeline alone. The first epoch of litlab includes decoding every
file into the cache; the classic pipeline decodes every file in every epoch (the libraries of
both are imported before the clock starts). Memory: how much of the mapped cache is resident
(page cache, which the kernel reclaims under pressure) and how much the process's own memory
grew: the array is mapped, not copied in.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from mnist_folder import write_folder
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import ImageFolder

from litlab import PROJECT_ROOT
from litlab.data import ImageFolderDataModule

BATCH = 64


def own_memory_mib() -> float:
    """The process's own resident memory (anonymous: not file pages), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def mapped_resident_mib(file: Path) -> float:
    """How much of ``file``, mapped by this process, is resident (read into the page cache)."""
    resident, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0]:  # a mapping's header: address range, ..., path
            inside = line.endswith(str(file))
        elif inside and line.startswith("Rss:"):
            resident += int(line.split()[1])
    return resident / 1024


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
    seconds, before = [], own_memory_mib()
    for epoch in range(epochs):
        started = time.perf_counter()
        if epoch == 0:
            datamodule.setup()  # decodes every file into the cache (this is the first epoch's)
        for images, _labels in datamodule.train_dataloader():
            batch = datamodule.prepare_inputs(images)
            assert batch.shape[1:] == (3, 32, 32)
        seconds.append(time.perf_counter() - started)
    [array] = cache.glob("*-v?.npy")  # the pixels (the per-image sums are beside)
    memory = {
        "cache_mib": array.stat().st_size / 2**20,
        "own_growth_mib": own_memory_mib() - before,
        "cache_resident_mib": mapped_resident_mib(array),
    }
    return seconds, memory


def main(args: argparse.Namespace) -> dict:
    import sklearn.model_selection  # noqa: F401 - imported at start-up, not in an epoch

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
    print(
        f"cache {memory['cache_mib']:.1f} MiB, mapped: {memory['cache_resident_mib']:.1f} MiB of "
        f"it resident after {args.epochs} epochs (page cache, which the kernel can reclaim); the "
        f"process's own memory grew by {memory['own_growth_mib']:.1f} MiB"
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
    default_data = os.environ.get("LITLAB_DATA_DIR", str(PROJECT_ROOT.parent / "shared" / "data"))
    parser.add_argument("--data-dir", default=default_data)
    torch.set_num_threads(2)
    main(parser.parse_args())
