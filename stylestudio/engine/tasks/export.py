"""Export tasks: write the document's final picture to a file, or hand it back as pixels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..document import EditDocument
from ..progress import Cancel, Progress, checking, scaled
from . import task


@dataclass(frozen=True)
class ExportImage:
    """Render ``doc`` at full resolution and write it (with its recipe) to ``path``, atomically."""

    doc: EditDocument
    path: Path
    size: int | None = None
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return f"Export {Path(self.path).name}"

    def describe_result(self, result: Path) -> str:
        return f"wrote {Path(result).name}"


@task(ExportImage)
def export_image(session: Any, req: ExportImage, progress: Progress, cancel: Cancel) -> Path:
    from ..export import export_document

    from .regions import fit_transfers

    path = Path(req.path)
    m = session.model(req.doc.model, progress=checking(progress, cancel))
    # renders only use fits: a transfer still waiting for its fit is fitted for the export
    doc = fit_transfers(session, req.doc, scaled(progress, 0.0, 0.9), cancel)
    progress(f"Exporting {path.name}…", -1)
    export_document(m.generator, doc.model, doc, path, size=req.size, renderer=m.renderers["final"])
    return path


@dataclass(frozen=True)
class CopyPicture:
    """The document's final picture (HxWx3 uint8), e.g. for the clipboard."""

    doc: EditDocument
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return "Copy image"


@task(CopyPicture)
def copy_picture(session: Any, req: CopyPicture, progress: Progress, cancel: Cancel) -> np.ndarray:
    from ..export import final_picture

    from .regions import fit_transfers

    m = session.model(req.doc.model, progress=checking(progress, cancel))
    return final_picture(m.renderers["final"], fit_transfers(session, req.doc, progress, cancel))


@dataclass(frozen=True)
class PreviewExport:
    """What Export writes for ``doc`` (the whole photo with the face pasted back, or the face),
    scaled to at most ``size`` pixels on its longer side for the screen, with the export's own
    (width, height): the photographer sees the result before choosing a file."""

    doc: EditDocument
    size: int = 1600
    lane: ClassVar[str] = "jobs"

    def title(self) -> str:
        return "Preview export"

    def describe_result(self, result: tuple[np.ndarray, tuple[int, int]]) -> str:
        width, height = result[1]
        return f"{width} × {height} px"


@task(PreviewExport)
def preview_export(session: Any, req: PreviewExport, progress: Progress, cancel: Cancel
                   ) -> tuple[np.ndarray, tuple[int, int]]:
    from ..export import export_dimensions, final_picture

    from .regions import fit_transfers

    m = session.model(req.doc.model, progress=checking(progress, cancel))
    doc = fit_transfers(session, req.doc, scaled(progress, 0.0, 0.9), cancel)
    width, height = export_dimensions(doc, m.generator.resolution)
    return final_picture(m.renderers["final"], doc, min(req.size, max(width, height))), (width, height)
