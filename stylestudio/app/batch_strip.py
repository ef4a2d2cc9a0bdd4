"""The live strip of a folder batch: each finished photo's before → after thumbnail as it comes.

A photographer watching a shoot being processed wants to see the look landing on each face (and
stop the batch early if it does not), not only a progress bar. The strip reads the small
thumbnails the batch already writes into its output folder; double-clicking a result opens its
project (when the batch saves projects) so it can be tweaked, otherwise the output picture.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from .main_window import MainWindow

THUMB = 96  #: px per side of each half (before, after)


def pair_icon(before: Path, after: Path) -> QIcon | None:
    """Before and after side by side (None when the thumbnails cannot be read)."""
    a, b = QImage(str(before)), QImage(str(after))
    if a.isNull() or b.isNull():
        return None
    a = a.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    b = b.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    pix = QPixmap(2 * THUMB + 4, THUMB)
    pix.fill(Qt.GlobalColor.transparent)
    with_painter = QPainter(pix)
    with_painter.drawImage((THUMB - a.width()) // 2, (THUMB - a.height()) // 2, a)
    with_painter.drawImage(THUMB + 4 + (THUMB - b.width()) // 2, (THUMB - b.height()) // 2, b)
    with_painter.end()
    return QIcon(pix)


class BatchStrip(QDialog):
    """A non-modal window listing one batch's photos as they finish (newest first)."""

    def __init__(self, output_dir: Path, total: int | None, window: "MainWindow",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.main = window
        self.output_dir = Path(output_dir)
        self.total = total
        self.done = self.skipped = 0
        self.setWindowTitle(f"Apply to Folder — {self.output_dir.name}")
        self.setModal(False)
        self.summary = QLabel("Waiting for the first photo…")
        self.summary.setWordWrap(True)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(2 * THUMB + 4, THUMB))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setToolTip("Before → after of each finished photo. Double-click to open its project "
                             "(or the picture) and tweak it.")
        self.list.itemDoubleClicked.connect(self.open_item)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(self.list, 1)
        self.resize(720, 420)

    def add(self, rec: Any) -> None:
        """One finished (or skipped) photo, from the batch's per-photo record."""
        if rec.ok:
            self.done += 1
        else:
            self.skipped += 1
        of = f" of {self.total}" if self.total else ""
        self.summary.setText(f"{self.done}{of} photos done, {self.skipped} skipped — {rec.line()}")
        item = QListWidgetItem(Path(rec.photo).name)
        item.setToolTip(rec.line())
        item.setData(Qt.ItemDataRole.UserRole, rec)
        icon = pair_icon(*(self.output_dir / t for t in rec.thumbs[:2])) if len(rec.thumbs) >= 2 else None
        if icon is not None:
            item.setIcon(icon)
        elif not rec.ok:
            item.setText(f"{Path(rec.photo).name}\n({rec.status})")
        self.list.insertItem(0, item)

    def open_item(self, item: QListWidgetItem) -> None:
        rec = item.data(Qt.ItemDataRole.UserRole)
        if rec is None or not rec.ok:
            return
        if rec.projects:
            self.main.open_path(self.output_dir / rec.projects[0])
        elif rec.output:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.output_dir / rec.output)))
