"""data/inputs.py: a person's files found and read into the raw form of a data set."""

import pytest
import torch
from PIL import Image

from litlab.data import SklearnDataModule
from litlab.data.images import Preprocessing
from litlab.data.inputs import find_files, read_inputs, read_table
from litlab.errors import DataError
from tests.helpers import data_kwargs, mnist_module

WINE_FEATURES = ["alcohol", "malic_acid", "ash"]


def wine_module() -> SklearnDataModule:
    _, kwargs = data_kwargs("wine", seed=0)
    return SklearnDataModule(**kwargs)


def write(path, text):
    path.write_text(text)
    return path


def test_subfolders_are_listed_as_skipped_with_the_pattern_that_reads_them(tmp_path, caplog):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.png").write_bytes(b"")
    (tmp_path / "top.png").write_bytes(b"")
    usable, _ = find_files(str(tmp_path))
    assert [p.name for p in usable] == ["top.png"]
    assert f"inputs='{tmp_path}/**/*.png'" in caplog.text and "sub" in caplog.text
    usable, _ = find_files(f"{tmp_path}/**/*.png")
    assert [p.name for p in usable] == ["deep.png", "top.png"]


def test_a_folder_gives_its_images_and_tables_in_name_order_and_skips_the_rest(tmp_path):
    for name in ("b.png", "a.JPG", "c.csv", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    usable, skipped = find_files(str(tmp_path))
    assert [p.name for p in usable] == ["a.JPG", "b.png", "c.csv"]
    assert [p.name for p in skipped] == ["notes.txt"]
    usable, _ = find_files(str(tmp_path / "*.png"))
    assert [p.name for p in usable] == ["b.png"]


@pytest.mark.parametrize("contents", [[], ["notes.txt", "model.ckpt"]])
def test_a_folder_without_images_or_tables_is_refused(tmp_path, contents):
    for name in contents:
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match="none of them|holds no file") as error:
        find_files(str(tmp_path))
    assert str(tmp_path) in str(error.value)


def test_a_file_of_another_kind_is_refused(tmp_path):
    (tmp_path / "best.ckpt").write_bytes(b"")
    with pytest.raises(DataError, match=r"best.ckpt is not an image .* nor a CSV table"):
        find_files(str(tmp_path / "best.ckpt"))


def test_a_path_that_is_nothing_names_the_three_forms_it_may_take(tmp_path):
    with pytest.raises(DataError, match="neither a file, a folder nor a glob pattern"):
        find_files(str(tmp_path / "missing.png"))


def test_a_table_with_a_header_is_read_by_column_name(tmp_path):
    table = write(tmp_path / "t.csv", "id,ash,alcohol,malic_acid\n7,2.5,13.2,1.8\n8,2.1,12.0,3.1\n")
    values, lines = read_table(table, WINE_FEATURES)
    torch.testing.assert_close(values, torch.tensor([[13.2, 1.8, 2.5], [12.0, 3.1, 2.1]]))
    assert lines == [2, 3]


def test_excels_csv_with_a_byte_order_mark_is_read(tmp_path):
    table = tmp_path / "t.csv"
    table.write_bytes("alcohol,malic_acid,ash\n13.2,1.8,2.5\n".encode("utf-8-sig"))
    values, _ = read_table(table, WINE_FEATURES)
    assert values.tolist() == [[pytest.approx(13.2), pytest.approx(1.8), pytest.approx(2.5)]]


