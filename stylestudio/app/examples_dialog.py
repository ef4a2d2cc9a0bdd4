""""New slider from examples…": pick faces with a quality and faces without, name it, get a slider.

The dialog shows pages of seed faces (the same seeds and ψ as the face browser). A click cycles
a face through *with* → *without* → unmarked. The fitting itself is
the engine task :class:`~stylestudio.engine.tasks.SliderFromExamples`, which the Attributes panel
submits to the job thread (``AttributesPanel.create_slider``); the page thumbnails are
:class:`~stylestudio.engine.tasks.FaceThumbnails`.
"""
from __future__ import annotations

import re

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from ..engine.document import SeedSource
from ..engine.tasks import FaceThumbnails
from .context import EditorContext
from .qimage_arrays import qimage_from_array

PAGE = 24
THUMB = 96
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
WITH, WITHOUT = 1, -1
COLOURS = {WITH: QColor(46, 160, 90, 140), WITHOUT: QColor(200, 70, 60, 140)}


class ExamplesDialog(QDialog):
    """Mark ≥5 faces with the quality and ≥5 without, give the slider a name."""

    def __init__(self, ctx: EditorContext, parent: QWidget | None = None) -> None:
        from ..engine.directions.examples import MIN_EXAMPLES

        super().__init__(parent)
        self.ctx = ctx
        self.min_examples = MIN_EXAMPLES
        self.setWindowTitle("New Slider from Examples")
        self.resize(760, 620)
        src = ctx.doc.source
        self.psi = float(src.psi) if isinstance(src, SeedSource) else 0.7
        self.marks: dict[int, int] = {}
        self.next_seed = (int(src.seed) // PAGE) * PAGE if isinstance(src, SeedSource) else 0

        intro = QLabel(f"Click a face once if it has the quality, twice if it clearly has not, a third time to "
                       f"unmark it. At least {MIN_EXAMPLES} of each; more examples make a cleaner slider.")
        intro.setWordWrap(True)
        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 16, THUMB + 30))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setMovement(QListWidget.Movement.Static)
        self.grid.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.grid.itemClicked.connect(lambda item: self.cycle(int(item.data(Qt.ItemDataRole.UserRole))))
        self.more = QPushButton("More faces")
        self.more.clicked.connect(self.add_page)
        self.count_label = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.count_label, 1)
        row.addWidget(self.more)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. freckles")
        self.name_edit.setToolTip("Lower-case letters, digits and _ (it is also the slider's name on the command line)")
        self.name_edit.textChanged.connect(self._update)
        self.keep_box = QCheckBox("Leave the named attributes (age, gender, smile, …) where they are")
        self.keep_box.setChecked(True)
        self.keep_box.setToolTip("Projects the named attributes out of the new slider, so a few examples that "
                                 "happen to be older or more female do not make it an age or gender slider too")
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("", self.keep_box)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create = self.buttons.addButton("Create Slider", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.grid, 1)
        lay.addLayout(row)
        lay.addLayout(form)
        lay.addWidget(self.buttons)
        self.add_page()
        self._update()

    # -- faces ----------------------------------------------------------------------------------
    def add_page(self) -> None:
        seeds = list(range(self.next_seed, self.next_seed + PAGE))
        self.next_seed += PAGE
        blank = QPixmap(THUMB, THUMB)
        blank.fill(QColor(60, 60, 64))
        for s in seeds:
            item = QListWidgetItem(QIcon(blank), f"seed {s}")
            item.setData(Qt.ItemDataRole.UserRole, s)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.grid.addItem(item)
        model, psi = self.ctx.doc.model, self.psi
        self.ctx.engine.submit_task(FaceThumbnails(model, tuple(seeds), psi, THUMB),
                                    on_done=lambda arrays: self._show(seeds, arrays))

    def _show(self, seeds: list[int], arrays: list[np.ndarray]) -> None:
        for s, a in zip(seeds, arrays):
            item = self._item(s)
            if item is not None:
                item.setIcon(QIcon(QPixmap.fromImage(qimage_from_array(a))))

    def _item(self, seed: int) -> QListWidgetItem | None:
        for i in range(self.grid.count()):
            it = self.grid.item(i)
            if int(it.data(Qt.ItemDataRole.UserRole)) == seed:
                return it
        return None

    def cycle(self, seed: int) -> None:
        """unmarked → with → without → unmarked."""
        self.mark(seed, {0: WITH, WITH: WITHOUT, WITHOUT: 0}[self.marks.get(seed, 0)])

    def mark(self, seed: int, state: int) -> None:
        if state:
            self.marks[seed] = state
        else:
            self.marks.pop(seed, None)
        item = self._item(seed)
        if item is not None:
            item.setBackground(QBrush(COLOURS[state]) if state else QBrush())
            item.setText(f"seed {seed}" + {WITH: " · with", WITHOUT: " · without", 0: ""}[state])
        self._update()

    # -- result ---------------------------------------------------------------------------------
    def positives(self) -> list[int]:
        return sorted(s for s, v in self.marks.items() if v == WITH)

    def negatives(self) -> list[int]:
        return sorted(s for s, v in self.marks.items() if v == WITHOUT)

    def slider_name(self) -> str:
        return self.name_edit.text().strip()

    def keep_named(self) -> bool:
        return self.keep_box.isChecked()

    def _update(self) -> None:
        n_pos, n_neg = len(self.positives()), len(self.negatives())
        need = self.min_examples
        self.count_label.setText(f"With the quality: {n_pos} · without: {n_neg}"
                                 + ("" if n_pos >= need and n_neg >= need else f"  (at least {need} of each)"))
        name_ok = bool(NAME.match(self.slider_name()))
        self.create.setEnabled(n_pos >= need and n_neg >= need and name_ok)
        self.create.setToolTip("" if name_ok else "Name: lower-case letters, digits and _, starting with a letter")
