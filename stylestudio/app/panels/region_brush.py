"""The Regions panel's brush: the canvas tool that paints a region, its actions (B paints, E
erases) and its size and hardness. Painting itself changes nothing: a finished stroke is handed
to the panel (``stroke_finished``), which makes it the transfer's mask as one undo step."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QSlider, QToolButton, QWidget

from ..context import EditorContext
from ..mask_painter import MaskPainter


class RegionBrush(QObject):
    """The brush's painter, actions and controls (laid out by the panel: :attr:`tools`, :attr:`settings`)."""

    def __init__(self, ctx: EditorContext, parent: QWidget) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.painter = MaskPainter(parent)
        ctx.window.canvas.tool = self.painter
        self.painter.changed.connect(ctx.window.canvas.update)
        self.stroke_finished = self.painter.stroke_finished  #: (mask uint8 or None) a stroke ended

        self.paint_action = QAction("Paint", parent)
        self.paint_action.setCheckable(True)
        self.paint_action.setShortcut(QKeySequence("B"))
        self.paint_action.setToolTip("Paint the region on the face (B); right button erases")
        self.eraser_action = QAction("Eraser", parent)
        self.eraser_action.setCheckable(True)
        self.eraser_action.setShortcut(QKeySequence("E"))
        self.eraser_action.setToolTip("Erase with the left button too (E)")
        for a in (self.paint_action, self.eraser_action):
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            ctx.window.addAction(a)
        self.paint_button = QToolButton()
        self.paint_button.setDefaultAction(self.paint_action)
        self.eraser_button = QToolButton()
        self.eraser_button.setDefaultAction(self.eraser_action)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Remove the painted region")
        self.invert_button = QToolButton()
        self.invert_button.setText("Invert")
        self.invert_button.setToolTip("Swap painted and unpainted")
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 40)
        self.size_slider.setValue(round(self.painter.size * 100))
        self.size_slider.setToolTip("Brush size (% of the picture width)")
        self.hardness_slider = QSlider(Qt.Orientation.Horizontal)
        self.hardness_slider.setRange(0, 100)
        self.hardness_slider.setValue(round(self.painter.hardness * 100))
        self.hardness_slider.setToolTip("Brush hardness: 0 = soft edge, 100 = hard edge")
        self.tools = QHBoxLayout()
        self.tools.setSpacing(4)
        for w in (self.paint_button, self.eraser_button, self.clear_button, self.invert_button):
            self.tools.addWidget(w)
        self.tools.addStretch(1)
        self.settings = QFormLayout()
        self.settings.addRow("Size", self.size_slider)
        self.settings.addRow("Hardness", self.hardness_slider)

        self.paint_action.toggled.connect(self._on_paint_toggled)
        self.eraser_action.toggled.connect(self._on_eraser_toggled)
        self.size_slider.valueChanged.connect(lambda v: setattr(self.painter, "size", v / 100))
        self.hardness_slider.valueChanged.connect(lambda v: setattr(self.painter, "hardness", v / 100))

    def set_enabled(self, on: bool) -> None:
        for w in (self.paint_action, self.eraser_action, self.clear_button, self.invert_button):
            w.setEnabled(on)
        if not on and self.paint_action.isChecked():
            self.paint_action.setChecked(False)

    def show_outline(self, on: bool) -> None:
        self.painter.overlay_visible = on
        self.painter.changed.emit()

    def _on_paint_toggled(self, on: bool) -> None:
        self.painter.set_active(on)
        canvas = self.ctx.window.canvas
        canvas.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor)
        if on:
            self.ctx.status("Brush: paint the region (right button or E erases, B ends)")

    def _on_eraser_toggled(self, on: bool) -> None:
        self.painter.eraser = on
        self.painter.changed.emit()