def test_a_table_without_a_header_takes_the_features_in_order(tmp_path):
    table = write(tmp_path / "t.csv", "13.2,1.8,2.5\n\n12,3.1,2.1\n")
    values, lines = read_table(table, WINE_FEATURES)
    assert values.shape == (2, 3) and lines == [1, 3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alcohol,ash\n1,2\n", r"lacks the column\(s\) malic_acid.*named alcohol, malic_acid, ash"),
        ("1,2\n", r"Line 1 .* has 2 values; expected 3 \(one per feature: alcohol"),
        ("alcohol,malic_acid,ash\n1,x,3\n", r"Line 2 .* holds 'x', which is not a finite number"),
        ("", "is empty"),
        ("alcohol,malic_acid,ash,ash\n1,2,3,4\n", r"has the column\(s\) ash more than once"),
        ("alcohol,malic_acid,ash\n1,nan,3\n", r"Line 2 .* holds 'nan', which is not a finite"),
        ("alcohol,malic_acid,ash\n", "has a header but no rows"),
    ],
)
def test_bad_tables_name_the_line_and_the_expected_columns(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_table(write(tmp_path / "t.csv", text), WINE_FEATURES)


@pytest.mark.parametrize(
    ("text", "separator"),
    [
        ("alcohol;malic_acid;ash\n13,2;1,8;2,5\n", "';'"),  # a spreadsheet in a German locale
        ("13,2;1,8;2,5\n12;3,1;2,1\n", "';'"),
        ("alcohol\tmalic_acid\tash\n13.2\t1.8\t2.5\n", "tabs"),
    ],
)
def test_a_table_separated_by_other_than_commas_names_its_separator(tmp_path, text, separator):
    table = write(tmp_path / "t.csv", text)
    with pytest.raises(DataError) as error:
        read_table(table, WINE_FEATURES)
    message = str(error.value)
    assert f"{table} looks separated by {separator}" in message
    assert "litlab reads comma-separated files. Re-save it with commas" in message


def test_a_latin_1_table_names_the_encoding_and_the_fix(tmp_path):
    table = tmp_path / "t.csv"
    table.write_bytes("alcohol,malic_acid,ash,région\n13.2,1.8,2.5,Rhône\n".encode("latin-1"))
    with pytest.raises(DataError) as error:
        read_table(table, WINE_FEATURES)
    message = str(error.value)
    assert f"{table} is not UTF-8: line 1 holds the byte 0xe9, 'é' in Latin-1/cp1252" in message
    assert "re-save the file as UTF-8" in message and "iconv -f cp1252 -t utf-8" in message


def test_every_missing_column_is_named_and_a_long_list_says_how_many_more(tmp_path):
    features = [f"feature_{index}" for index in range(60)]
    table = write(tmp_path / "t.csv", "feature_0,notes\n1,2\n")
    with pytest.raises(DataError) as error:
        read_table(table, features[:30])
    assert "lacks the column(s) feature_1, feature_2, " in str(error.value)
    assert all(f"{name}," in str(error.value) for name in features[1:29])
    assert "feature_29. The model takes 30 features" in str(error.value)
    with pytest.raises(DataError, match=r"feature_40 and 19 more\. The model takes 60 features"):
        read_table(table, features)


def test_tables_are_read_in_the_raw_units_of_the_data_set(tmp_path):
    datamodule = wine_module()
    datamodule.setup()
    raw = datamodule.raw_inputs("test")[:3]
    header = ",".join(datamodule.feature_names)
    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in raw)
    inputs = read_inputs(str(write(tmp_path / "w.csv", f"{header}\n{rows}\n")), datamodule, None)
    torch.testing.assert_close(inputs.raw, raw)
    assert inputs.names == [f"{tmp_path / 'w.csv'}:{line}" for line in (2, 3, 4)]
    # and normalised exactly as the stored split was
    normalised = datamodule.normalise(inputs.raw)
    torch.testing.assert_close(normalised, datamodule.splits["test"][0][:3], atol=1e-5, rtol=0)


def test_an_image_for_a_tabular_model_names_the_features_it_takes(tmp_path):
    Image.new("L", (10, 10)).save(tmp_path / "x.png")
    with pytest.raises(DataError, match=r"x.png is an image, .* wine, which has 13 numeric"):
        read_inputs(str(tmp_path / "x.png"), wine_module(), Preprocessing())


def test_a_table_for_an_image_model_must_hold_a_row_of_pixels(tmp_path, tiny_mnist):
    table = write(tmp_path / "t.csv", "1,2,3\n")
    with pytest.raises(DataError, match=r"takes 28x28 images: give image files .* 784 pixel"):
        read_inputs(str(table), mnist_module(tiny_mnist), Preprocessing())
    pixels = write(tmp_path / "p.csv", ",".join(["0"] * 783 + ["255"]) + "\n")
    inputs = read_inputs(str(pixels), mnist_module(tiny_mnist), Preprocessing())
    assert inputs.raw.shape == (1, 1, 28, 28) and inputs.raw[0, 0, 27, 27] == 255


def test_pictures_without_ink_are_marked_blank(tmp_path, tiny_mnist):
    Image.new("L", (40, 40), 255).save(tmp_path / "a_blank.png")
    Image.new("L", (1, 1), 0).save(tmp_path / "b_dot.png")
    digit = Image.new("L", (40, 40), 255)
    digit.paste(0, (15, 5, 25, 35))  # a black bar: a "1"
    digit.save(tmp_path / "c_one.png")
    inputs = read_inputs(str(tmp_path), mnist_module(tiny_mnist), Preprocessing())
    assert inputs.blank == [True, True, False]
    assert ["no ink found" in steps for steps in inputs.steps] == [True, True, False]


def test_a_table_among_pictures_is_skipped_for_an_image_model(tmp_path, tiny_mnist):
    Image.new("L", (10, 10)).save(tmp_path / "x.png")
    write(tmp_path / "labels.csv", "1\n")
    inputs = read_inputs(str(tmp_path), mnist_module(tiny_mnist), Preprocessing())
    assert inputs.names == [str(tmp_path / "x.png")]
    assert inputs.skipped == [tmp_path / "labels.csv"]
