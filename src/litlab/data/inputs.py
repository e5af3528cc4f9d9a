"""A person's own inputs for a trained model (``predict.py inputs=...``): image files or CSV
tables, found from a file, a folder or a glob pattern, read into one tensor in the data set's
raw form (see :class:`~litlab.data.base.TensorDataModule`)."""

import codecs
import csv
import glob
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from litlab.config.folder_facts import IMAGE_SUFFIXES
from litlab.config.table_facts import TABLE_SUFFIXES
from litlab.data.base import TensorDataModule
from litlab.data.images import Preprocessing, read_image
from litlab.data.table import TableDataModule
from litlab.errors import DataError, listed

log = logging.getLogger(__name__)

# What spreadsheets write in place of commas in many locales (where the comma marks decimals).
SEPARATORS = {";": "';'", "\t": "tabs"}


@dataclass
class UserInputs:
    """``raw`` inputs, one ``name`` per sample (file, or file:line for tables), and for images
    what was done to each (``steps``) and which hold no ink (``blank``: nothing to predict)."""

    raw: torch.Tensor
    names: list[str]
    steps: list[str]
    blank: list[bool]
    is_image: bool
    skipped: list[Path] = field(default_factory=list)


def array_inputs(values: Any, datamodule: TensorDataModule) -> UserInputs:
    """Inputs given as an array (a tensor, a NumPy array, nested lists) in the data set's raw
    form: ``(N, *input_shape)`` or ``(N, num_features)``; one sample may come without N."""
    shape = tuple(datamodule.input_shape or (datamodule.num_features,))
    try:
        raw = torch.as_tensor(values).float()
    except (TypeError, ValueError, RuntimeError) as err:
        raise DataError(
            f"The inputs ({type(values).__name__}) are neither files nor an array of numbers "
            f"({err}). Give a path, a folder or a glob, or an array of shape (N, "
            f"{', '.join(map(str, shape))})."
        ) from err
    if tuple(raw.shape) == shape:
        raw = raw.unsqueeze(0)
    if tuple(raw.shape[1:]) != shape or not len(raw):
        raise DataError(
            f"Inputs of shape {tuple(raw.shape)} do not fit the model, which takes "
            f"{shape} per sample in the data set's raw form "
            f"({datamodule.describe_raw_inputs()}). Give an array of shape (N, "
            f"{', '.join(map(str, shape))})."
        )
    count = len(raw)
    return UserInputs(
        raw,
        [f"[{index}]" for index in range(count)],
        [""] * count,
        [False] * count,
        is_image=datamodule.image_form is not None,
    )


