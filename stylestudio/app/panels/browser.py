"""The face browser: pages of seed thumbnails, a seed box, truncation ψ and "random".

Thumbnails are drawn by the worker at a coarse synthesis stage (cheap) and arrive in small
chunks, so a page fills progressively and a slider drag elsewhere is never held up by it.
"""
from __future__ import annotations

import random

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QListView,
                               QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ...engine.document import EditDocument, SeedSource
from .. import theme
from ..context import EditorContext
from ..undo_commands import PickFaceCommand, SetTruncationCommand, new_drag_token
from . import PanelSpec, register_panel

MAX_SEED = 2**31 - 1
SEED_ROLE = Qt.ItemDataRole.UserRole + 1


def _placeholder(size: int) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(128, 128, 128, 40))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(0, 0, size, size, 6, 6)
    p.end()
    return QIcon(pm)


class FaceBrowser(QWidget):
    PAGE = 18

    def __init__(self, ctx: EditorContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.page_start = max(0, (ctx.settings.last_seed // self.PAGE) * self.PAGE)
        self._token = 0
        self._psi_token = 0
        self._syncing = False
        self._shown_source = None
        size = ctx.settings.thumbnail_size

        # seed + random
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, MAX_SEED)
        self.seed_box.setKeyboardTracking(False)
        self.seed_box.setToolTip("Seed of the generated face (Enter to open)")
        self.seed_box.setAccessibleName("Seed")
        self.random_button = QToolButton()
        self.random_button.setIcon(theme.icon("random"))
        self.random_button.setText("Random")
        self.random_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.random_button.setToolTip("A random face (R)")
        # truncation
        self.psi_slider = QSlider(Qt.Orientation.Horizontal)
        self.psi_slider.setRange(0, 100)
        self.psi_slider.setToolTip("Truncation ψ: lower is closer to the average face (more typical, "
                                   "fewer artefacts), higher is more varied")
        self.psi_box = QDoubleSpinBox()
        self.psi_box.setRange(0.0, 1.0)
        self.psi_box.setSingleStep(0.05)
        self.psi_box.setDecimals(2)
        self.psi_box.setKeyboardTracking(False)
        self.psi_box.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.psi_box.setFixedWidth(58)
        self.psi_box.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.psi_box.setAccessibleName("Truncation")

        form = QGridLayout()
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(6)
        form.addWidget(QLabel("Seed"), 0, 0)
        form.addWidget(self.seed_box, 0, 1)
        form.addWidget(self.random_button, 0, 2, 1, 2)
        form.addWidget(QLabel("Truncation ψ"), 1, 0)
        form.addWidget(self.psi_slider, 1, 1, 1, 2)
        form.addWidget(self.psi_box, 1, 3)
        form.setColumnStretch(1, 1)

        # grid
        self.model = QStandardItemModel(self)
        self.grid = QListView()
        self.grid.setObjectName("FaceGrid")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setIconSize(QSize(size, size))
        self.grid.setGridSize(QSize(size + 12, size + 26))
        self.grid.setSpacing(2)
        self.grid.setWordWrap(False)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.setModel(self.model)
        self.grid.setMinimumWidth(3 * (size + 12) + 24)

        # pager
        self.prev_button = QToolButton()
        self.prev_button.setIcon(theme.icon("prev"))
        self.prev_button.setToolTip("Previous page (Alt+Left)")
        self.next_button = QToolButton()
        self.next_button.setIcon(theme.icon("next"))
        self.next_button.setToolTip("Next page (Alt+Right)")
        self.page_label = QLabel()
        self.page_label.setObjectName("Hint")
        self.page_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        pager = QHBoxLayout()
        pager.addWidget(self.prev_button)
        pager.addWidget(self.page_label, 1)
        pager.addWidget(self.next_button)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 8, 8)
        lay.setSpacing(8)
        lay.addLayout(form)
        lay.addWidget(self.grid, 1)
        lay.addLayout(pager)

        self._psi_timer = QTimer(self)
        self._psi_timer.setSingleShot(True)
        self._psi_timer.setInterval(250)
        self._psi_timer.timeout.connect(self.refresh_thumbnails)

        self.grid.clicked.connect(self._on_clicked)
        self.grid.activated.connect(self._on_clicked)
        self.seed_box.valueChanged.connect(self._on_seed_box)
        self.random_button.clicked.connect(self.pick_random)
        self.prev_button.clicked.connect(lambda: self.set_page(self.page_start - self.PAGE))
        self.next_button.clicked.connect(lambda: self.set_page(self.page_start + self.PAGE))
        self.psi_slider.sliderPressed.connect(self._on_psi_pressed)
        self.psi_slider.valueChanged.connect(self._on_psi_slider)
        self.psi_slider.sliderReleased.connect(ctx.end_interaction)
        self.psi_box.valueChanged.connect(self._on_psi_box)
        ctx.engine.thumbnails_ready.connect(self._on_thumbnails)
        ctx.model_changed.connect(self._on_model)
        ctx.holder.changed.connect(self._on_doc)
        self._fill_page()
        self._on_doc(ctx.doc, False)

    def _on_model(self, _desc) -> None:
        self.refresh_thumbnails()

    # -- state from the document ----------------------------------------------------------------
    def current_psi(self) -> float:
        src = self.ctx.doc.source
        return src.psi if isinstance(src, SeedSource) else self.ctx.settings.last_psi

    def _on_doc(self, doc: EditDocument, _interactive: bool) -> None:
        src = doc.source
        if src is self._shown_source:
            return  # a slider moved: nothing here changes (and repainting the grid is not free)
        self._shown_source = src
        is_seed = isinstance(src, SeedSource)
        self._syncing = True
        try:
            if is_seed:
                self.seed_box.setValue(min(src.seed, MAX_SEED))
                if not self.psi_slider.isSliderDown():
                    self.psi_slider.setValue(round(src.psi * 100))
                self.psi_box.setValue(src.psi)
            self.psi_slider.setEnabled(is_seed)
            self.psi_box.setEnabled(is_seed)
            self._select_current()
        finally:
            self._syncing = False
        if is_seed and abs(src.psi - self._thumb_psi) > 1e-6:
            self._psi_timer.start()

    def _select_current(self) -> None:
        src = self.ctx.doc.source
        self.grid.clearSelection()
        if isinstance(src, SeedSource) and self.page_start <= src.seed < self.page_start + self.PAGE:
            self.grid.setCurrentIndex(self.model.index(src.seed - self.page_start, 0))

    # -- pages and thumbnails -------------------------------------------------------------------
    _thumb_psi = -1.0

    def set_page(self, start: int) -> None:
        start = max(0, min(MAX_SEED - self.PAGE, start))
        if start != self.page_start:
            self.page_start = start
            self._fill_page()
            self.refresh_thumbnails()

    def _fill_page(self) -> None:
        self.model.clear()
        self.loaded_seeds: set[int] = set()
        ph = _placeholder(self.ctx.settings.thumbnail_size)
        for seed in range(self.page_start, self.page_start + self.PAGE):
            item = QStandardItem(ph, str(seed))
            item.setData(seed, SEED_ROLE)
            item.setToolTip(f"Seed {seed}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.model.appendRow(item)
        self.page_label.setText(f"Seeds {self.page_start}–{self.page_start + self.PAGE - 1}")
        self.prev_button.setEnabled(self.page_start > 0)
        self._select_current()

    def refresh_thumbnails(self) -> None:
        if self.ctx.model is None:
            return
        self._thumb_psi = self.current_psi()
        self.loaded_seeds = set()
        ph = _placeholder(self.ctx.settings.thumbnail_size)
        for row in range(self.model.rowCount()):
            self.model.item(row).setIcon(ph)
        seeds = list(range(self.page_start, self.page_start + self.PAGE))
        self._token = self.ctx.engine.thumbnails(self.ctx.doc.model, seeds, self._thumb_psi,
                                                 self.ctx.settings.thumbnail_size)

    def _on_thumbnails(self, token: int, items: list) -> None:
        if token != self._token:
            return
        for seed, image in items:
            row = seed - self.page_start
            if 0 <= row < self.model.rowCount():
                pm = QPixmap.fromImage(image)
                icon = QIcon(pm)
                icon.addPixmap(pm, QIcon.Mode.Selected)  # the selection is the frame, not a tint
                self.model.item(row).setIcon(icon)
                self.loaded_seeds.add(seed)

    def thumbnails_complete(self) -> bool:
        return len(self.loaded_seeds) == self.model.rowCount()

    # -- actions ---------------------------------------------------------------------------------
    def pick(self, seed: int) -> None:
        seed = int(seed)
        src = self.ctx.doc.source
        if isinstance(src, SeedSource) and src.seed == seed:
            return
        self.ctx.settings.last_seed = seed
        self.ctx.push(PickFaceCommand(self.ctx.holder, seed, self.current_psi()))

    def pick_random(self) -> None:
        self.pick(random.randrange(0, MAX_SEED))

    def step_seed(self, delta: int) -> None:
        src = self.ctx.doc.source
        seed = src.seed if isinstance(src, SeedSource) else self.ctx.settings.last_seed
        self.pick(max(0, min(MAX_SEED, seed + delta)))

    def _on_clicked(self, index) -> None:
        seed = index.data(SEED_ROLE)
        if seed is not None:
            self.pick(seed)

    def _on_seed_box(self, value: int) -> None:
        if not self._syncing:
            self.pick(value)

    def _on_psi_pressed(self) -> None:
        self._psi_token = new_drag_token()

    def _on_psi_slider(self, ticks: int) -> None:
        if self._syncing:
            return
        psi = ticks / 100
        self._syncing = True
        self.psi_box.setValue(psi)
        self._syncing = False
        down = self.psi_slider.isSliderDown()
        self._set_psi(psi, self._psi_token if down else new_drag_token(), down)

    def _on_psi_box(self, psi: float) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.psi_slider.setValue(round(psi * 100))
        self._syncing = False
        self._set_psi(psi, new_drag_token(), False)

    def _set_psi(self, psi: float, token: int, interactive: bool) -> None:
        src = self.ctx.doc.source
        if not isinstance(src, SeedSource) or abs(src.psi - psi) < 1e-9:
            return
        self.ctx.settings.last_psi = psi
        self.ctx.push(SetTruncationCommand(self.ctx.holder, psi, token, interactive))


register_panel(PanelSpec("faces", "Faces", FaceBrowser, area="left", order=10, icon="faces",
                         shortcut="Ctrl+Shift+B"))
