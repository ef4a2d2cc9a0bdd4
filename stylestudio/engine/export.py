"""Exporting a document: the final render at full resolution, with the edit recipe embedded.

Every file is written through :func:`stylestudio.safe_io.atomic_write` (a full disk or a crash
mid-export never truncates the previous export). Sources that come from a photo register a
*compositor* (paste the face back into the original photo); everything else exports the
generated image itself.

The size is the longer side in pixels (None: full size — the photo's own for a pasted-back
photo, the model's resolution otherwise). Every file carries an sRGB ICC profile; a photo
project's export keeps the source photo's EXIF (orientation normalised to 1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..safe_io import atomic_write, check_output
from .document import EditDocument
from .imageio import check_size, photo_exif, resize, save_image
from .render import Renderer, to_uint8

#: source kind → fn(doc, face HxWx3 uint8) → full picture HxWx3 uint8 (e.g. pasted back into the photo)
COMPOSITORS: dict[str, Callable[[EditDocument, np.ndarray], np.ndarray]] = {}


def recipe(doc: EditDocument) -> dict:
    body, _ = doc.to_json()
    return body


def full_size(doc: EditDocument, resolution: int) -> int:
    """The longest side of a full-size export: the photo's own when pasted back, else the model's."""
    photo = getattr(doc.source, "photo", None)
    if doc.source.kind in COMPOSITORS and doc.export.paste_back and photo is not None:
        return int(max(photo.shape[:2]))
    return int(resolution)


def fit_longest(picture: np.ndarray, size: int | None) -> np.ndarray:
    """``picture`` scaled so its longer side is ``size`` (aspect kept); as is for None or that size."""
    check_size(size)
    h, w = picture.shape[:2]
    if size is None or size == max(h, w):
        return picture
    if h == w:
        return resize(picture, size)
    return np.asarray(Image.fromarray(picture).resize(fitted_size(w, h, size), Image.LANCZOS))


def fitted_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is ``size``, aspect kept."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def export_dimensions(doc: EditDocument, resolution: int) -> tuple[int, int]:
    """(width, height) of the picture :func:`final_picture` makes at the document's export size:
    the export preview states it before anything is written."""
    longest = doc.export.size or full_size(doc, resolution)
    photo = getattr(doc.source, "photo", None)
    if doc.source.kind in COMPOSITORS and doc.export.paste_back and photo is not None:
        h, w = photo.shape[:2]
        return fitted_size(int(w), int(h), longest)
    return int(longest), int(longest)


def final_picture(renderer: Renderer, doc: EditDocument, size: int | None = None) -> np.ndarray:
    face = to_uint8(renderer.render(doc))
    compositor = COMPOSITORS.get(doc.source.kind)
    if compositor is not None and doc.export.paste_back:
        return fit_longest(compositor(doc, face), size or doc.export.size)
    return resize(face, size or doc.export.size)


def source_exif(doc: EditDocument):
    """The EXIF to keep in an export: the source photo's (orientation 1) for a photo project, else None."""
    return photo_exif(getattr(doc.source, "photo_bytes", None))


def export_document(generator, model: str, doc: EditDocument, path: Path, size: int | None = None,
                    renderer: Renderer | None = None) -> None:
    """Render ``doc`` and write it to ``path`` atomically: a failed write leaves any old file whole."""
    path = Path(path)
    check_output(path)  # a missing or unwritable folder is found before the render, not after
    renderer = renderer or Renderer(generator, model)
    if path.suffix.lower() == ".npy":
        img = np.ascontiguousarray(renderer.render(doc).float().cpu().numpy())
        atomic_write(path, lambda f: np.save(f, img, allow_pickle=False))
        return
    save_image(path, final_picture(renderer, doc, size), recipe(doc), quality=doc.export.quality,
               exif=source_exif(doc))
