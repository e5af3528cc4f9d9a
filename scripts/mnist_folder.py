"""Write real MNIST digits out as a folder of image files, the layout `data=image_folder` reads:
OUT/train/<digit>/ and OUT/test/<digit>/, every other file a JPEG, the rest PNG (the official
60k/10k split, so that a run on the folder is tested on the same 10,000 digits as
`data=mnist`). Lesson 14 starts here.

    python scripts/mnist_folder.py my_digits                       # every digit, PNG and JPEG
    python scripts/mnist_folder.py my_colours --colour --train 20000 --test 2000

--colour draws each digit in a random colour on a random, different background colour, at
32x32 (a colour data set whose colours carry no information about the class).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def mnist(data_dir: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import MNIST

    dataset = MNIST(str(data_dir), train=train, download=False)
    return dataset.data.numpy(), dataset.targets.numpy()


def coloured(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 grey digit as a 32x32 RGB picture: ink and background of random colours at
    least 100 apart (of 0..255, summed over the channels), the digit at a random place."""
    while True:
        ink, background = rng.integers(0, 256, (2, 3))
        if np.abs(ink - background).sum() >= 100:
            break
    canvas = np.zeros((32, 32), dtype=np.float32)
    top, left = rng.integers(0, 5, 2)
    canvas[top : top + 28, left : left + 28] = digit / 255.0
    picture = background + canvas[..., None] * (ink - background)
    return picture.round().astype(np.uint8)


def write_folder(
    out: Path,
    data_dir: Path,
    train_count: int | None = None,
    test_count: int | None = None,
    colour: bool = False,
    seed: int = 0,
) -> dict[str, int]:
    """Write the first ``train_count``/``test_count`` digits of each official split (None: all);
    every other file is a JPEG (quality 95), the rest PNG. Returns the files written per split."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, count in (("train", train_count), ("test", test_count)):
        images, labels = mnist(data_dir, train=split == "train")
        count = len(images) if count is None else min(count, len(images))
        if not count:
            continue
        for digit in range(10):
            (out / split / str(digit)).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = coloured(images[index], rng) if colour else images[index]
            suffix = "jpg" if index % 2 else "png"
            path = out / split / str(int(labels[index])) / f"{index:05d}.{suffix}"
            Image.fromarray(pixels).save(path, **({"quality": 95} if suffix == "jpg" else {}))
        written[split] = count
    return {"train": 0, "test": 0} | written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (created)")
    parser.add_argument("--train", type=int, default=None, help="training digits (default: all)")
    parser.add_argument("--test", type=int, default=None, help="test digits (default: all)")
    parser.add_argument("--colour", action="store_true", help="random colours, 32x32")
    parser.add_argument("--seed", type=int, default=0)
    default_data = os.environ.get("LITLAB_DATA_DIR", str(PROJECT_ROOT / "data"))
    parser.add_argument("--data-dir", type=Path, default=Path(default_data))
    args = parser.parse_args()
    if not (args.data_dir / "MNIST" / "raw").is_dir():
        sys.exit(
            f"MNIST was not found in {args.data_dir}/MNIST/raw/: run `python train.py` once "
            "(torchvision downloads it) or give --data-dir."
        )
    written = write_folder(args.out, args.data_dir, args.train, args.test, args.colour, args.seed)
    print(f"Wrote {written['train']:,} training and {written['test']:,} test images to {args.out}")


if __name__ == "__main__":
    main()