def find_files(spec: str) -> tuple[list[Path], list[Path]]:
    """``(usable, skipped)``: image and CSV files named by ``spec`` (a file, a folder, whose
    files are taken in name order, or a glob pattern such as ``digits/*.png``)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
        candidates = [p for p in entries if p.is_file()]
        for folder in (p for p in entries if p.is_dir()):
            log.warning(
                "Skipped the folder %s: only the files directly in %s are read; for every "
                "picture below it use a pattern, inputs='%s/**/*.png'.",
                folder,
                path,
                path,
            )
    elif path.is_file():
        candidates = [path]
    elif glob.has_magic(spec):
        candidates = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        candidates = [p for p in candidates if p.is_file()]
    else:
        raise DataError(
            f"inputs={spec} is neither a file, a folder nor a glob pattern that matches files. "
            "Give an image or CSV file, a folder of them, or a pattern such as "
            "inputs='my_digits/*.png' (quoted, so that the shell leaves it to litlab)."
        )
    usable = [p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES + TABLE_SUFFIXES]
    skipped = [p for p in candidates if p not in usable]
    if not usable:
        if path.is_file():
            what = "is not"
        elif candidates:
            what = f"holds {len(candidates)} file(s), none of them"
        else:
            what = "holds no file, so not"
        raise DataError(
            f"inputs={spec} {what} an image ({', '.join(IMAGE_SUFFIXES)}) nor a CSV table. "
            "Point inputs at image files for an image model, or a CSV file for a tabular one."
        )
    return usable, skipped


def read_inputs(spec: str, datamodule: TensorDataModule, steps: Preprocessing) -> UserInputs:
    """Every usable file of ``spec`` in the raw form of ``datamodule``'s data. Among both
    kinds, the model's kind is read and the other skipped (a labels.csv among the pictures);
    only the other kind is refused with the reason."""
    files, skipped = find_files(spec)
    for path in skipped:
        log.warning("Skipped %s: not an image or a CSV file.", path)
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    tables = [p for p in files if p not in images]
    form = datamodule.image_form
    if images and tables:
        kept, other = (images, tables) if form is not None else (tables, images)
        for path in other:
            log.warning("Skipped %s: this model reads %s.", path, "images" if form else "tables")
        skipped = [*skipped, *other]
        images, tables = (kept, []) if form is not None else ([], kept)
    if images and form is None:
        raise DataError(_wrong_kind(images[0], datamodule, "an image"))
    if images:
        formed = [datamodule.form_image(read_image(path), steps) for path in images]
        raw = torch.stack([torch.from_numpy(image.pixels) for image in formed])
        names = [str(path) for path in images]
        blank = [image.blank for image in formed]
        return UserInputs(raw, names, [image.steps for image in formed], blank, True, skipped)
    rows, names = [], []
    for path in tables:
        try:
            if isinstance(datamodule, TableDataModule):
                values, lines = datamodule.read_rows(path)
            elif path.suffix.lower() != ".csv":
                raise DataError(
                    f"{path} is a Parquet file: models trained on data=table read those; this "
                    "one reads CSV files. Save the rows as CSV."
                )
            else:
                values, lines = read_table(path, datamodule.feature_names)
        except DataError as err:
            if form is None:
                raise
            raise DataError(
                f"This checkpoint's model takes {form.width}x{form.height} images: give image "
                f"files ({', '.join(IMAGE_SUFFIXES)}). A CSV table works too, with "
                f"{datamodule.num_features} pixel values per row and no header, but: {err}"
            ) from err
        rows.append(values)
        names += [f"{path}:{line}" for line in lines]
    raw = torch.cat(rows)
    if datamodule.input_shape is not None:  # flat rows of an image or sequence data set
        raw = raw.reshape(-1, *datamodule.input_shape)
    return UserInputs(raw, names, [""] * len(names), [False] * len(names), False, skipped)


def _wrong_kind(path: Path, datamodule: TensorDataModule, kind: str) -> str:
    name = getattr(datamodule, "name", type(datamodule).__name__)
    return (
        f"{path} is {kind}, but this checkpoint's model was trained on {name}, which has "
        f"{datamodule.num_features} numeric features per sample and no image form. Give a CSV "
        f"file whose header names the features ({listed(datamodule.feature_names)}), or one "
        f"without a header and {datamodule.num_features} values per row."
    )


def read_table(path: Path, feature_names: list[str]) -> tuple[torch.Tensor, list[int]]:
    """``(rows, line numbers)`` of a CSV file: with a header, the columns named
    ``feature_names`` (in that order; other columns are ignored); without one (a first row of
    numbers), exactly ``len(feature_names)`` values per row."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
        rows = csv.reader(io.StringIO(text, newline=""))
        lines = [(number, row) for number, row in enumerate(rows, 1) if row]
    except UnicodeDecodeError as err:
        raise DataError(_not_utf8(path, data, err)) from err
    except (OSError, csv.Error) as err:
        raise DataError(f"The CSV file {path} could not be read ({err}).") from err
    if not lines:
        raise DataError(f"The CSV file {path} is empty; give one row per sample.")
    separator = _other_separator(lines[0][1])
    if separator is not None:
        raise DataError(_not_commas(path, lines[0][1], separator))
    header = None if _numbers(lines[0][1]) is not None else [cell.strip() for cell in lines[0][1]]
    body = lines if header is None else lines[1:]
    if not body:
        raise DataError(f"The CSV file {path} has a header but no rows of values.")
    columns = _columns(path, header, feature_names)
    width = len(header) if header else len(feature_names)
    values = []
    for number, row in body:
        cells = _numbers([row[index] for index in columns]) if len(row) == width else None
        if cells is None:
            raise DataError(_bad_row(path, number, row, width, header, feature_names))
        values.append(cells)
    return torch.tensor(np.asarray(values, dtype=np.float32)), [n for n, _ in body]


