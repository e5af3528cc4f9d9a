"""A folder of image files decoded once into a memory-mapped uint8 array, ``(N, C, H, W)``.

torchvision's ImageFolder decodes, converts and resizes every picture in every epoch (with
DataLoader workers); here the first run decodes each file once, in parallel processes, into
``<cache_dir>/<key>.npy``, where the key digests the files (paths, sizes, modification times,
labels) and the image settings: later runs and sweep jobs map the same file, a changed file
makes a new one. The array is mapped, not read: a data set larger than memory trains, pages
are read as batches touch them, and processes on one machine (DDP ranks) share them.
``scripts/bench.py --folder`` measures it against ImageFolder.
"""

import io
import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from PIL import Image, ImageOps

from litlab.config.folder_facts import IMAGE_SUFFIXES
from litlab.run_folder import write_atomically

log = logging.getLogger(__name__)

RESIZE_POLICIES = ("crop", "pad", "stretch")
CACHE_VERSION = 3  # part of the key: a change of decoding makes old caches unused
CHUNK = 256  # files per task of a decoding process


@dataclass(frozen=True)
class ImageSettings:
    """How every file is brought to one form: ``channels`` (1 grey, 3 colour), ``height`` x
    ``width``, by ``resize``: crop (scale the shorter side to fit, cut the centre), pad (scale
    the longer side to fit, pad with black) or stretch (scale each side, changing the aspect
    ratio)."""

    channels: int
    height: int
    width: int
    resize: str = "crop"


def decode(path: Path, settings: ImageSettings) -> np.ndarray:
    """One file as uint8 ``(C, H, W)``: upright as its EXIF orientation says, transparency laid
    on black, 16-bit values scaled to 8 bits, grey or colour, resized by ``settings.resize``.
    Raises what Pillow raises for a file it cannot read."""
    with Image.open(path) as image:
        if image.format == "JPEG":  # decode at a reduced scale when the file is much larger
            side = max(settings.height, settings.width)
            image.draft("RGB" if settings.channels == 3 else "L", (side, side))
        image.load()
        return to_settings(ImageOps.exif_transpose(image), settings)


