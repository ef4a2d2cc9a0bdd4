"""File ▸ Export (Ctrl+E): where, which format, JPEG quality and size, in one dialog.

The choices are the document's export settings (:class:`~stylestudio.engine.document.ExportSettings`):
accepting the dialog stores them with one undoable step (so they are saved with the project and
offered again next time) and then exports. The size goes up to the photo's own for a photo
project whose face is pasted back, and up to the model's resolution otherwise; the full size is
stored as "no size" so it follows the photo or model. Every export carries an sRGB ICC profile;
a photo project's export keeps the photo's EXIF (see :mod:`stylestudio.engine.export`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSlider, QSpinBox, QWidget)
from PySide6.QtCore import Qt

from ..engine.document import ExportSettings
from ..engine.limits import MIN_SIZE

#: format key (as stored in the document) → (menu text, file suffix)
FORMATS = {"png": ("PNG — lossless", ".png"), "jpeg": ("JPEG — small files", ".jpg"),
           "tiff": ("TIFF — lossless, for print", ".tif")}
SUFFIX_FORMAT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}
ALIASES = {"jpg": "jpeg", "tif": "tiff"}


def format_key(name: str) -> str:
    return ALIASES.get(name.lower(), name.lower())


class ExportDialog(QDialog):
    """Export settings and the target file; :meth:`settings` and :meth:`path` read what was chosen."""

    def __init__(self, settings: ExportSettings, path: Path, max_size: int, is_photo: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Image")
        self.max_size = int(max_size)
        self.base = settings
        self.path_edit = QLineEdit()
        self.path_edit.setMinimumWidth(360)
        self.path_edit.setAccessibleName("File")
        browse = QPushButton("&Browse…")
        browse.clicked.connect(self._browse)
        self.browse_button = browse
        where = QHBoxLayout()
        where.addWidget(self.path_edit, 1)
        where.addWidget(browse)

        self.format_box = QComboBox()
        for key, (text, _suffix) in FORMATS.items():
            self.format_box.addItem(text, key)
        self.format_box.setAccessibleName("Format")

        self.quality_slider = QSlider(Qt.Orientation.Horizontal)
        self.quality_slider.setRange(1, 100)
        self.quality_box = QSpinBox()
        self.quality_box.setRange(1, 100)
        self.quality_box.setAccessibleName("JPEG quality")
        self.quality_box.setToolTip("JPEG quality: 90–95 looks like the original; lower makes smaller files")
        self.quality_slider.valueChanged.connect(self.quality_box.setValue)
        self.quality_box.valueChanged.connect(self.quality_slider.setValue)
        quality = QHBoxLayout()
        quality.addWidget(self.quality_slider, 1)
        quality.addWidget(self.quality_box)

        self.size_box = QSpinBox()
        self.size_box.setRange(MIN_SIZE, self.max_size)
        self.size_box.setSuffix(" px")
        self.size_box.setAccessibleName("Size")
        self.size_box.setToolTip("The longer side of the exported picture, in pixels")
        self.full_box = QCheckBox("Full size")
        self.full_box.setToolTip(f"{self.max_size} px: " + ("the photo's own size" if is_photo
                                                              else "the model's resolution"))
        self.full_box.toggled.connect(lambda on: self.size_box.setEnabled(not on))
        size = QHBoxLayout()
        size.addWidget(self.size_box, 1)
        size.addWidget(self.full_box)

        note = QLabel("sRGB colour profile embedded" + ("; the photo's camera data (EXIF) kept" if is_photo else ""))
        note.setObjectName("Hint")
        note.setWordWrap(True)

        form = QFormLayout(self)
        form.addRow("&File", where)
        form.addRow("F&ormat", self.format_box)
        self.quality_label = QLabel("JPEG &quality")
        self.quality_label.setBuddy(self.quality_box)
        form.addRow(self.quality_label, quality)
        form.addRow("&Size", size)
        form.addRow(note)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("&Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

        # show the document's settings
        fmt = format_key(settings.format)
        self.format_box.setCurrentIndex(max(0, self.format_box.findData(fmt)))
        self.quality_box.setValue(int(settings.quality))
        full = settings.size is None or settings.size >= self.max_size
        self.size_box.setValue(self.max_size if full else int(settings.size))
        self.full_box.setChecked(full)
        self.size_box.setEnabled(not full)
        self.path_edit.setText(str(Path(path).with_suffix(FORMATS[fmt][1])))
        self.format_box.currentIndexChanged.connect(self._on_format)
        self._on_format()

    def format(self) -> str:
        return str(self.format_box.currentData())

    def _on_format(self) -> None:
        fmt = self.format()
        jpeg = fmt == "jpeg"
        for w in (self.quality_slider, self.quality_box, self.quality_label):
            w.setEnabled(jpeg)
        text = self.path_edit.text().strip()
        if text:
            p = Path(text)
            if SUFFIX_FORMAT.get(p.suffix.lower()) != fmt:
                self.path_edit.setText(str(p.with_suffix(FORMATS[fmt][1])))

    def _browse(self) -> None:
        fmt = self.format()
        text, suffix = FORMATS[fmt]
        pattern = " ".join(f"*{s}" for s, f in SUFFIX_FORMAT.items() if f == fmt)
        path, _ = QFileDialog.getSaveFileName(self, "Export Image", self.path_edit.text(),
                                              f"{text.split(' —')[0]} image ({pattern})")
        if path:
            p = Path(path)
            fmt_of_name = SUFFIX_FORMAT.get(p.suffix.lower())
            if fmt_of_name is None:
                p = p.with_name(p.name + suffix)
            elif fmt_of_name != fmt:
                self.format_box.setCurrentIndex(self.format_box.findData(fmt_of_name))
            self.path_edit.setText(str(p))

    def path(self) -> Path:
        """The chosen file, its suffix matching the chosen format."""
        p = Path(self.path_edit.text().strip()).expanduser()
        if SUFFIX_FORMAT.get(p.suffix.lower()) != self.format():
            p = p.with_name(p.name + FORMATS[self.format()][1])
        return p

    def settings(self) -> ExportSettings:
        """The document's export settings with the dialog's choices (full size stored as None)."""
        size = None if self.full_box.isChecked() or self.size_box.value() >= self.max_size else self.size_box.value()
        return dataclasses.replace(self.base, format=self.format(), quality=self.quality_box.value(), size=size)

    def accept(self) -> None:
        if not self.path_edit.text().strip():
            self.path_edit.setFocus()
            return
        super().accept()
