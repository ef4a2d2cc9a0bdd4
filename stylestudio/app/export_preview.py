"""File ▸ Preview Export: the picture Export writes — for a photo, the whole photo with the edited
face pasted back — in its own window, before a file is chosen.

The canvas shows the aligned face the model edits; a photographer also wants to see it back in
the photo (does the pasted face sit right, is the crop what they meant?). The picture comes from
the job thread (:class:`~stylestudio.engine.tasks.export.PreviewExport`, the export's own code at
screen size); the window keeps it and says when the document has changed since.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QPushButton, QSizePolicy, QVBoxLayout,
                               QWidget)

from .qimage_arrays import qimage_from_array

if TYPE_CHECKING:
    from .main_window import MainWindow

PREVIEW_PX = 1600  #: the longest side rendered for the preview (the export itself may be larger)


class FittedPicture(QWidget):
    """A picture drawn as large as the window allows, aspect kept, never enlarged past its pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.pixmap = QPixmap()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 200)

    def set_image(self, image: QImage) -> None:
        self.pixmap = QPixmap.fromImage(image)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return self.pixmap.size().boundedTo(QSize(900, 700)) if not self.pixmap.isNull() else QSize(600, 600)

    def drawn_rect(self) -> QRect:
        """Where the picture is drawn: centred, scaled to fit, at most 1:1."""
        if self.pixmap.isNull():
            return QRect()
        size = self.pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio).boundedTo(self.pixmap.size())
        return QRect(QPoint((self.width() - size.width()) // 2, (self.height() - size.height()) // 2), size)

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 (Qt name)
        if self.pixmap.isNull():
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawPixmap(self.drawn_rect(), self.pixmap)


def describe(doc: Any, dims: tuple[int, int]) -> str:
    """What the preview shows, in the words of the Export options."""
    width, height = dims
    if doc.source.kind == "photo":
        what = ("the whole photo with the edited face pasted back" if doc.export.paste_back
                else "the aligned face alone (File ▸ Export Whole Photo is off)")
    else:
        what = "the face"
    return f"Export writes {what}: {width} × {height} px."


class ExportPreview(QDialog):
    """The export preview window (one per main window, reused): the picture, what it is, and
    Refresh / Export… / Close."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Preview Export")
        self.picture = FittedPicture()
        self.caption = QLabel("Rendering the preview…")
        self.caption.setWordWrap(True)
        self.shown_doc: Any = None  #: the document the picture was made from
        self.job = 0
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Render the preview again from the document as it is now")
        self.refresh_button.clicked.connect(self.refresh)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ActionRole)
        # an action, not accept: the preview stays open beside the export dialog
        self.export_button = buttons.addButton("Export…", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(window.files.export_dialog)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.picture, 1)
        lay.addWidget(self.caption)
        lay.addWidget(buttons)
        self.text = ""
        window.holder.changed.connect(self._on_doc_changed)

    def refresh(self) -> int:
        """Render the preview of the document as it is now (a job; the window shows it when done)."""
        from ..engine.tasks.export import PreviewExport

        w = self.window_
        self.refresh_button.setEnabled(False)
        self.caption.setText("Rendering the preview…")
        doc = w.holder.doc

        def done(result: tuple[np.ndarray, tuple[int, int]]) -> None:
            picture, dims = result
            self.job = 0
            self.refresh_button.setEnabled(True)
            self.shown_doc = doc  # if edited while it rendered, the caption says it is behind
            self.picture.set_image(qimage_from_array(np.ascontiguousarray(picture)))
            self.text = describe(doc, dims)
            self._caption()

        def failed(message: str, cancelled: bool) -> None:
            self.job = 0
            self.refresh_button.setEnabled(True)
            self.caption.setText("Preview cancelled." if cancelled else f"No preview: {message}")

        self.job = w.engine.submit_task(PreviewExport(w.renders.stamped(doc), PREVIEW_PX), done, failed)
        return self.job

    @property
    def stale(self) -> bool:
        """The document is no longer the one the picture shows (an undo back to it makes it current)."""
        return self.shown_doc is not None and self.window_.holder.doc is not self.shown_doc

    def _on_doc_changed(self, *_args: Any) -> None:
        if self.text:
            self._caption()

    def _caption(self) -> None:
        note = " The document has changed since: Refresh to see it." if self.stale else ""
        self.caption.setText(self.text + note)


def preview_export(window: "MainWindow") -> ExportPreview:
    """Open (or bring forward) the export preview and render it for the document as it is now."""
    dlg = window.export_preview
    if dlg is None:
        dlg = window.export_preview = ExportPreview(window)
        dlg.resize(900, 760)
    dlg.show()
    dlg.raise_()
    dlg.activateWindow()
    dlg.refresh()
    return dlg
