"""Decoding files into the cache: every mode brought to one form; rows read from the map."""

import numpy as np
import pytest
import torch
from PIL import Image

from litlab.data.image_cache import ImageSettings, MappedRows, decode, decoded_folder


def save(tmp_path, name: str, image: Image.Image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


def test_a_wide_picture_is_cropped_padded_or_stretched_as_asked(tmp_path):
    pixels = np.zeros((10, 40), dtype=np.uint8)
    pixels[:, :10] = 255  # a white left quarter
    path = save(tmp_path, "wide.png", Image.fromarray(pixels))
    crop = decode(path, ImageSettings(1, 10, 10, "crop"))[0]
    pad = decode(path, ImageSettings(1, 10, 10, "pad"))[0]
    stretch = decode(path, ImageSettings(1, 10, 10, "stretch"))[0]
    assert crop.max() == 0  # the centre of a picture white only at its left edge
    assert pad[:3].max() == 0 and pad[-3:].max() == 0  # black bands above and below
    assert pad[4:6, 0].min() > 200  # the picture, 10x2.5, in the middle
    assert stretch[:, :2].min() > 200 and stretch[:, 4:].max() == 0  # the quarter stays a quarter


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)), 156),  # 16-bit: 40000 / 257
        (Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)), 128),  # float in [0, 1]
        (Image.new("RGBA", (4, 4), (255, 255, 255, 0)), 0),  # transparent: laid on black
        (Image.new("LA", (4, 4), (200, 255)), 200),
        (Image.new("P", (4, 4), 0), 0),
    ],
)
def test_every_mode_becomes_eight_bit_grey(tmp_path, image, expected):
    suffix = ".tif" if image.mode == "F" else ".png"
    path = save(tmp_path, f"picture{suffix}", image)
    assert decode(path, ImageSettings(1, 4, 4)).reshape(-1).tolist() == [expected] * 16


def test_an_exif_rotated_photo_is_turned_upright(tmp_path):
    upright = np.zeros((20, 10, 3), dtype=np.uint8)
    upright[:5] = 255  # white at the top of a tall picture
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    stored = Image.fromarray(upright).rotate(90, expand=True)  # stored lying on its side
    path = save(tmp_path, "photo.jpg", stored, exif=exif, quality=100)
    decoded = decode(path, ImageSettings(3, 20, 10, "stretch"))
    assert decoded[:, :4].mean() > 200 and decoded[:, 8:].mean() < 50


def test_the_cache_holds_each_files_pixels_and_sums_and_names_failures(tmp_path):
    files = [
        save(tmp_path, "a.png", Image.new("L", (8, 8), 255)),
        tmp_path / "broken.png",
        save(tmp_path, "b.png", Image.new("L", (8, 8), 0)),
    ]
    files[1].write_bytes(b"\x89PNG not really")
    cached = decoded_folder(
        [str(f) for f in files], ImageSettings(1, 4, 4), tmp_path / "cache", "key", workers=1
    )
    assert cached.pixels.shape == (3, 1, 4, 4) and isinstance(cached.pixels, np.memmap)
    assert cached.pixels[0].min() == 255 and cached.pixels[2].max() == 0
    assert cached.sums[0].tolist() == [[16.0, 16.0]] and cached.sums[2].tolist() == [[0.0, 0.0]]
    assert list(cached.failed) == [1] and "broken.png" in cached.failed[1]


def test_mapped_rows_read_the_rows_asked_for_in_any_order():
    array = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    rows = MappedRows(array, torch.tensor([7, 2, 5]))
    assert len(rows) == 3 and rows.shape == (3, 1, 1, 1)
    assert rows.index_select(0, torch.tensor([2, 0])).reshape(-1).tolist() == [5, 7]
    assert rows[1:].reshape(-1).tolist() == [2, 5]
    assert rows.float().dtype == torch.float32 and rows.numel() == 3
