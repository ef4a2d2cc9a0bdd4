"""Widgets shared by the panels that train something in the job thread (Discover, Text paths):
the time budget and step limit, Start / Finish now / Cancel, the suggested free library name, the
live loss curve, the list of a library's entries (rename, delete) and the questions asked before
deleting or replacing what training made."""
from __future__ import annotations

from typing import Any, Callable, Container

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QHBoxLayout, QLineEdit, QListWidget,
                               QListWidgetItem, QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)


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


class EntryList(QWidget):
    """A trained library's entries (directions, text paths): a list whose names are renamed by
    editing them, and *Delete <entry>* / *Delete library* buttons. The panel does the work:
    ``on_rename(name, typed text)``, ``on_delete()`` and ``on_delete_library()``."""

    def __init__(self, entry: str, on_rename: Callable[[str, str], Any], on_delete: Callable[[], Any],
                 on_delete_library: Callable[[], Any], max_height: int) -> None:
        super().__init__()
        self.on_rename = on_rename
        self._labels: dict[str, str] = {}
        self.list = QListWidget()
        self.list.setMaximumHeight(max_height)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.itemChanged.connect(self._edited)
        self.delete_button = QPushButton(f"Delete {entry}")
        self.delete_button.clicked.connect(on_delete)
        self.delete_library_button = QPushButton("Delete library")
        self.delete_library_button.clicked.connect(on_delete_library)
        buttons = QHBoxLayout()
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.delete_library_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.list)
        lay.addLayout(buttons)

    def set_entries(self, entries: list[tuple[str, str, str]]) -> None:
        """Show ``(name, label, tooltip)`` entries, each label editable."""
        self._labels = {name: label for name, label, _ in entries}
        self.list.blockSignals(True)
        self.list.clear()
        for name, label, tooltip in entries:
            it = QListWidgetItem(label)
            it.setData(Qt.ItemDataRole.UserRole, name)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsEditable)
            it.setToolTip(tooltip)
            self.list.addItem(it)
        self.list.blockSignals(False)

    def selected(self) -> tuple[str, str] | None:
        """(name, label) of the selected entry, if any."""
        item = self.list.currentItem()
        return None if item is None else (item.data(Qt.ItemDataRole.UserRole), item.text())

    def _edited(self, item: QListWidgetItem) -> None:
        name, typed = item.data(Qt.ItemDataRole.UserRole), item.text().strip()
        if typed and typed != self._labels.get(name):
            self.on_rename(name, typed)


def show_sliders(panel: Any, bindings: list[Any]) -> None:
    """Show ``bindings`` as ``panel.group`` (a SliderGroup in ``panel.sliders_box``). The group on
    show stays when its sliders are the same ones: a panel refreshes its list after every rename,
    delete or install, and must not delete the slider a person is dragging."""
    from .sliders import SliderGroup

    group = panel.group
    if group is not None and [r.binding for r in group.rows] == bindings:
        return
    if group is not None:
        panel.sliders_box.removeWidget(group)
        group.hide()  # deleted later: never drawn loose meanwhile
        group.deleteLater()
        panel.group = None
    if bindings:
        panel.group = SliderGroup(panel.ctx, bindings)
        panel.sliders_box.addWidget(panel.group)


def formerly(entry: dict[str, Any]) -> str:
    """A tooltip's line naming a renamed entry's earlier names ("" when it has none)."""
    return f"\nformerly {', '.join(entry['former'])}" if entry.get("former") else ""


def confirm_replace(confirm: Callable[..., bool], what: str, names: list[str], entry: str) -> bool:
    """Ask (``confirm(question, button)``, a panel's) before a training saves over a library of the
    same name: ``what`` is "your text path library “x”", ``names`` its entries, each an ``entry``."""
    from ...engine.renames import holding

    return confirm(f"Replace {what} ({holding(names, entry)}) with what this training finds? Pictures and "
                   f"projects that use its sliders keep drawing them from a copy.", "Replace")


class SuggestedName:
    """A training's library name field that never suggests a library that exists: while it holds
    the suggestion (the person has not typed their own), it moves on to ``base_2``, ``base_3``…
    when the suggestion gets taken. A name typed by hand is left alone (the panel asks before
    replacing)."""

    def __init__(self, field: QLineEdit, base: str) -> None:
        self.field, self.base, self.suggestion = field, base, base
        field.setText(base)

    def update(self, taken: Container[str]) -> None:
        if self.field.text().strip() != self.suggestion:
            return
        name, n = self.base, 1
        while name in taken:
            n += 1
            name = f"{self.base}_{n}"
        self.suggestion = name
        self.field.setText(name)


