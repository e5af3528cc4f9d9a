"""What a user's own data states about itself, read before anything is built: the classes of
an image folder and the colour of its files; a table's columns, the kind of problem its target
poses and the number of features its encoding gives. conf/data/image_folder.yaml and table.yaml
read these facts through the resolvers ``${image_folder:FACT}`` and ``${table:FACT}``, so that
a model's keys interpolate them as they do a shipped data set's; the data modules read the
same scans. Imports no torch; Pillow and pandas only when used.
"""

import csv
import functools
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litlab.errors import ConfigError, DataError, listed

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SPLITS = ("train", "val", "test")
# What file managers leave in folders: never data, never reported.
SYSTEM_FILES = {"thumbs.db", "desktop.ini", "icon\r"}
# Pillow's modes that hold colour; a palette ("P") image is colour unless its palette is grey.
COLOUR_MODES = {"RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "PA"}
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
# A whole-number target with at most this many values is a set of classes (labels 0..9, star
# ratings); with more, a count to regress.
MAX_CLASS_VALUES = 20


# -- an image folder ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FolderScan:
    """The files of an image folder: paths relative to ``root`` (sorted), each one's class
    index into ``class_names`` and, where the folder has ``train/``, ``val/``, ``test/``
    subfolders, its ``split`` (else None: a seeded split is drawn)."""

    root: Path
    files: tuple[str, ...]
    labels: tuple[int, ...]
    splits: tuple[str, ...] | None
    class_names: tuple[str, ...]


def scan_folder(root: str | os.PathLike, labels: str | os.PathLike | None = None) -> FolderScan:
    """The folder's files and classes: class subfolders (``root/<class>/...``, or
    ``root/<split>/<class>/...``), or the rows of a labels CSV (``file,label[,split]``).
    Kept while no folder below root (nor the labels file) changes: OmegaConf resolves a fact
    at every read of its key, some fifty times in a run, and a scan of 70,000 files takes
    0.14 s where checking the folders' times takes a millisecond."""
    folder = Path(root).expanduser()
    key = (str(folder.resolve()), str(labels))
    kept = _SCANS.get(key)
    if kept is None or not _unchanged(kept[0]):
        _SCANS.clear()  # one folder at a time is what a process trains on
        versions = _versions(folder, labels)
        _SCANS[key] = (versions, _scan(folder, labels))
    return _SCANS[key][1]


_SCANS: dict[tuple[str, str], tuple[tuple[tuple[str, int], ...], FolderScan]] = {}


def _versions(folder: Path, labels: str | os.PathLike | None) -> tuple[tuple[str, int], ...]:
    """The modification times of the folder, every folder below it and the labels file: adding,
    removing or renaming a file changes its folder's."""
    found = []
    pending = [str(folder)] if folder.is_dir() else []
    while pending:
        current = pending.pop()
        found.append((current, os.stat(current).st_mtime_ns))
        with os.scandir(current) as entries:
            pending += [e.path for e in entries if e.is_dir() and not e.name.startswith(".")]
    if labels is not None and Path(labels).expanduser().is_file():
        found.append((str(Path(labels).expanduser()), Path(labels).expanduser().stat().st_mtime_ns))
    return tuple(sorted(found))


def _unchanged(versions: tuple[tuple[str, int], ...]) -> bool:
    try:
        return all(os.stat(path).st_mtime_ns == mtime for path, mtime in versions)
    except OSError:  # a folder was removed
        return False


def _scan(folder: Path, labels: str | os.PathLike | None) -> FolderScan:
    if not folder.is_dir():
        raise DataError(
            f"data.root={folder} is not a folder{'' if folder.exists() else ' (it does not exist)'}"
            ". Point data.root at a folder holding one subfolder of images per class "
            "(root/cat/1.jpg, root/dog/2.jpg, ...), or give data.labels=FILE.csv listing each "
            "file with its label."
        )
    if labels is not None:
        return _scan_labels_file(folder, Path(labels).expanduser())
    entries = _visible(folder)
    subfolders = [entry for entry in entries if entry.is_dir()]
    if not entries:
        raise DataError(
            f"data.root={folder} is empty. Put one subfolder of images per class into it "
            "(root/cat/1.jpg, root/dog/2.jpg, ...), or point data.root at the folder that has them."
        )
    if not subfolders:
        raise DataError(
            f"data.root={folder} holds {len(entries)} file(s) but no class subfolders, so litlab "
            "cannot tell their classes. Move each class's images into a subfolder named after "
            "the class (root/cat/, root/dog/), or give data.labels=FILE.csv with rows "
            "'file,label'."
        )
    split_folders = [entry for entry in subfolders if entry.name in SPLITS]
    if split_folders:
        if not (folder / "train").is_dir():
            raise DataError(
                f"data.root={folder} has {listed([p.name + '/' for p in split_folders])} but no "
                "train/ subfolder. Put the training images into root/train/<class>/, or name "
                "the class folders directly under root (litlab then splits them)."
            )
        return _scan_split_folders(folder, split_folders)
    found = _class_files(subfolders, folder)
    names = sorted(found)
    files, classes = [], []
    for index, name in enumerate(names):
        files += found[name]
        classes += [index] * len(found[name])
    return _checked_scan(folder, files, classes, None, names)


def _visible(folder: Path) -> list[Path]:
    return sorted(
        entry
        for entry in folder.iterdir()
        if not entry.name.startswith(".") and entry.name.lower() not in SYSTEM_FILES
    )


def _files_below(folder: Path, root: Path) -> list[str]:
    """Every file under ``folder``, at any depth, in name order (hidden ones left out), as
    paths relative to ``root``: strings, as Path objects cost 0.25 s per 5,000 files."""
    found = []
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        prefix = os.path.relpath(current, root) + os.sep
        found += [
            prefix + name
            for name in sorted(names)
            if not name.startswith(".") and name.lower() not in SYSTEM_FILES
        ]
    return found


def _class_files(class_folders: list[Path], root: Path) -> dict[str, list[str]]:
    found = {folder.name: _files_below(folder, root) for folder in class_folders}
    empty = [folder for folder in class_folders if not found[folder.name]]
    if empty:
        raise DataError(
            f"The class folder(s) {listed([str(p) for p in empty])} hold no files: a class "
            "needs images to learn from. Add images to them, or remove the empty folders."
        )
    return found


def _scan_split_folders(root: Path, split_folders: list[Path]) -> FolderScan:
    per_split = {}
    for folder in split_folders:
        classes = [entry for entry in _visible(folder) if entry.is_dir()]
        if not classes:
            raise DataError(
                f"{folder} has no class subfolders. Inside each of train/, val/ and test/, put "
                f"one subfolder per class ({folder}/cat/1.jpg, {folder}/dog/2.jpg, ...)."
            )
        per_split[folder.name] = _class_files(classes, root)
    names = sorted({name for found in per_split.values() for name in found})
    files, classes, splits = [], [], []
    for split in SPLITS:
        for name, paths in sorted(per_split.get(split, {}).items()):
            files += paths
            classes += [names.index(name)] * len(paths)
            splits += [split] * len(paths)
    return _checked_scan(root, files, classes, splits, names)


def _scan_labels_file(root: Path, labels: Path) -> FolderScan:
    try:
        with labels.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(
            f"data.labels={labels} could not be read ({err}). Give a UTF-8 CSV file with "
            "one 'file,label' row per image (file paths relative to data.root)."
        ) from err
    if rows and rows[0][:2] and rows[0][0].strip().lower() in ("file", "path", "filename", "image"):
        rows = rows[1:]
    bad = [index for index, row in enumerate(rows, 1) if len(row) not in (2, 3)]
    if not rows or bad:
        raise DataError(
            f"data.labels={labels} "
            + (f"has row(s) {listed([str(i) for i in bad])} without" if bad else "holds no")
            + " 'file,label' pairs. Give one row per image: its path relative to data.root, "
            "its label and optionally its split (train, val or test)."
        )
    paths = [row[0].strip() for row in rows]
    missing = [str(root / path) for path in paths if not (root / path).is_file()]
    if missing:
        raise DataError(
            f"data.labels={labels} names {len(missing)} file(s) that do not exist under "
            f"data.root={root}: {listed(missing, 5)}. Fix their paths (relative to data.root) "
            "or remove their rows."
        )
    names = sorted({row[1].strip() for row in rows})
    classes = [names.index(row[1].strip()) for row in rows]
    widths = {len(row) for row in rows}
    if widths == {2, 3}:
        raise DataError(
            f"data.labels={labels} gives a split (third column) for some rows but not for "
            "others. Give every row its split (train, val or test), or none."
        )
    splits = [row[2].strip() for row in rows] if widths == {3} else None
    unknown = sorted({split for split in splits or [] if split not in SPLITS})
    if unknown or (splits is not None and "train" not in splits):
        raise DataError(
            f"data.labels={labels} names the split(s) {listed(unknown or sorted(set(splits)))}:"
            " the third column takes train, val or test, and some rows must be train. Leave "
            "the column out to let litlab split the images."
        )
    return _checked_scan(root, paths, classes, splits, names)


def _checked_scan(
    root: Path,
    relative: list[str],
    classes: list[int],
    splits: list[str] | None,
    names: list[str],
) -> FolderScan:
    if len(names) < 2:
        raise DataError(
            f"data.root={root} holds a single class ({names[0]!r}): a classifier needs two at "
            "least. Add a folder (or labels) for every other class."
        )
    return FolderScan(
        root,
        tuple(relative),
        tuple(classes),
        tuple(splits) if splits else None,
        tuple(names),
    )


def file_signature(scan: FolderScan) -> str:
    """A digest of the files' paths, sizes, modification times and labels: a cache built from
    other files, or from these before one changed, has another."""
    digest = hashlib.sha256()
    for name, label, split in zip(
        scan.files, scan.labels, scan.splits or [""] * len(scan.files), strict=True
    ):
        stat = os.stat(os.path.join(scan.root, name))
        digest.update(f"{name}\0{label}\0{split}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update("\0".join(scan.class_names).encode())
    return digest.hexdigest()[:16]


# The files whose headers say whether a folder holds colour: an even sample, as opening every
# one costs 0.14 ms (10 s for 70,000 files) at each command's start.
COLOUR_SAMPLE = 2000


@functools.lru_cache(maxsize=8)
def _has_colour(root: Path, files: tuple[str, ...]) -> bool:
    from PIL import Image

    step = max(1, len(files) // COLOUR_SAMPLE)
    for name in files[::step]:
        if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            with Image.open(root / name) as image:  # reads the header only
                if image.mode in COLOUR_MODES or (image.mode == "P" and _colour_palette(image)):
                    return True
        except Exception:  # noqa: BLE001 - an unreadable file is named when it is decoded
            continue
    return False


def _colour_palette(image: Any) -> bool:
    palette = image.getpalette() or []
    return any(len({*palette[i : i + 3]}) > 1 for i in range(0, len(palette), 3))


def image_size(value: Any) -> tuple[int, int]:
    """``(height, width)`` of ``data.image_size`` (a side, or ``[height, width]``)."""
    sides = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    sides = sides * 2 if len(sides) == 1 else sides
    if len(sides) != 2 or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sides
    ):
        raise ConfigError(
            f"data.image_size={value!r} is not a size: give one side in pixels "
            "(data.image_size=32) or [height, width] (data.image_size=[48,64])."
        )
    return int(sides[0]), int(sides[1])


def image_folder_fact(fact: str, *, _parent_: Any) -> Any:
    """``${image_folder:FACT}`` in conf/data/image_folder.yaml: class_names, num_classes or
    input_shape of the folder the node's ``root`` (and ``labels``) name."""
    scan = scan_folder(_parent_.root, _parent_.labels)
    if fact == "class_names":
        return list(scan.class_names)
    if fact == "num_classes":
        return len(scan.class_names)
    if fact == "input_shape":
        channels = _parent_.channels
        if channels is None:
            channels = 3 if _has_colour(scan.root, scan.files) else 1
        if channels not in (1, 3):
            raise ConfigError(
                f"data.channels={channels!r} is not 1 (grey) or 3 (colour); leave it null to "
                "take it from the files."
            )
        return [channels, *image_size(_parent_.image_size)]
    raise KeyError(f"image_folder has no fact {fact!r}")


# -- a table -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableFacts:
    """A table's columns as the model reads them: ``numeric`` ones (standardised) and
    ``categorical`` ones with their categories (one-hot, in this order); the ``task`` its
    ``target`` poses and, for classes, their names (the target's values, sorted)."""

    target: str
    task: str
    class_names: tuple[str, ...] | None
    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs: each numeric column, then one per category (``colour=red``)."""
        onehot = [f"{column}={value}" for column, values in self.categorical for value in values]
        return [*self.numeric, *onehot]


def read_table_file(path: str | os.PathLike) -> Any:
    """The table at ``path`` (CSV or Parquet) as a pandas DataFrame, read once per version of
    the file in a process."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(
            f"data.path={path} is not a file{'' if file.exists() else ' (it does not exist)'}. "
            "Point data.path at a CSV or Parquet table with one row per sample and a column "
            "holding the target (data.target=COLUMN)."
        )
    stat = file.stat()
    return _read_table(file.resolve(), stat.st_size, stat.st_mtime_ns).copy()


@functools.lru_cache(maxsize=4)
def _read_table(file: Path, size: int, mtime: int) -> Any:
    import pandas as pd

    suffix = file.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"data.path={file} is a {suffix or 'suffix-less'} file; litlab reads tables from "
            ".csv and .parquet files. Save the table as one of them."
        )
    try:
        if suffix == ".csv":
            frame = pd.read_csv(file, skipinitialspace=True)
        else:
            frame = pd.read_parquet(file)
    except ImportError as err:
        raise DataError(
            f"Reading the Parquet file {file} needs pyarrow, which is not installed: "
            f'pip install -e ".[tables]" (or pip install pyarrow), or save the table as CSV. '
            f"({err})"
        ) from err
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(
            f"The table {file} could not be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no details'}). Check that it is a "
            "comma-separated UTF-8 CSV (or a Parquet file) with a header row."
        ) from err
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def table_facts(
    path: str,
    target: str,
    task: str | None = None,
    features: Sequence[str] | str | None = None,
    drop: Sequence[str] | str = (),
    categorical: Sequence[str] | str | None = None,
    max_categories: int = 50,
) -> TableFacts:
    """How litlab reads the table: which columns, encoded how, for which kind of problem."""
    frame = read_table_file(path)
    features, drop = column_list(features), column_list(drop) or []
    categorical = column_list(categorical) or []
    chosen = _chosen_columns(frame, path, target, features, drop, categorical)
    for column in [target, *chosen]:
        _refuse_stray_text(frame[column], column, path)
    as_classes = [c for c in chosen if _is_text(frame[c]) or c in categorical]
    encoded = tuple((c, _categories(frame[c], c, path, max_categories)) for c in as_classes)
    numeric = tuple(c for c in chosen if c not in as_classes)
    values = frame[target].dropna()
    kind = task or infer_task(values)
    return TableFacts(target, kind, _classes(values, kind, target, path), numeric, encoded)


