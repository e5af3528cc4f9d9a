"""data/images.py: a person's picture brought to the form of a data set's images."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from litlab.data.images import ImageForm, Preprocessing, read_image, to_form
from litlab.errors import ConfigError, DataError

MNIST = ImageForm(height=28, width=28, box=20, centre="mass")
DIGITS = ImageForm(height=8, width=8, box=8, centre="box", max_value=16.0)


def drawing(size=(300, 200), box=(40, 30, 100, 150), ink="black", paper="white", mode="L"):
    """Paper with a filled rectangle of ink: 60 wide, 120 tall, left of centre."""
    image = Image.new(mode, size, paper)
    ImageDraw.Draw(image).rectangle(box, fill=ink)
    return image


def ink_box(canvas: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(canvas.max(axis=1) > 0.5 * canvas.max())
    columns = np.flatnonzero(canvas.max(axis=0) > 0.5 * canvas.max())
    return rows[0], rows[-1] + 1, columns[0], columns[-1] + 1


def test_dark_ink_on_paper_becomes_mnist_white_ink_fit_to_20_and_centred_by_mass():
    pixels, steps, _ = to_form(drawing(), MNIST, Preprocessing())
    assert pixels.shape == (1, 28, 28) and pixels.dtype == np.float32
    canvas = pixels[0]
    assert canvas.max() == pytest.approx(255, abs=1) and canvas[0, 0] == 0  # white ink on black
    top, bottom, left, right = ink_box(canvas)
    assert bottom - top == 20  # the longer side fills the 20-pixel box
    assert right - left == pytest.approx(10, abs=1)  # aspect ratio 1:2 kept
    rows, columns = np.indices(canvas.shape)
    assert (rows * canvas).sum() / canvas.sum() == pytest.approx(14, abs=0.5)  # as in MNIST
    assert (columns * canvas).sum() / canvas.sum() == pytest.approx(14, abs=0.5)
    assert "inverted (light background)" in steps and "cropped to the ink (61x121)" in steps
    assert "scaled to 10x20" in steps and "centred by mass in 28x28" in steps


def test_centre_of_mass_differs_from_the_box_centre_for_a_lopsided_digit():
    image = drawing(box=(40, 30, 100, 150))
    ImageDraw.Draw(image).rectangle((40, 30, 160, 60), fill="black")  # a heavy top bar: a "7"
    by_mass = to_form(image, MNIST, Preprocessing())[0][0]
    by_box = to_form(image, MNIST, Preprocessing(centre=False))[0][0]
    assert ink_box(by_box)[0] == 4  # (28 - 20) / 2
    assert ink_box(by_mass)[0] > ink_box(by_box)[0]  # the heavy top pulled down to the middle


def test_white_ink_on_black_is_left_as_it_is_and_each_step_can_be_switched_off():
    image = drawing(size=(28, 28), box=(6, 4, 15, 23), ink="white", paper="black")
    pixels, steps, _ = to_form(image, MNIST, Preprocessing(crop=False, fit=False, centre=False))
    original = np.asarray(image, dtype=np.float32)
    np.testing.assert_allclose(pixels[0], original, atol=1e-3)
    assert "inverted" not in steps and "cropped" not in steps
    on_paper = drawing(size=(28, 28), box=(6, 4, 15, 23))  # the same in black on white
    forced, steps, _ = to_form(on_paper, MNIST, Preprocessing(invert=True, crop=False, fit=False))
    assert steps == "inverted"  # forced, not for a light background
    np.testing.assert_allclose(forced[0], original, atol=1e-3)
    _, steps, blank = to_form(image, MNIST, Preprocessing(invert=True))  # black ink on white
    assert blank and "see preprocess.invert" in steps


def test_grey_paper_and_pencil_are_stretched_to_black_and_white():
    pixels, steps, _ = to_form(drawing(ink=90, paper=200), MNIST, Preprocessing())
    assert pixels.max() == pytest.approx(255, abs=1) and pixels[0, 0, 0] == 0
    assert "levels stretched" in steps


def test_a_transparent_background_counts_as_paper_and_colour_becomes_grey():
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # transparent black
    ImageDraw.Draw(image).ellipse((20, 10, 80, 90), outline=(0, 0, 200, 255), width=8)
    pixels, steps, _ = to_form(image, MNIST, Preprocessing())
    assert "transparent background made white" in steps and "grayscale (from RGBA)" in steps
    assert "inverted (light background)" in steps
    assert pixels[0, 14, 14] == 0 and pixels.max() > 200  # a ring: the hole stays black


def test_scikit_learns_digits_take_8x8_images_with_values_up_to_16():
    pixels, steps, _ = to_form(drawing(), DIGITS, Preprocessing())
    assert pixels.shape == (1, 8, 8) and pixels.max() == pytest.approx(16, abs=0.1)
    assert "centred in 8x8" in steps


BLANK_PICTURES = {
    "white page": Image.new("L", (50, 50), 255),
    "grey page": Image.new("L", (50, 50), 120),
    "1x1 black": Image.new("L", (1, 1), 0),
    "1x1 white": Image.new("L", (1, 1), 255),
    "RGB page": Image.new("RGB", (40, 30), (200, 180, 90)),
    "16-bit zeros": Image.fromarray(np.zeros((30, 20), dtype=np.uint16)),
    "16-bit uniform": Image.fromarray(np.full((30, 20), 30000, dtype=np.uint16)),
}


@pytest.mark.parametrize("name", BLANK_PICTURES)
@pytest.mark.parametrize("steps", [Preprocessing(), Preprocessing(level=False, crop=False)])
def test_a_picture_without_ink_is_blank_whatever_its_mode_and_steps(name, steps):
    pixels, done, blank = to_form(BLANK_PICTURES[name], MNIST, steps)
    assert blank and "no ink found" in done
    assert pixels.shape == (1, 28, 28) and pixels.max() == 0  # nothing drawn for the model


def test_a_picture_with_ink_is_not_blank():
    assert not to_form(drawing(), MNIST, Preprocessing()).blank
    assert not to_form(drawing(ink=90, paper=200), MNIST, Preprocessing(level=False)).blank


def test_colour_data_sets_keep_colour():
    form = ImageForm(height=32, width=32, channels=3)
    image = Image.new("RGB", (64, 48), (255, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 31, 23), fill=(0, 0, 255))
    pixels, steps, blank = to_form(image, form, Preprocessing())
    assert pixels.shape == (3, 32, 32)
    assert pixels[0, 20:].min() > 250 and pixels[1].max() < 5  # red stays red
    assert steps == "resized to 32x32" and not blank
    one_colour = to_form(Image.new("RGB", (64, 48), (255, 0, 0)), form, Preprocessing())
    assert one_colour.blank and "one colour only" in one_colour.steps


def test_sixteen_bit_scans_keep_their_grey_levels():
    ink = np.full((60, 40), 60000, dtype=np.uint16)
    ink[10:50, 15:25] = 1000  # dark ink on a light 16-bit page
    image = Image.fromarray(ink)
    assert image.mode.startswith("I;16")
    pixels, steps, _ = to_form(image, MNIST, Preprocessing())
    assert "full scale 65535" in steps and "inverted (light background)" in steps
    assert pixels.max() == pytest.approx(255, abs=1)  # not a blank page


def test_unknown_preprocessing_steps_are_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"preprocess.blur is not a preprocessing step; .*"):
        Preprocessing.from_config({"blur": True})
    with pytest.raises(ConfigError, match=r"preprocess=None is not .* preprocess.invert, "):
        Preprocessing.from_config(None)
    assert Preprocessing.from_config({"crop": False}) == Preprocessing(crop=False)


def test_an_image_too_large_to_read_safely_is_refused(tmp_path):
    """A PNG whose header claims 20000x10000 pixels: Pillow's decompression-bomb guard."""
    Image.new("L", (8, 8)).save(tmp_path / "small.png")
    data = bytearray((tmp_path / "small.png").read_bytes())
    header = struct.pack(">II", 20000, 10000) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # the IHDR chunk's CRC
    (tmp_path / "huge.png").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"huge.png is too large to read safely"):
        read_image(tmp_path / "huge.png")


def test_an_unreadable_image_is_a_data_error_naming_the_file(tmp_path):
    broken = tmp_path / "digit.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"digit.png could not be read .*replace it or remove it"):
        read_image(broken)
