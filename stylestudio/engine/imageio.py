"""Image files in and out (Pillow): export with the edit recipe in the metadata."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from ..errors import InputError

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
RECIPE_KEY = "stylestudio:recipe"


def image_format(path: Path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unsupported image type (use {', '.join(sorted(FORMATS))})")
    return fmt


def resize(array: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or size == array.shape[0]:
        return array
    if size <= 0 or size > 8192:
        raise InputError(f"--size must be between 1 and 8192, got {size}")
    return np.asarray(Image.fromarray(array).resize((size, size), Image.LANCZOS))


def save_image(path: Path, array: np.ndarray, recipe: dict[str, Any] | None = None, quality: int = 95) -> None:
    """Write HxWx3 uint8 ``array``; ``recipe`` goes into PNG text / JPEG+TIFF description."""
    path = Path(path)
    fmt = image_format(path)
    img = Image.fromarray(array)
    text = json.dumps(recipe) if recipe is not None else None
    kwargs: dict[str, Any] = {}
    if fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        info.add_text(RECIPE_KEY, text)
        kwargs["pnginfo"] = info
    elif text:
        exif = Image.Exif()
        exif[0x010E] = text  # ImageDescription
        kwargs["exif"] = exif.tobytes()
    if fmt == "JPEG":
        kwargs["quality"] = quality
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt, **kwargs)


def read_recipe(path: Path) -> dict[str, Any] | None:
    with Image.open(path) as img:
        text = img.info.get(RECIPE_KEY) if img.format == "PNG" else img.getexif().get(0x010E)
    return json.loads(text) if text else None


def load_rgb(path: Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8, honouring EXIF orientation; bad files → InputError."""
    from PIL import ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{Path(path).name}: not a readable image ({exc})") from exc