def column_list(value: Sequence[str] | str | None) -> list[str] | None:
    """``data.features``, ``data.drop``, ``data.categorical``: a list of columns (one column
    given without brackets, ``data.drop=id``, is a list of one)."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(column) for column in value]


def _chosen_columns(
    frame: Any, path: str, target: str, features: list[str] | None, drop: list[str], categorical
) -> list[str]:
    """The input columns, after the checks that the table can be learned from at all."""
    columns = list(frame.columns)
    if target not in columns:
        raise DataError(
            f"data.target={target} is not a column of {path}; its columns: {listed(columns)}. "
            "Name the column that holds what the model should predict, e.g. "
            f"data.target={columns[-1]}."
        )
    if len(frame) < 5:
        raise DataError(
            f"The table {path} has {len(frame)} row(s): too few to split into training, "
            "validation and test rows. Give a table of at least a few dozen rows."
        )
    unknown = [c for c in [*(features or []), *drop, *categorical] if c not in columns]
    if unknown:
        raise DataError(
            f"data.features, data.drop or data.categorical name {listed(unknown)}, which "
            f"{path} does not have; its columns: {listed(columns)}."
        )
    empty = [c for c in [target, *columns] if frame[c].isna().all()]
    if target in empty:
        raise DataError(
            f"The target column {target} of {path} is empty in every row. Fill it in, or name "
            "another column with data.target=COLUMN."
        )
    chosen = [c for c in (features or columns) if c != target and c not in drop]
    empty_inputs = [c for c in chosen if c in empty]
    if empty_inputs:
        raise DataError(
            f"The column(s) {listed(empty_inputs)} of {path} are empty in every row: nothing to "
            f"learn from. Leave them out with data.drop=[{','.join(empty_inputs)}]."
        )
    if not chosen:
        raise DataError(
            f"No feature columns are left in {path} (target {target}, dropped "
            f"{listed(drop)}). Keep some columns as features."
        )
    return chosen


def _refuse_stray_text(series: Any, column: str, path: str) -> None:
    """A column of numbers with a few cells of text ("?", "n/a", "12,5") is a column of
    numbers with mistakes: read as text it would become categories (or classes)."""
    import pandas as pd

    if not _is_text(series):
        return
    given = series.dropna()
    numbers = pd.to_numeric(given, errors="coerce")
    stray = given[numbers.isna()]
    if 0 < len(stray) <= 0.1 * len(given):
        raise DataError(
            f"The column {column} of {path} holds numbers but also {stray.iloc[0]!r} in "
            f"{len(stray)} row(s) (of {len(given)}). Clear those cells (an empty cell is filled "
            f"from the training rows) or correct them; if its values are names, not numbers, "
            f"it needs more of them."
        )


def _categories(series: Any, column: str, path: str, most: int) -> tuple[str, ...]:
    """A category column's values (its one-hot inputs, in order), at most ``most``."""
    categories = sorted({class_label(v) for v in series.dropna()}, key=_natural)
    if len(categories) > most:
        raise DataError(
            f"The column {column} of {path} holds {len(categories):,} distinct values "
            f"(e.g. {listed([repr(v) for v in categories[:3]])}): one-hot encoded, that is "
            f"{len(categories):,} inputs, more than data.max_categories={most}. An identifier "
            f"or free text says little about the target: leave it out with "
            f"data.drop=[{column}], or raise data.max_categories."
        )
    return tuple(categories)


