"""A person's image files, brought to the form of a data set's images, the way that data set was
made: for MNIST, white ink on black, the ink scaled to fit a 20x20 box keeping its aspect
ratio and centred by its centre of mass in 28x28. Pillow reads and resamples; the steps around
it (background, ink box, centre of mass) are written here because no library does them.
"""

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from litlab.errors import ConfigError, DataError

# Of the ink's range (background 0, darkest stroke 1): weaker pixels are left out of the ink's
# box, so JPEG ringing and paper grain do not widen it.
INK_THRESHOLD = 0.3
# Of full scale: a picture whose brightest pixel (after inverting) stands less than this above
# its background holds no ink (a blank or grey page, a 1x1 image, an all-zero scan), and a
# colour picture whose pixels all lie this close together is one colour: nothing to predict.
MIN_CONTRAST = 0.1
NO_INK = "no ink found (nothing brighter than the background; see preprocess.invert)"
ONE_COLOUR = "one colour only (nothing to predict)"


@dataclass(frozen=True)
class ImageForm:
    """How a data set's images look: ``channels`` x ``height`` x ``width``, light ink on a dark
    background; the ink scaled so that its longer side is ``box`` pixels (None: the picture
    is resized as a whole) and centred by its centre of ``mass`` or its bounding ``box``; full
    ink has the value ``max_value`` in the stored data (MNIST 255, scikit-learn's digits 16)."""

    height: int
    width: int
    channels: int = 1
    box: int | None = None
    centre: str = "box"
    max_value: float = 255.0


@dataclass(frozen=True)
class Preprocessing:
    """Which steps to take (``preprocess.*`` of conf/predict.yaml): ``invert`` auto (when the
    background is light), true or false; ``level`` the background to 0 and the strongest ink
    to full intensity; ``crop`` to the ink; ``fit`` the ink into the data
    set's box keeping its aspect ratio (false: resize the picture to the data set's size);
    ``centre`` by the data set's rule (false: by the ink's bounding box)."""

    invert: str | bool = "auto"
    level: bool = True
    crop: bool = True
    fit: bool = True
    centre: bool = True

    @classmethod
    def from_config(cls, steps: Any) -> "Preprocessing":
        """From the ``preprocess`` mapping; unknown steps are a ConfigError naming the known."""
        known = [step.name for step in fields(cls)]
        unknown = (
            [key for key in steps or {} if key not in known] if isinstance(steps, dict) else []
        )
        if not isinstance(steps, dict) or unknown:
            given = f"preprocess.{unknown[0]}" if unknown else f"preprocess={steps!r}"
            raise ConfigError(
                f"{given} is not a preprocessing step; the steps are preprocess."
                f"{', preprocess.'.join(known)} (e.g. preprocess.invert=false)."
            )
        return cls(**steps)


def read_image(path: Path) -> Image.Image:
    """An image file (its first frame: GIF, TIFF), upright as its EXIF orientation says."""
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as err:
        raise DataError(
            f"The image {path} is too large to read safely ({err}). Scale it down (a digit "
            "needs a few hundred pixels a side) or remove it from the inputs."
        ) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(
            f"The image {path} could not be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no details'}). It is damaged or not "
            f"an image; replace it or remove it from the inputs."
        ) from err


class Formed(NamedTuple):
    """An image in a data set's form: ``pixels`` ``(channels, height, width)`` float32 in the
    data set's units, the ``steps`` done, and whether it is ``blank`` (no ink: nothing for the
    model to read)."""

    pixels: np.ndarray
    steps: str
    blank: bool


def to_form(image: Image.Image, form: ImageForm, steps: Preprocessing) -> Formed:
    """The image in the data set's form; a blank one becomes an empty canvas."""
    done: list[str] = []
    if form.channels == 3:
        pixels = _colour(image, form, steps, done)
        blank = bool(np.ptp(pixels, axis=(1, 2)).max() < MIN_CONTRAST * form.max_value)
        done += [ONE_COLOUR] if blank else []
        return Formed(pixels, "; ".join(done), blank)
    pixels = _grey(image, done)
    invert = _is_light(pixels) if steps.invert == "auto" else steps.invert
    if invert:
        pixels = 1.0 - pixels
        done.append("inverted" + (" (light background)" if steps.invert == "auto" else ""))
    if float(pixels.max()) - _background(pixels) < MIN_CONTRAST:
        done.append(NO_INK)
        empty = np.zeros((1, form.height, form.width), dtype=np.float32)
        return Formed(empty, "; ".join(done), True)
    if steps.level:
        pixels = _level(pixels, done)
    if steps.crop:
        pixels = _crop_to_ink(pixels, done)
    if steps.fit and form.box is not None:
        patch = _scaled(pixels, form.box, done)
        canvas = _place(patch, form, steps.centre, done)
    else:
        canvas = _resized(pixels, form.height, form.width)
        if pixels.shape != canvas.shape:
            done.append(f"resized to {form.width}x{form.height}")
    return Formed((canvas * form.max_value)[None].astype(np.float32), "; ".join(done), False)


