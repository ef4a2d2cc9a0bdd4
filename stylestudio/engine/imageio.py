"""Image files in and out (Pillow): export with the edit recipe in the metadata.

Reading treats every file as hostile until checked: :func:`check_input_file` looks at ``stat``
before anything is opened (a FIFO would block ``open`` forever, a folder or device is no image),
:func:`open_image` checks the declared size against a pixel limit before decoding and turns every
decoder failure into one :class:`InputError` line naming the file, and :func:`to_rgb8` scales
16-bit and float images to 8 bits instead of clipping them. Writing goes through
:func:`stylestudio.safe_io.atomic_write`, so a failed export never damages the previous file.

Every written picture carries an sRGB ICC profile (its pixels are sRGB: colour-managed viewers
and print shops then show them as meant), and can carry the EXIF of a source photo
(:func:`photo_exif`: camera, date, … kept; the orientation set to 1, since the pixels are
already upright).
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import struct
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

from ..errors import InputError
from ..safe_io import atomic_write, os_error_message, regular_file_status
from .limits import MAX_IMAGE_PIXELS, MAX_SIZE, MIN_SIZE, PHOTO_SUFFIXES

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
RECIPE_KEY = "stylestudio:recipe"
ORIENTATION = 0x0112  #: EXIF tag: how the stored pixels must be turned to stand upright (1: as stored)
DESCRIPTION = 0x010E  #: EXIF ImageDescription: the recipe in JPEG and TIFF files
#: EXIF tags dropped from a source photo's block: they describe the photo's pixels, not the export's
_PIXEL_TAGS = (0xA002, 0xA003, 0x0100, 0x0101, 0x0201, 0x0202)  # pixel/thumbnail sizes and offsets
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

__all__ = ["FORMATS", "PHOTO_SUFFIXES", "RECIPE_KEY", "check_input_file", "open_image", "to_rgb8", "to_grey8",
           "load_rgb", "decode_rgb", "image_size", "save_image", "resize", "image_format", "read_recipe"]


def image_format(path: Path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unsupported image type (use {', '.join(sorted(FORMATS))})")
    return fmt


def check_size(size: int | None, what: str = "--size") -> int | None:
    """``size`` when it is a usable output size (or None), else one line saying the range."""
    if size is None:
        return None
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise InputError(f"{what} must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
    return int(size)


def resize(array: np.ndarray, size: int | None) -> np.ndarray:
    check_size(size)
    if size is None or size == array.shape[0]:
        return array
    return np.asarray(Image.fromarray(array).resize((size, size), Image.LANCZOS))


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """The bytes of an sRGB ICC profile (Little CMS's built-in one), embedded in every export.

    Little CMS stamps the profile's header with the time it was made; a fixed date instead makes
    the same picture the same file in every process (batch outputs are compared byte for byte).
    """
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[24:36] = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)  # header dateTimeNumber; the profile ID is unset
    return bytes(data)


def photo_exif(data: bytes | np.ndarray | None) -> Image.Exif | None:
    """The EXIF block of a photo file's bytes, fit to go with an upright export of it, or None.

    The orientation is set to 1 (the exported pixels are already upright: a viewer must not turn
    them again) and tags about the stored pixels' size or the embedded thumbnail are dropped.
    A missing or damaged block gives None: metadata never costs the export.
    """
    if data is None:
        return None
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    if not raw:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as img:
                exif = img.getexif()
                if not len(exif):
                    return None
                for sub in (0x8769, 0x8825):  # the Exif and GPS sub-blocks: read them while the file is open
                    if sub in exif:
                        exif.get_ifd(sub)
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not stop an export
        return None
    for tag in _PIXEL_TAGS:
        exif.pop(tag, None)
    with contextlib.suppress(Exception):
        for tag in _PIXEL_TAGS:
            exif.get_ifd(0x8769).pop(tag, None)
    exif[ORIENTATION] = 1
    return exif


def save_image(path: Path, array: np.ndarray, recipe: dict[str, Any] | None = None, quality: int = 95,
               exif: Image.Exif | None = None, icc: bool = True) -> None:
    """Write HxWx3 uint8 ``array`` atomically, with an sRGB ICC profile (``icc``).

    ``recipe`` goes into PNG text / the JPEG+TIFF EXIF description; ``exif`` (e.g. from
    :func:`photo_exif`) is written with it (its description replaced by the recipe).
    """
    path = Path(path)
    fmt = image_format(path)
    img = Image.fromarray(np.ascontiguousarray(array))
    text = json.dumps(recipe) if recipe is not None else None
    kwargs: dict[str, Any] = {}
    block = Image.Exif()
    if exif is not None:
        block.update(exif)
        block.pop(DESCRIPTION, None)
        with contextlib.suppress(Exception):
            for sub in (0x8769, 0x8825):
                if sub in exif:
                    block[sub] = exif.get_ifd(sub)
    if fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        info.add_text(RECIPE_KEY, text)
        kwargs["pnginfo"] = info
    elif text:
        block[DESCRIPTION] = text
    if len(block):
        kwargs["exif"] = block.tobytes()
    if icc:
        kwargs["icc_profile"] = srgb_profile()
    if fmt == "JPEG":
        kwargs["quality"] = int(quality)
    atomic_write(path, lambda f: img.save(f, format=fmt, **kwargs))


def read_recipe(path: Path) -> dict[str, Any] | None:
    with Image.open(path) as img:
        text = img.info.get(RECIPE_KEY) if img.format == "PNG" else img.getexif().get(0x010E)
    return json.loads(text) if text else None


# ---- reading -----------------------------------------------------------------------------------


def check_input_file(path: Path, what: str = "image") -> os.stat_result:
    """Refuse, without opening it, a path that is missing, not a regular file, empty or unreadable.

    ``open`` on a FIFO blocks until a writer comes, and a device or folder is never an image, so
    this looks at ``stat`` first.
    """
    path = Path(path)
    st = regular_file_status(path, f"{_article(what)} file")
    if st.st_size == 0:
        raise InputError(f"{path}: the file is empty")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")
    return st


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _too_large(label: str, w: int, h: int, max_pixels: int, what: str) -> InputError:
    return InputError(f"{label}: the {what} is {w}×{h} = {w * h / 1e6:.0f} megapixels; StyleStudio reads "
                      f"{what}s up to {max_pixels / 1e6:.0f} megapixels — scale it down first")


@contextlib.contextmanager
def open_image(source: Path | bytes, label: str | None = None, max_pixels: int = MAX_IMAGE_PIXELS,
               what: str = "image") -> Iterator[Image.Image]:
    """An opened Pillow image whose declared size is within ``max_pixels``.

    Decoding inside the ``with`` block is covered too: Pillow's warnings (decompression bomb,
    corrupt EXIF) are silenced — the size is checked here — and any decoder failure becomes one
    :class:`InputError` line naming ``label``.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = label or "the image"
        if len(source) == 0:
            raise InputError(f"{label}: the file is empty")
        opener: Any = io.BytesIO(bytes(source))
    else:
        label = label or str(source)
        check_input_file(Path(source), what)
        opener = Path(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(opener) as img:
                w, h = img.size
                if w < 1 or h < 1:
                    raise InputError(f"{label}: the {what} has no pixels ({w}×{h})")
                if w * h > max_pixels:
                    raise _too_large(label, w, h, max_pixels, what)
                yield img
        except InputError:
            raise
        except Image.DecompressionBombError:
            raise InputError(f"{label}: the {what} is larger than {max_pixels / 1e6:.0f} megapixels; "
                             f"scale it down first") from None
        except FileNotFoundError:
            raise InputError(f"{label}: no such file") from None
        except PermissionError as exc:
            raise InputError(os_error_message(Path(label), exc)) from None
        except MemoryError:
            raise InputError(f"{label}: the {what} is too large to decode in the memory available") from None
        except Image.UnidentifiedImageError:
            raise InputError(f"{label}: not a readable {what} (not a format StyleStudio can read)") from None
        except Exception as exc:  # noqa: BLE001 - a decoder fed a damaged file raises anything
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise InputError(f"{label}: not a readable {what} ({reason})") from None


def image_size(source: Path | bytes, label: str | None = None, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """(width, height) from the header only; refuses files over ``max_pixels``."""
    with open_image(source, label, max_pixels) as img:
        return img.size


def _upright(img: Image.Image) -> Image.Image:
    """EXIF orientation applied; a damaged EXIF block leaves the image as stored."""
    try:
        out = ImageOps.exif_transpose(img)
        return img if out is None else out
    except Exception:  # noqa: BLE001 - corrupt EXIF must not cost the picture
        return img


def _scaled_grey(img: Image.Image) -> Image.Image | None:
    """A high-bit-depth image (16/32-bit integer, float) scaled to 8-bit ``L``; None for others.

    ``convert("L")`` would clip 16-bit values at 255, turning most of the picture white. 16-bit
    images (and 32-bit integer ones within 0 … 65535) are scaled by 255/65535; float images within
    0 … 1 by 255; anything else is stretched from its minimum to its maximum.
    """
    mode = img.mode
    if not (mode.startswith("I") or mode == "F"):
        return None
    a = np.asarray(img)
    if mode.startswith("I;16") or (mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535):
        out = (a.astype(np.uint32) * 255 + 32767) // 65535
        return Image.fromarray(out.astype(np.uint8), "L")
    a = a.astype(np.float32)
    finite = np.isfinite(a)
    if not finite.any():
        raise InputError("the image holds no finite values")
    lo, hi = float(a[finite].min()), float(a[finite].max())
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.where(finite, (a - lo) * scale, 0.0)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "L")


def _alpha_max(img: Image.Image) -> int | None:
    """The largest alpha value, or None when the image has no transparency."""
    if img.mode in _ALPHA_MODES:
        return int(img.getextrema()[-1][1])
    if "transparency" in img.info:
        return int(img.convert("RGBA").getextrema()[3][1])
    return None


def to_rgb8(img: Image.Image, label: str) -> np.ndarray:
    """HxWx3 uint8 of an opened image: upright, high bit depths scaled, fully transparent refused."""
    img = _upright(img)
    alpha = _alpha_max(img)
    if alpha == 0:
        raise InputError(f"{label}: the image is fully transparent: there is no picture in it")
    grey = _scaled_grey(img)
    rgb = (grey if grey is not None else img).convert("RGB")
    return np.asarray(rgb)


def to_grey8(img: Image.Image) -> Image.Image:
    """An 8-bit ``L`` image of an opened one's brightness, high bit depths scaled (not clipped)."""
    grey = _scaled_grey(img)
    return grey if grey is not None else img.convert("L")


def load_rgb(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file as HxWx3 uint8, honouring EXIF orientation; bad files → one-line InputError."""
    return _read_rgb(Path(path), str(path), max_pixels)


def decode_rgb(data: bytes, label: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Like :func:`load_rgb` for the bytes of an image file (as kept in a project)."""
    return _read_rgb(data, label, max_pixels)


def _read_rgb(source: Path | bytes, label: str, max_pixels: int) -> np.ndarray:
    """Open ``source`` and convert it; every failure is one line starting with ``label``."""
    with open_image(source, label, max_pixels) as img:
        try:
            return to_rgb8(img, label)
        except InputError as exc:
            if str(exc).startswith(label):
                raise
            raise InputError(f"{label}: {exc}") from None

