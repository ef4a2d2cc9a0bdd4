"""Face thumbnails for pickers (the examples dialog): quick, on the render session."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..progress import Cancel, Progress
from . import task


@dataclass(frozen=True)
class FaceThumbnails:
    """``size``-px pictures (HxWx3 uint8) of the seed faces of ``model`` at truncation ``psi``."""

    model: str
    seeds: tuple[int, ...]
    psi: float
    size: int
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return "Face thumbnails"


@task(FaceThumbnails)
def face_thumbnails(session: Any, req: FaceThumbnails, progress: Progress, cancel: Cancel) -> list[np.ndarray]:
    return session.thumbnails(req.model, tuple(req.seeds), req.psi, req.size)
