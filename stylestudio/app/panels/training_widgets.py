"""Widgets shared by the panels that train something in the job thread (Discover, Text paths):
the time budget and step limit, Start/Cancel, and the live loss curve."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QPushButton, QScrollArea, QSpinBox,
                               QVBoxLayout, QWidget)


#: the Discover and Text paths docks widen to this when shown: their sliders keep the editor's
#: full length (label, ≥ 200-px slider, value, reset) beside the form's margins and scroll bar
TRAINING_DOCK_PX = 420


def column_scroll(panel: QWidget, inner: QWidget) -> QScrollArea:
    """Put ``inner`` in ``panel`` scrolling vertically only, narrow enough for the side column:
    long combo entries (a file name, an encoder hint) are elided instead of widening the panel."""
    for box in inner.findChildren(QComboBox):
        box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        box.setMinimumContentsLength(12)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(inner)
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return scroll


def budget_fields(minutes: float) -> tuple[QDoubleSpinBox, QSpinBox]:
    """The time budget (``minutes`` by default) and the step limit (0: no limit) of a training job."""
    budget = QDoubleSpinBox()
    budget.setRange(0.1, 24 * 60)
    budget.setValue(minutes)
    budget.setSuffix(" min")
    steps = QSpinBox()
    steps.setRange(0, 10_000_000)
    steps.setSpecialValueText("no limit")
    steps.setToolTip("Stop after this many training steps (no limit: the time budget decides)")
    return budget, steps


def start_cancel(label: str, start: Callable[[], Any], cancel: Callable[[], Any]
                 ) -> tuple[QPushButton, QPushButton, QHBoxLayout]:
    """A start button called ``label`` and Cancel (off until a job runs), side by side."""
    start_button = QPushButton(label)
    start_button.clicked.connect(start)
    cancel_button = QPushButton("Cancel")
    cancel_button.setEnabled(False)
    cancel_button.clicked.connect(cancel)
    row = QHBoxLayout()
    row.addWidget(start_button)
    row.addWidget(cancel_button)
    return start_button, cancel_button, row


class LossCurve(QWidget):
    """The training loss so far (total, and the contrast term lighter)."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(70)
        self.points: list[tuple[float, float]] = []  # (total, contrast)

    def set_points(self, points: list[tuple[float, float]]) -> None:
        self.points = points
        self.update()

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.rect().adjusted(4, 4, -4, -4)
        p.setPen(QPen(self.palette().mid().color()))
        p.drawRect(r)
        if len(self.points) < 2:
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, "loss curve")
            return
        vals = np.array(self.points, np.float64)
        lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
        span = hi - lo or 1.0
        for col, colour in ((1, QColor(120, 160, 220)), (0, self.palette().text().color())):
            poly = QPolygonF([QPointF(r.left() + r.width() * i / (len(vals) - 1),
                                      r.bottom() - r.height() * (v - lo) / span) for i, v in enumerate(vals[:, col])])
            p.setPen(QPen(colour, 1.5))
            p.drawPolyline(poly)
        # the latest value, top right on a backing of the panel's colour: a falling curve starts top
        # left, and a noisy one can pass anywhere
        text = f"{vals[-1, 0]:+.3f}"
        box = p.fontMetrics().boundingRect(text).adjusted(-3, -1, 3, 1)
        box.moveTopRight(r.topRight() + QPoint(-2, 2))
        backing = QColor(self.palette().window().color())
        backing.setAlpha(220)
        p.fillRect(box, backing)
        p.setPen(QPen(self.palette().text().color()))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