def _classes(values: Any, kind: str, target: str, path: str) -> tuple[str, ...] | None:
    """The class names of a target (its values, in natural order); None for regression."""
    if kind == "regression":
        if _is_text(values):
            raise DataError(
                f"data.task=regression, but the target {target} of {path} holds text (e.g. "
                f"{values.iloc[0]!r}). Regression needs numbers; leave data.task unset to "
                "classify by its values."
            )
        return None
    names = tuple(sorted({class_label(v) for v in values}, key=_natural))
    if len(names) < 2:
        raise DataError(
            f"The target column {target} of {path} holds one value only ({names[0]!r}): "
            "nothing to classify. Name another column with data.target, or give rows of every "
            "class."
        )
    if kind == "binary" and len(names) != 2:
        raise DataError(
            f"data.task=binary, but the target {target} of {path} holds {len(names)} values "
            f"({listed(list(names))}). Use data.task=multiclass."
        )
    return names


def infer_task(values: Any) -> str:
    """Text, true/false or a few whole numbers: classes (binary for two); else regression."""
    distinct = values.nunique()
    whole = not _is_text(values) and bool((values.astype(float) % 1 == 0).all())
    if _is_text(values) or (whole and distinct <= MAX_CLASS_VALUES):
        return "binary" if distinct == 2 else "multiclass"
    return "regression"