def _grey(image: Image.Image, done: list[str]) -> np.ndarray:
    """Grey levels in [0, 1]; a transparent background counts as white paper."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):  # 16-bit and float scans
        values = np.asarray(image, dtype=np.float32)
        full = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        full = 1.0 if image.mode == "F" and values.max() <= 1 else full
        done.append(f"grey levels of {image.mode} (full scale {full:g})")
        return np.clip(values / full, 0.0, 1.0)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
        done.append("transparent background made white")
    if image.mode != "L":
        done.append(f"grayscale (from {image.mode})")
        image = image.convert("L")
    return np.asarray(image, dtype=np.float32) / 255.0


def _background(pixels: np.ndarray) -> float:
    """The median of the outermost rows and columns: the paper (or the screen) around the ink."""
    return float(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])))


def _is_light(pixels: np.ndarray) -> bool:
    """A light background (dark ink on paper)."""
    return _background(pixels) > 0.5


def _level(pixels: np.ndarray, done: list[str]) -> np.ndarray:
    """Background to 0 and the strongest ink to 1: grey paper and pencil become MNIST's black
    and white (its strokes reach full intensity)."""
    background, peak = _background(pixels), float(pixels.max())  # MIN_CONTRAST apart (to_form)
    if background > 0.02 or peak < 0.98:
        done.append(f"levels stretched ({background:.2f}..{peak:.2f} to 0..1)")
    return np.clip((pixels - background) / (peak - background), 0.0, 1.0)


def _crop_to_ink(pixels: np.ndarray, done: list[str]) -> np.ndarray:
    rows = np.flatnonzero((pixels > INK_THRESHOLD).any(axis=1))
    columns = np.flatnonzero((pixels > INK_THRESHOLD).any(axis=0))
    if len(rows) == 0:
        return pixels
    cropped = pixels[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    if cropped.shape != pixels.shape:
        done.append(f"cropped to the ink ({cropped.shape[1]}x{cropped.shape[0]})")
    return cropped


def _scaled(pixels: np.ndarray, box: int, done: list[str]) -> np.ndarray:
    height, width = pixels.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    done.append(f"scaled to {size[0]}x{size[1]}")
    return _resized(pixels, size[1], size[0])


def _resized(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Anti-aliased resampling (Pillow's Lanczos filter), as MNIST's grey levels came from."""
    if pixels.shape == (height, width):
        return pixels
    image = Image.fromarray(pixels.astype(np.float32), mode="F")
    resized = np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))
    return np.clip(resized, 0.0, 1.0)


def _place(patch: np.ndarray, form: ImageForm, by_rule: bool, done: list[str]) -> np.ndarray:
    """The patch on a black canvas of the form's size, centred by the form's rule (``by_rule``)
    or by its bounding box; never pushed past the canvas's edge."""
    height, width = patch.shape
    top, left = (form.height - height) / 2, (form.width - width) / 2
    if by_rule and form.centre == "mass" and patch.sum() > 0:
        # MNIST's centres of mass sit at pixel index (14, 14) of 28x28 (the test set's mean is
        # 13.98, 14.02): measured, as the papers do not say which convention they used
        rows, columns = np.indices(patch.shape)
        mass_row = float((rows * patch).sum() / patch.sum())
        mass_column = float((columns * patch).sum() / patch.sum())
        top, left = form.height / 2 - mass_row, form.width / 2 - mass_column
        done.append(f"centred by mass in {form.width}x{form.height}")
    else:
        done.append(f"centred in {form.width}x{form.height}")
    top = int(min(max(round(top), 0), form.height - height))
    left = int(min(max(round(left), 0), form.width - width))
    canvas = np.zeros((form.height, form.width), dtype=np.float32)
    canvas[top : top + height, left : left + width] = patch
    return canvas


def _colour(
    image: Image.Image,
    form: ImageForm,
    steps: Preprocessing,
    done: list[str],
) -> np.ndarray:
    """A colour data set's form: RGB, resized as a whole (photos have no ink to crop)."""
    if image.mode != "RGB":
        done.append(f"RGB (from {image.mode})")
        image = image.convert("RGB")
    if image.size != (form.width, form.height):
        image = image.resize((form.width, form.height), Image.Resampling.LANCZOS)
        done.append(f"resized to {form.width}x{form.height}")
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if steps.invert is True:
        pixels = 1.0 - pixels
        done.append("inverted")
    return (pixels * form.max_value).transpose(2, 0, 1).astype(np.float32)