def deletion_question(what: str) -> str:
    return f"Delete {what}? This cannot be undone. Pictures and projects that use it keep drawing it from a copy."


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


class RunButtons:
    """A training panel's start button (``label``), *Finish now* and *Cancel*, side by side; the
    last two are on while a run goes. *Finish now* (``on_finish``: the panel asks the engine
    client) ends the run after its current step and keeps what it has learnt; *Cancel* throws the
    run away. A person watching the loss curve flatten wants the first."""

    def __init__(self, label: str, start: Callable[[], Any], cancel: Callable[[], Any],
                 on_finish: Callable[[], Any]) -> None:
        self.start = QPushButton(label)
        self.start.clicked.connect(start)
        self.finish = QPushButton("Finish now")
        self.finish.setToolTip("End the run after its current step and save what it has learnt so far")
        self.finish.clicked.connect(self._finish_now)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop the run and keep nothing of it")
        self.cancel.clicked.connect(cancel)
        self._on_finish = on_finish
        self.row = QHBoxLayout()
        for b in (self.start, self.finish, self.cancel):
            self.row.addWidget(b)
        self.running(False)

    def running(self, on: bool) -> None:
        self.start.setEnabled(not on)
        self.finish.setEnabled(on)
        self.cancel.setEnabled(on)

    def _finish_now(self) -> None:
        self.finish.setEnabled(False)
        self._on_finish()


def smoothed(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average over ``span`` steps, debiased at the start (TensorBoard's
    smoothing): with a few pairs a step the raw loss is mostly noise, and a trend is what a user
    reads from the curve."""
    alpha = 2.0 / (span + 1.0)
    out = np.empty(len(values), np.float64)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(values):
        acc = (1 - alpha) * acc + alpha * float(v)
        norm = (1 - alpha) * norm + alpha
        out[i] = acc / norm
    return out


class LossCurve(QWidget):
    """The training loss so far: each step's total faint, its trend (moving average) bold, the
    contrast term's trend lighter; the trend's latest value at the top right."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(70)
        self.setToolTip("Training loss: faint, each step; bold, its moving average; blue, the contrast term")
        self.points: list[tuple[float, float]] = []  # (total, contrast)
        self._trend = np.zeros((0, 2))

    def set_points(self, points: list[tuple[float, float]]) -> None:
        self.points = points
        # averaged once per new step, not on every repaint
        vals = np.array(points, np.float64).reshape(-1, 2)
        self._trend = np.stack([smoothed(vals[:, c], self.span()) for c in (0, 1)], axis=1) if len(vals) else vals
        self.update()

    def span(self) -> int:
        """Steps averaged: a twentieth of the run so far, so the trend keeps its shape as it grows."""
        return int(np.clip(len(self.points) // 20, 1, 100))

    def trend(self) -> np.ndarray:
        """[steps, (total, contrast)] moving averages of the points."""
        return self._trend

    def readout(self) -> str:
        """The latest trend value of the total loss, as shown on the curve."""
        return f"{self.trend()[-1, 0]:+.3f}" if self.points else ""

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
        trend = self.trend()
        # the scale follows the trend and the bulk of the steps; a rare outlier step runs off the edge
        # instead of flattening the trend
        lo = float(min(np.nanmin(trend), np.nanpercentile(vals[:, 0], 2)))
        hi = float(max(np.nanmax(trend), np.nanpercentile(vals[:, 0], 98)))
        span = hi - lo or 1.0
        p.setClipRect(r)
        text_colour = self.palette().text().color()
        faint = QColor(text_colour)
        faint.setAlpha(70)
        for series, colour, width in ((vals[:, 0], faint, 1.0), (trend[:, 1], QColor(120, 160, 220), 1.5),
                                      (trend[:, 0], text_colour, 2.0)):
            poly = QPolygonF([QPointF(r.left() + r.width() * i / (len(series) - 1),
                                      r.bottom() - r.height() * (v - lo) / span) for i, v in enumerate(series)])
            p.setPen(QPen(colour, width))
            p.drawPolyline(poly)
        p.setClipping(False)
        # the latest value, top right on a backing of the panel's colour: a falling curve starts top
        # left, and a noisy one can pass anywhere
        text = self.readout()
        box = p.fontMetrics().boundingRect(text).adjusted(-3, -1, 3, 1)
        box.moveTopRight(r.topRight() + QPoint(-2, 2))
        backing = QColor(self.palette().window().color())
        backing.setAlpha(220)
        p.fillRect(box, backing)
        p.setPen(QPen(text_colour))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