def _is_text(series: Any) -> bool:
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def class_label(value: Any) -> str:
    """A class's name: 3.0 is "3" (pandas reads whole numbers with gaps as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _natural(name: str) -> tuple:
    """Numbers by value ("2" before "10"), then text."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)


def _config_list(value: Any) -> Any:
    """A config value as plain data: a ListConfig as a list (a string stays a string)."""
    return list(value) if value is not None and not isinstance(value, str) else value


def table_fact(fact: str, *, _parent_: Any) -> Any:
    """``${table:FACT}`` in conf/data/table.yaml: task, class_names, num_classes or
    num_features of the table the node describes (``data.task`` given overrides the
    inference)."""
    task = _parent_.task if fact != "task" else None
    facts = table_facts(
        _parent_.path,
        _parent_.target,
        task=task,
        features=_config_list(_parent_.features),
        drop=_config_list(_parent_.drop) or (),
        categorical=_config_list(_parent_.categorical),
        max_categories=_parent_.max_categories,
    )
    if fact == "task":
        return facts.task
    if fact == "class_names":
        return list(facts.class_names) if facts.class_names else None
    if fact == "num_classes":
        return len(facts.class_names) if facts.class_names else None
    if fact == "num_features":
        return len(facts.feature_names)
    raise KeyError(f"table has no fact {fact!r}")
