"""A person's own folder of images (``data=image_folder data.root=PATH``): class subfolders or a
labels file, any size and mode, decoded once into a memory-mapped cache
(:mod:`litlab.data.image_cache`) and normalised per channel with the training split's
statistics, which the checkpoint keeps for predict.py and export.py."""

import hashlib
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from PIL import Image

from litlab.config.domains import (
    CountOrFraction,
    Flag,
    example,
    int_at_least,
    number_between,
    one_of,
    or_none,
)
from litlab.config.entries import checked
from litlab.config.folder_facts import FolderScan, file_signature, scan_folder
from litlab.data.augment import random_affine
from litlab.data.base import (
    Split,
    TensorDataModule,
    held_out_counts,
    refuse_changed_data,
    split_count,
    stratified_split,
)
from litlab.data.image_cache import (
    CACHE_VERSION,
    RESIZE_POLICIES,
    DecodedFolder,
    ImageSettings,
    MappedRows,
    decoded_folder,
    to_settings,
)
from litlab.data.images import Formed, ImageForm, Preprocessing
from litlab.errors import ConfigError, DataError, listed

log = logging.getLogger(__name__)


class ImageFolderDataModule(TensorDataModule):
    """Images of ``root``: one subfolder per class (``root/<class>/*``), optionally inside
    ``train/``, ``val/`` and ``test/`` subfolders that fix the splits; or the ``file,label``
    rows of a ``labels`` CSV. Without fixed splits, a seeded stratified split by ``val_size``
    and ``test_size``; with only ``train/`` and ``test/``, validation images come from train.

    Every file is brought to ``image_size`` with ``channels`` by ``resize`` (see
    :class:`~litlab.data.image_cache.ImageSettings`) once, into a cache under ``cache_dir``
    (by ``workers`` processes; null: one per CPU, at most 8). A file that cannot be read stops
    the run with its name, or with ``skip_bad_files`` is left out and counted. Batches are scaled to
    [0, 1] and standardised per channel on the device; with ``augment`` each training image is
    flipped (``flip``), shifted, rotated and cropped (``min_crop``: share of the area kept)."""

    @checked
    def __init__(
        self,
        root: str,
        cache_dir: str,
        labels: str | None = None,
        image_size: Any = 32,
        resize: Annotated[str, one_of(*RESIZE_POLICIES)] = "crop",
        channels: Annotated[int | None, or_none(example(one_of(1, 3), 3), "from the files")] = None,
        val_size: CountOrFraction = 0.1,
        test_size: CountOrFraction = 0.1,
        skip_bad_files: Flag = False,
        workers: Annotated[
            int | None, or_none(example(int_at_least(1), 2), "one per CPU, <= 8")
        ] = None,
        augment: Flag = False,
        flip: Flag = True,
        max_shift: Annotated[float, number_between(0, 64, "a number of pixels in [0, 64]")] = 2.0,
        max_rotation: Annotated[float, number_between(0, 180, "degrees in [0, 180]")] = 10.0,
        min_crop: Annotated[
            float, number_between(0.05, 1, "a share of the area in [0.05, 1]")
        ] = 1.0,
        **facts,
    ) -> None:
        super().__init__(**facts)
        del image_size, channels  # the config's input_shape holds them (and the files' colour)
        channels, height, width = self.input_shape
        self.settings = ImageSettings(channels, height, width, resize)
        self.image_form = ImageForm(height=height, width=width, channels=channels)
        self.root, self.labels = Path(root).expanduser(), labels
        self.cache_dir, self.workers = Path(cache_dir).expanduser(), workers
        self.val_size, self.test_size, self.skip_bad_files = val_size, test_size, skip_bad_files
        self.augment, self.flip, self.max_shift = augment, flip, max_shift
        self.max_rotation, self.min_crop = max_rotation, min_crop
        self.name = self.root.name or str(self.root)
        # per-channel statistics of the training split's pixels in [0, 1]; kept in checkpoints
        self.channel_mean: torch.Tensor | None = None
        self.channel_std: torch.Tensor | None = None
        self._cache: tuple[FolderScan, DecodedFolder] | None = None
        self._files_digest: str | None = None  # of the files loaded, for the checkpoint
        self._trained_on: str | None = None  # the checkpoint's digest, when one was loaded

    # -- the statistics travel in the checkpoint (Lightning stores a data module's state) -----
    def state_dict(self) -> dict[str, Any]:
        if self.channel_mean is None:
            return {}
        return {
            "channel_mean": self.channel_mean.tolist(),
            "channel_std": self.channel_std.tolist(),
            "files": self._files_digest,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The training split's statistics, and a digest of the files they came from (Lightning
        hands it back on resume after setup; load_trained before it)."""
        if state:
            self.channel_mean = torch.tensor(state["channel_mean"])
            self.channel_std = torch.tensor(state["channel_std"])
            self._trained_on = state.get("files")
            refuse_changed_data(self._trained_on, self._files_digest, f"data.root={self.root}")

    def prepare_data(self) -> None:
        """Decode the folder into the cache if it has none: Lightning calls this on one process
        per machine before setup(), so DDP ranks then map the same file."""
        self._decoded(scan_folder(self.root, self.labels))

    def load_splits(self) -> dict[str, Split]:
        scan = scan_folder(self.root, self.labels)
        if tuple(self.class_names) != scan.class_names:
            raise DataError(
                f"The classes of data.root={self.root} are now {listed(list(scan.class_names))}, "
                f"but this run's config has {listed(self.class_names)} (data.class_names): the "
                "folder changed after the run started. Start a new run (without resume)."
            )
        decoded = self._decoded(scan)
        refuse_changed_data(self._trained_on, self._files_digest, f"data.root={self.root}")
        usable = self._usable_rows(scan, decoded)
        labels = torch.tensor(scan.labels)
        parts = self._split_rows(scan, usable, labels)
        self._fit_statistics(decoded, parts["train"])
        self._files = {name: [scan.files[row] for row in rows] for name, rows in parts.items()}
        return {
            name: (MappedRows(decoded.pixels, rows), labels[rows]) for name, rows in parts.items()
        }

    def _decoded(self, scan: FolderScan) -> DecodedFolder:
        """The cache of the scanned files, made if missing; kept for this module's later calls
        (prepare_data before fit and before test, setup): each would stat every file again."""
        if self._cache is not None and self._cache[0] is scan:
            return self._cache[1]
        settings = self.settings
        self._files_digest = file_signature(scan)
        where = hashlib.sha256(str(scan.root.resolve()).encode()).hexdigest()[:8]
        key = "-".join(
            [
                where + self._files_digest,  # a copy of the folder elsewhere gets its own
                f"{settings.channels}x{settings.height}x{settings.width}",
                settings.resize,
                f"v{CACHE_VERSION}",
            ]
        )
        workers = self.workers or min(8, os.cpu_count() or 1)
        files = [os.path.join(scan.root, name) for name in scan.files]
        self._cache = (scan, decoded_folder(files, settings, self.cache_dir, key, workers))
        return self._cache[1]

    def _usable_rows(self, scan: FolderScan, decoded: DecodedFolder) -> torch.Tensor:
        failed = decoded.failed
        if failed and not self.skip_bad_files:
            raise DataError(
                f"{len(failed)} of the {len(scan.files)} files under data.root={self.root} "
                f"could not be read as images: {listed(list(failed.values()), 5)}. Replace or "
                "remove them, or set data.skip_bad_files=true to train without them (the report "
                "counts them)."
            )
        if len(failed) == len(scan.files):
            raise DataError(
                f"None of the {len(scan.files)} files under data.root={self.root} could be read "
                f"as images: {listed(list(failed.values()), 5)}. Point data.root at a folder of "
                "PNG, JPEG, BMP, GIF, TIFF or WebP files (convert other formats first)."
            )
        if failed:
            note = f"{len(failed)} unreadable file(s) skipped (data.skip_bad_files=true)"
            self.preparation_notes.append(note)
            log.warning("%s: %s.", note, listed(list(failed.values()), 5))
        keep = [row for row in range(len(scan.files)) if row not in failed]
        return torch.tensor(keep, dtype=torch.long)

    def _split_rows(
        self, scan: FolderScan, usable: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if scan.splits is None:
            val_count, test_count = held_out_counts(self.val_size, self.test_size, len(usable))
            train, val, test = self.fold_parts(
                stratified_split(
                    labels[usable], val_count, test_count, self.seed, f"data.root={self.root}"
                ),
                labels[usable],
                f"data.root={self.root}",
            )
            return {"train": usable[train], "val": usable[val], "test": usable[test]}
        fixed = np.asarray(scan.splits)[usable.numpy()]
        parts = {name: usable[torch.from_numpy(fixed == name)] for name in ("train", "val", "test")}
        if not len(parts["val"]):  # carve it from train, as MNIST's
            count = split_count("data.val_size", self.val_size, len(parts["train"]))
            train, val, _ = stratified_split(
                labels[parts["train"]], count, 0, self.seed, f"data.root={self.root}"
            )
            train, val, _ = self.fold_parts(
                [train, val, val[:0]], labels[parts["train"]], f"data.root={self.root}"
            )
            parts["train"], parts["val"] = parts["train"][train], parts["train"][val]
        elif self.fold is not None:
            raise ConfigError(
                f"cv.folds={self.fold.count}: data.root={self.root} has a fixed validation split "
                "(its val/ folder), and cross-validation chooses each fold's validation images "
                "itself from the training and validation images pooled. Move the val/ images "
                "into train/ (the test/ folder stays held out), or train without cv.folds."
            )
        if not len(parts["test"]) and self.fold is not None:
            raise ConfigError(
                f"cv.folds={self.fold.count}: data.root={self.root} has no test/ folder, and "
                "every fold is tested on the same held-out test split. Add a test/ folder, or "
                "leave out the train/ folder to let litlab split all the images "
                "(data.val_size, data.test_size)."
            )
        if not len(parts["test"]):
            log.warning(
                "data.root=%s has no test/ images: the validation split is tested.", self.root
            )
            parts["test"] = parts["val"]
        return parts

    def _fit_statistics(self, decoded: DecodedFolder, train: torch.Tensor) -> None:
        """Mean and std per channel of the training images, from the per-image sums that the
        decoding kept (no pass over a cache that may be larger than memory)."""
        total, squares = decoded.sums[train.numpy()].sum(0).T
        count = len(train) * decoded.pixels.shape[2] * decoded.pixels.shape[3]
        mean = total / count
        std = np.sqrt(np.clip(squares / count - mean**2, 0, None)).clip(1e-3)
        self.channel_mean = torch.tensor(mean, dtype=torch.float32)
        self.channel_std = torch.tensor(std, dtype=torch.float32)

    def sample_name(self, split: str, index: int) -> str | None:
        return self._files[split][index]

    # -- batches and new pictures ------------------------------------------------------------
    def prepare_inputs(self, inputs: torch.Tensor, training: bool = False) -> torch.Tensor:
        images = inputs.float()
        if self.augment and training:
            images = random_affine(
                images, self.max_shift, self.max_rotation, self.flip, self.min_crop
            )
        return self.normalise(images)

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """Pixels 0..255 ``(N, C, H, W)`` -> standardised per channel with the training split's
        statistics (from the checkpoint when it has them)."""
        if self.channel_mean is None:
            self.setup()
        mean = self.channel_mean.to(raw.device).view(1, -1, 1, 1)
        std = self.channel_std.to(raw.device).view(1, -1, 1, 1)
        return (raw / 255 - mean) / std

    def raw_inputs(self, split: str) -> torch.Tensor:
        self.setup()
        assert self.splits is not None
        return self.splits[split][0].float()

    def form_image(self, image: Image.Image, steps: Preprocessing) -> Formed:
        """A new picture as the training images were made (the same decoding and resizing)."""
        del steps  # the MNIST-style steps (invert, ink box) do not apply to photographs
        pixels = to_settings(image, self.settings)
        return Formed(pixels.astype(np.float32), self._form_description(), False)

    def _form_description(self) -> str:
        s = self.settings
        colour = "colour" if s.channels == 3 else "grey"
        return f"{colour}, {s.width}x{s.height} ({s.resize})"

    def describe_raw_inputs(self) -> str:
        return f"pixels 0..255, {self._form_description()}, channels first"
