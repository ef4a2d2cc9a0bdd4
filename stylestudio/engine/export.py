"""Exporting a document: the final render at full resolution, with the edit recipe embedded.

Every file is written through :func:`stylestudio.safe_io.atomic_write` (a full disk or a crash
mid-export never truncates the previous export). Sources that come from a photo register a
*compositor* (paste the face back into the original photo); everything else exports the
generated image itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..safe_io import atomic_write, check_output
from .document import EditDocument
from .imageio import resize, save_image
from .render import Renderer, to_uint8

#: source kind → fn(doc, face HxWx3 uint8) → full picture HxWx3 uint8 (e.g. pasted back into the photo)
COMPOSITORS: dict[str, Callable[[EditDocument, np.ndarray], np.ndarray]] = {}


def recipe(doc: EditDocument) -> dict:
    body, _ = doc.to_json()
    return body


def final_picture(renderer: Renderer, doc: EditDocument, size: int | None = None) -> np.ndarray:
    face = to_uint8(renderer.render(doc))
    compositor = COMPOSITORS.get(doc.source.kind)
    if compositor is not None and doc.export.paste_back:
        return compositor(doc, face)
    return resize(face, size or doc.export.size)


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
    save_image(path, final_picture(renderer, doc, size), recipe(doc), quality=doc.export.quality)