def _not_utf8(path: Path, data: bytes, err: UnicodeDecodeError) -> str:
    """What the bytes look like instead: spreadsheets save Windows' cp1252 (Latin-1's letters
    and a few more) or, as "Unicode text", UTF-16."""
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "cp1252"
    if encoding == "utf-16":
        found = "it is UTF-16"
    else:
        byte = data[err.start : err.start + 1]
        line = data[: err.start].count(b"\n") + 1
        found = f"line {line} holds the byte 0x{byte.hex()}"
        try:
            data.decode(encoding)
            found += f", {byte.decode(encoding)!r} in Latin-1/cp1252, the encoding it looks like"
        except UnicodeDecodeError:  # cp1252 leaves five bytes out: some other encoding
            pass
    return (
        f"The CSV file {path} is not UTF-8: {found}. litlab reads UTF-8 text; re-save the file "
        f'as UTF-8 (a spreadsheet\'s "CSV UTF-8", or iconv -f {encoding} -t utf-8).'
    )


def _other_separator(first_row: list[str]) -> str | None:
    """The separator the first row was written with, when it is not a comma."""
    marks = (name for mark, name in SEPARATORS.items() if any(mark in c for c in first_row))
    return next(marks, None)


def _not_commas(path: Path, first_row: list[str], separator: str) -> str:
    first = ",".join(first_row)
    first = first if len(first) <= 60 else first[:57] + "..."
    return (
        f"The CSV file {path} looks separated by {separator} (its first line: {first!r}): "
        "litlab reads comma-separated files. Re-save it with commas between the values and "
        "points as decimal marks."
    )


def _columns(path: Path, header: list[str] | None, feature_names: list[str]) -> list[int]:
    if header is None:
        return list(range(len(feature_names)))
    missing = [name for name in feature_names if name not in header]
    doubled = sorted({name for name in feature_names if header.count(name) > 1})
    if doubled:
        raise DataError(
            f"The CSV file {path} has the column(s) {listed(doubled)} more than once; keep "
            "one column per feature."
        )
    if missing:
        raise DataError(
            f"The CSV file {path} lacks the column(s) {listed(missing, 40)}. The model takes "
            f"{len(feature_names)} features named {listed(feature_names)} (its header: "
            f"{listed(header)}); rename the columns, or leave out the header and give the "
            "values in that order."
        )
    ignored = [name for name in header if name not in feature_names]
    if ignored:
        log.info("%s: columns %s are not features of the model; ignored.", path, ignored)
    return [header.index(name) for name in feature_names]


def _bad_row(
    path: Path, number: int, row: list[str], width: int, header: list[str] | None, names: list[str]
) -> str:
    if len(row) != width:
        layout = "as the header has" if header else f"one per feature: {listed(names)}"
        return (
            f"Line {number} of {path} has {len(row)} values; expected {width} ({layout}). "
            "Give every row the same columns."
        )
    picked = [row[header.index(name)] for name in names] if header else row
    bad = next(cell for cell in picked if _numbers([cell]) is None)
    return (
        f"Line {number} of {path} holds {bad!r}, which is not a finite number; every value "
        "must be one (one row per sample; fill in missing values first)."
    )


def _numbers(cells: list[str]) -> list[float] | None:
    """The cells as finite numbers, or None (nan and inf are no measurements)."""
    try:
        values = [float(cell) for cell in cells]
    except ValueError:
        return None
    return values if all(np.isfinite(values)) else None