def to_settings(image: Image.Image, settings: ImageSettings) -> np.ndarray:
    """An opened, upright picture as :func:`decode` makes it (predict.py's new pictures)."""
    image = _eight_bit(image)
    image = image.convert("RGB" if settings.channels == 3 else "L")
    size = (settings.width, settings.height)
    if settings.resize == "crop":
        image = ImageOps.fit(image, size, Image.Resampling.BILINEAR)
    elif settings.resize == "pad":
        image = ImageOps.pad(image, size, Image.Resampling.BILINEAR, color=0)
    elif image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _eight_bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit grey (PNG, TIFF) scaled to 0..255 by the range its mode holds, float
    images by 0..1; transparent pixels laid on black."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float32) / 257.0
        return Image.fromarray(values.clip(0, 255).round().astype(np.uint8))
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0
        return Image.fromarray((values * scale).clip(0, 255).round().astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return image


def _decode_chunk(
    array_path: str, shape: tuple[int, ...], files: list[tuple[int, str]], settings: ImageSettings
) -> tuple[list[tuple[int, str]], list[tuple[int, np.ndarray]]]:
    """In a decoding process: write each file's pixels into its row of the array. Returns the
    rows that failed with the reason, and each decoded row's per-channel sum and sum of
    squares of its pixels in [0, 1] (the training statistics then need no second pass)."""
    array = np.lib.format.open_memmap(array_path, mode="r+")
    failed, sums = [], []
    for row, path in files:
        try:
            if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
                raise ValueError(f"not an image file ({Path(path).suffix or 'no suffix'})")
            pixels = decode(Path(path), settings)
        except Exception as err:  # noqa: BLE001 - any failure of a file is that file's
            words = str(err).splitlines()[0] if str(err) else "no details"
            failed.append((row, f"{type(err).__name__}: {words}"))
            continue
        array[row] = pixels
        values = pixels.reshape(len(pixels), -1).astype(np.float64) / 255
        sums.append((row, np.stack([values.sum(1), np.square(values).sum(1)], 1)))
    array.flush()
    return failed, sums


@dataclass
class DecodedFolder:
    """The decoded images (a read-only memory map, ``(N, C, H, W)`` uint8, one row per file in
    the order given), each one's per-channel ``sums`` ``(N, C, 2)``: sum and sum of squares
    of its pixels in [0, 1], and the rows whose file could not be decoded, with why (their
    pixels and sums are 0)."""

    pixels: np.ndarray
    sums: np.ndarray
    failed: dict[int, str]
    path: Path


def decoded_folder(
    files: Sequence[str],
    settings: ImageSettings,
    cache_dir: Path,
    key: str,
    workers: int,
) -> DecodedFolder:
    """The cache of ``files`` under ``key``, decoding them first if there is none. Three
    files: ``<key>.npy`` (pixels), ``<key>.sums.npy`` and ``<key>.json`` (the failures),
    written last: its presence means complete."""
    path, sums_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.sums.npy"
    failures = cache_dir / f"{key}.json"
    cache_dir.mkdir(parents=True, exist_ok=True)
    # processes started together (DDP ranks under torchrun or SLURM, parallel sweep jobs): one
    # decodes, the others wait for it and map its file
    with FileLock(cache_dir / f"{key}.lock"):
        if not failures.is_file() or not path.is_file() or not sums_path.is_file():
            _decode_into(files, settings, path, sums_path, failures, workers)
    failed = {int(row): reason for row, reason in json.loads(failures.read_text()).items()}
    return DecodedFolder(np.load(path, mmap_mode="r"), np.load(sums_path), failed, path)


def _decode_into(
    files: Sequence[str],
    settings: ImageSettings,
    path: Path,
    sums_path: Path,
    failures: Path,
    workers: int,
) -> None:
    started = time.perf_counter()
    shape = (len(files), settings.channels, settings.height, settings.width)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npy")  # the rename is atomic
    np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape).flush()
    numbered = list(enumerate(files))
    jobs = [numbered[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
    failed_rows, row_sums = _decode_all(str(partial), shape, jobs, settings, workers)
    sums = np.zeros((len(files), settings.channels, 2))
    for row, values in row_sums:
        sums[row] = values
    buffer = io.BytesIO()
    np.save(buffer, sums)
    write_atomically(sums_path, buffer.getvalue())
    os.replace(partial, path)
    failed = {row: f"{files[row]}: {reason}" for row, reason in sorted(failed_rows)}
    write_atomically(failures, json.dumps(failed, indent=1))
    log.info(
        "Decoded %d images into %s (%.0f MiB) in %.1f s.",
        len(files),
        path,
        path.stat().st_size / 2**20,
        time.perf_counter() - started,
    )


def _decode_all(
    array_path: str,
    shape: tuple[int, ...],
    jobs: list[list[tuple[int, str]]],
    settings: ImageSettings,
    workers: int,
) -> tuple[list[tuple[int, str]], list[tuple[int, np.ndarray]]]:
    from tqdm.auto import tqdm

    failed: list[tuple[int, str]] = []
    sums: list[tuple[int, np.ndarray]] = []
    bar = tqdm(total=sum(map(len, jobs)), desc="Decoding images once", unit="img")
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 and len(jobs) > 1 else None
    try:
        if pool is None:
            results = ((len(job), _decode_chunk(array_path, shape, job, settings)) for job in jobs)
        else:
            futures = {
                pool.submit(_decode_chunk, array_path, shape, job, settings): len(job)
                for job in jobs
            }
            results = ((futures[done], done.result()) for done in as_completed(futures))
        for count, (job_failed, job_sums) in results:
            failed.extend(job_failed)
            sums.extend(job_sums)
            bar.update(count)
        return failed, sums
    except BaseException:
        Path(array_path).unlink(missing_ok=True)
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


class MappedRows:
    """Rows of a memory-mapped array picked by an index, indexed like a tensor by
    :class:`~litlab.data.tensor_loader.TensorBatchLoader` (``index_select``), slices and
    ``float()``: only the rows asked for are read. ``to(device)`` reads them all."""

    def __init__(self, array: np.ndarray, rows: torch.Tensor) -> None:
        self.array, self.rows = array, rows
        self.device, self.dtype = torch.device("cpu"), torch.uint8
        self.shape = torch.Size((len(rows), *array.shape[1:]))

    def __len__(self) -> int:
        return len(self.rows)

    def _read(self, rows: torch.Tensor) -> torch.Tensor:
        picked = rows.numpy()
        order = np.argsort(picked, kind="stable")  # in file order: sequential reads
        out = np.empty((len(picked), *self.array.shape[1:]), dtype=np.uint8)
        out[order] = self.array[picked[order]]
        return torch.from_numpy(out)

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        assert dim == 0
        return self._read(self.rows[index.cpu()])

    def __getitem__(self, key: slice | torch.Tensor) -> torch.Tensor:
        return self._read(self.rows[key])

    def numel(self) -> int:
        return self.shape.numel()

    def element_size(self) -> int:
        return 1

    def float(self) -> torch.Tensor:
        return self._read(self.rows).float()

    def to(self, device: torch.device, non_blocking: bool = False) -> torch.Tensor:
        return self._read(self.rows).to(device, non_blocking=non_blocking)
