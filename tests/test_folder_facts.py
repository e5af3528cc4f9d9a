"""What a user's folder of images states about itself, before anything is built."""

from pathlib import Path

import pytest
from PIL import Image

from litlab.config.folder_facts import scan_folder
from litlab.errors import DataError


def picture(path: Path, mode: str = "L", size=(8, 8), value=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode in ("L", "I;16") else (value, 0, 0, 255)[: len(mode)]
    Image.new(mode, size, colour).save(path)
    return path


def test_class_folders_give_the_classes_and_each_files_label(tmp_path):
    for name in ("cat/a.png", "cat/b.jpg", "dog/c.png", "dog/deeper/d.png", ".hidden/e.png"):
        picture(tmp_path / name)
    (tmp_path / "cat" / "Thumbs.db").write_text("x")
    scan = scan_folder(tmp_path)
    assert scan.class_names == ("cat", "dog")
    assert scan.files == ("cat/a.png", "cat/b.jpg", "dog/c.png", "dog/deeper/d.png")
    assert scan.labels == (0, 0, 1, 1)
    assert scan.splits is None


def test_train_val_test_subfolders_fix_the_splits(tmp_path):
    for name in ("train/a/1.png", "train/b/2.png", "test/a/3.png", "test/b/4.png", "val/b/5.png"):
        picture(tmp_path / name)
    scan = scan_folder(tmp_path)
    assert scan.class_names == ("a", "b")
    assert list(zip(scan.files, scan.splits, strict=True)) == [
        ("train/a/1.png", "train"),
        ("train/b/2.png", "train"),
        ("val/b/5.png", "val"),
        ("test/a/3.png", "test"),
        ("test/b/4.png", "test"),
    ]


def test_a_labels_file_names_files_and_classes(tmp_path):
    picture(tmp_path / "x.png"), picture(tmp_path / "y.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nx.png,spam\ny.png,ham\n")
    scan = scan_folder(tmp_path, labels)
    assert scan.class_names == ("ham", "spam") and scan.labels == (1, 0)


@pytest.mark.parametrize(
    ("layout", "words"),
    [
        ([], "is empty"),
        (["a.png"], "no class subfolders"),
        (["cat/a.png", "dog/"], "hold no files"),
        (["cat/a.png"], "a single class ('cat')"),
        (["val/a/1.png", "val/b/1.png"], "no train/ subfolder"),
    ],
)
def test_a_folder_litlab_cannot_read_is_one_paragraph(tmp_path, layout, words):
    for name in layout:
        if name.endswith("/"):
            (tmp_path / name).mkdir(parents=True)
        else:
            picture(tmp_path / name)
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        scan_folder(tmp_path)


def test_a_missing_root_and_missing_labelled_files_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_folder(tmp_path / "nowhere")
    (tmp_path / "labels.csv").write_text("x.png,a\ngone.png,b\n")
    picture(tmp_path / "x.png")
    with pytest.raises(DataError, match=r"names 1 file\(s\) that do not exist.*gone.png"):
        scan_folder(tmp_path, tmp_path / "labels.csv")
