"""Generic slider machinery: a binding says how a value lives in the document, a row edits it.

* :class:`SliderBinding` — ``value(doc)`` and ``apply(doc, value) → doc``. Any edit with one
  scalar can be a slider; :class:`DirectionBinding` moves along a direction of a library.
* :class:`SliderRow` — label, slider, value box, reset. A mouse drag is *one* undo step
  (every move pushes a :class:`~..undo_commands.SliderCommand` with the drag's token and they
  merge); moves during a drag ask for previews; the release asks for the final frame. Keyboard
  steps in quick succession merge too. The slider is at least :data:`SLIDER_MIN_PX` long (a
  −3…+3 range on 64 px made one pixel worth 0.1); Shift+arrow steps by :data:`FINE_TICKS` and a
  Shift+drag moves ten times slower. The mouse wheel moves a slider only when it has the focus:
  otherwise it scrolls the panel (scrolling must not change the sliders passing under the pointer).
* :class:`SliderGroup` — rows for a list of bindings, kept in sync with the document (undo,
  redo, opening a project all move the sliders).
* :class:`DirectionSlidersPanel` — a group built from a direction library of the current model
  (see :func:`stylestudio.app.panels.register_slider_library`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (QAbstractScrollArea, QApplication, QDoubleSpinBox, QHBoxLayout, QLabel,
                               QScrollArea, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget)

from ...engine.document import EditDocument
from ...engine.edits.direction import DirectionEdit
from ...engine.tasks.directions import DescribeSliders
from .. import theme
from ..context import EditorContext
from ..undo_commands import ResetAllEditsCommand, ResetEditCommand, SliderCommand, new_drag_token
from . import register_slider_library

TICKS_PER_UNIT = 100
KEY_MERGE_S = 0.8  #: keyboard steps closer than this form one undo step
SLIDER_MIN_PX = 200  #: shortest slider: fine control needs room (−3…+3 over 200 px: 0.03 a pixel)
STEP_TICKS = 5  #: an arrow key step (0.05)
FINE_TICKS = 1  #: a Shift+arrow step (0.01)
FINE_DRAG = 0.1  #: a Shift+drag moves the value this much slower than the pointer


def forward_wheel(widget: QWidget, event: QEvent) -> bool:
    """Give a wheel event meant for an unfocused control to the scroll area around it (if any)."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    if parent is not None:
        bar = parent.verticalScrollBar()
        if bar.maximum() > bar.minimum():
            QApplication.sendEvent(bar, event)
    event.accept()
    return True


class FineSlider(QSlider):
    """A horizontal slider with fine control: Shift+arrow steps, a slow Shift+drag, no stray wheel.

    The wheel only moves it when it has keyboard focus (StrongFocus: a click or Tab gives it);
    otherwise the wheel scrolls the enclosing scroll area.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setMinimumWidth(SLIDER_MIN_PX)
        self.setSingleStep(STEP_TICKS)
        self.setPageStep(50)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        #: (pointer x, value, speed) where the current relative drag speed began (Shift+drag)
        self._anchor: tuple[float, int, float] | None = None
        self._last_x: float | None = None

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt name)
        step = {Qt.Key.Key_Right: 1, Qt.Key.Key_Up: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_Down: -1}.get(
            Qt.Key(event.key()))
        if step is not None and event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.setValue(self.value() + step * FINE_TICKS)
            event.accept()
            return
        super().keyPressEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            forward_wheel(self, event)

    def _ticks_per_px(self) -> float:
        return (self.maximum() - self.minimum()) / max(1, self.width() - 14)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        """Shift+drag moves :data:`FINE_DRAG` times the pointer's speed; once Shift was used in a
        drag, the rest of it is relative too, so letting Shift go never makes the handle jump."""
        fine = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        x = event.position().x()
        last, self._last_x = self._last_x, x
        if not self.isSliderDown() or (self._anchor is None and not fine):
            super().mouseMoveEvent(event)
            return
        speed = FINE_DRAG if fine else 1.0
        if self._anchor is None or self._anchor[2] != speed:  # from where the pointer was last
            self._anchor = (x if last is None else last, self.sliderPosition(), speed)
        x0, v0, _ = self._anchor
        self.setSliderPosition(round(v0 + (x - x0) * self._ticks_per_px() * speed))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        self._anchor = None
        super().mouseReleaseEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        self._anchor = None
        self._last_x = event.position().x()
        super().mousePressEvent(event)


class SliderBinding(Protocol):
    key: str  #: the edit id this slider owns in the document
    label: str
    minimum: float
    maximum: float
    tooltip: str

    def edit(self, doc: EditDocument) -> Any:
        """The edit of ``doc`` this slider shows (None: none yet)."""

    def value(self, doc: EditDocument) -> float: ...

    def apply(self, doc: EditDocument, value: float) -> EditDocument: ...


@dataclass(frozen=True)
class DirectionBinding:
    """A slider along direction ``name`` of library ``library`` (a :class:`DirectionEdit`).

    The edit id is ``"<library>:<name>"``: one edit per direction, stable across values, so the
    edit keeps its place in the document's order while its amount changes. Value 0 removes it.
    """

    library: str
    name: str
    label: str
    minimum: float = -3.0
    maximum: float = 3.0
    tooltip: str = ""
    former: tuple[str, ...] = ()  #: earlier names of a renamed direction: edits saved then are still this slider's

    #: the edit kind the slider moves, and the prefix of its edit id (subclasses change them)
    edit_type: ClassVar[type] = DirectionEdit
    key_prefix: ClassVar[str] = ""

    @property
    def key(self) -> str:
        return f"{self.key_prefix}{self.library}:{self.name}"

    def edit(self, doc: EditDocument) -> Any:
        """This slider's edit in ``doc`` (also one saved under a former name of the direction)."""
        e = doc.edit(self.key)
        for old in self.former:
            if e is not None:
                break
            e = doc.edit(f"{self.key_prefix}{self.library}:{old}")
        return e

    def value(self, doc: EditDocument) -> float:
        e = self.edit(doc)
        return float(e.amount) if isinstance(e, self.edit_type) else 0.0

    def enabled(self, doc: EditDocument) -> bool:
        e = self.edit(doc)
        return e is None or e.enabled

    def extra_fields(self, doc: EditDocument) -> dict[str, Any]:
        """Fields of the edit besides its amount, as ``doc`` asks for them (none here)."""
        return {}

    def apply(self, doc: EditDocument, value: float) -> EditDocument:
        value = round(float(value), 4)
        old = self.edit(doc)
        if value == 0.0:
            return doc.without_edit(old.id) if old is not None else doc
        fields = {"amount": value, **self.extra_fields(doc)}
        if isinstance(old, self.edit_type) and old.name != self.name:  # saved before a rename: now named so
            fields["name"] = self.name
        if isinstance(old, self.edit_type):
            if all(getattr(old, k) == v for k, v in fields.items()):
                return doc
            return doc.with_edit(dataclasses.replace(old, **fields))
        return doc.with_edit(self.edit_type(library=self.library, name=self.name, id=self.key, **fields))


class SliderRow(QWidget):
    """One labelled slider bound to the document through a :class:`SliderBinding`."""

    def __init__(self, ctx: EditorContext, binding: SliderBinding, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.binding = binding
        self._token = 0
        self._key_token = 0
        self._key_time = 0.0
        self._syncing = False
        self._synced: tuple[float, bool] | None = None
        self._synced_from: tuple[Any, Any] = (None, None)  #: (edit, attribute settings) the widgets show

        self.label = QLabel(binding.label)
        self.label.setMinimumWidth(64)
        self.label.setToolTip(binding.tooltip or binding.label)
        self.slider = FineSlider()
        self.slider.setRange(round(binding.minimum * TICKS_PER_UNIT), round(binding.maximum * TICKS_PER_UNIT))
        self.slider.setToolTip(f"{binding.tooltip or binding.label}\nShift+arrows or Shift+drag: fine steps")
        self.slider.setAccessibleName(binding.label)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(binding.minimum, binding.maximum)
        self.spin.setDecimals(2)
        self.spin.setSingleStep(0.05)
        self.spin.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.spin.setFixedWidth(58)
        self.spin.setKeyboardTracking(False)
        self.spin.installEventFilter(self)
        self.reset_button = QToolButton()
        self.reset_button.setIcon(theme.icon("reset"))
        self.reset_button.setToolTip(f"Reset {binding.label} (double-click the name)")
        self.reset_button.setAutoRaise(True)

        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 1, 0, 1)
        lay.setSpacing(6)
        lay.addWidget(self.label, 0)
        lay.addWidget(self.slider, 1)  # the slider takes all the room the row gets
        lay.addWidget(self.spin, 0)
        lay.addWidget(self.reset_button, 0)

        self.slider.sliderPressed.connect(self._on_pressed)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderReleased.connect(self._on_released)
        self.spin.valueChanged.connect(self._on_spin)
        self.reset_button.clicked.connect(self.reset)
        self.label.mouseDoubleClickEvent = lambda e: self.reset()  # type: ignore[method-assign]
        self.sync(ctx.doc)

    # -- document → widgets ---------------------------------------------------------------------
    def sync(self, doc: EditDocument) -> bool:
        """Show ``doc``; False when nothing of this row can have changed since the last call."""
        # documents are immutable: the same edit object and settings mean nothing of this row moved
        # (most rows on each step of another slider's drag)
        source = (self.binding.edit(doc), doc.attributes)
        if self._synced is not None and source[0] is self._synced_from[0] and source[1] is self._synced_from[1]:
            return False
        self._synced_from = source
        value = self.binding.value(doc)
        enabled = getattr(self.binding, "enabled", lambda d: True)(doc)
        if (value, enabled) == self._synced and self.spin.value() == round(value, 2):
            return True  # unchanged: don't touch (and repaint) the widgets
        self._synced = (value, enabled)
        self._syncing = True
        try:
            if not self.slider.isSliderDown():
                self.slider.setValue(round(value * TICKS_PER_UNIT))
            self.spin.setValue(value)
        finally:
            self._syncing = False
        self.reset_button.setEnabled(value != 0.0)
        self.label.setEnabled(enabled)
        return True

    def value(self) -> float:
        return self.slider.value() / TICKS_PER_UNIT

    # -- widgets → document ---------------------------------------------------------------------
    def _on_pressed(self) -> None:
        self._token = new_drag_token()

    def _on_released(self) -> None:
        self.ctx.end_interaction()

    def _on_slider(self, ticks: int) -> None:
        if self._syncing:
            return
        value = ticks / TICKS_PER_UNIT
        self._syncing = True
        self.spin.setValue(value)
        self._syncing = False
        if self.slider.isSliderDown():
            self.commit(value, self._token, interactive=True)
        else:
            self.commit(value, self._step_token(), interactive=False)

    def _on_spin(self, value: float) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.slider.setValue(round(value * TICKS_PER_UNIT))
        self._syncing = False
        self.commit(value, self._step_token(), interactive=False)

    def _step_token(self) -> int:
        now = time.monotonic()
        if now - self._key_time > KEY_MERGE_S or not self._key_token:
            self._key_token = new_drag_token()
        self._key_time = now
        return self._key_token

    def commit(self, value: float, token: int, interactive: bool) -> None:
        doc = self.ctx.doc
        after = self.binding.apply(doc, value)
        if after is doc:
            return
        self.ctx.push(SliderCommand(self.ctx.holder, after, self.binding.key, self.binding.label, value, token,
                                    interactive=interactive, before=doc))

    def reset(self) -> None:
        e = self.binding.edit(self.ctx.doc)  # a direction's also under a former name
        if e is not None:
            self.ctx.push(ResetEditCommand(self.ctx.holder, e.id, self.binding.label))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        # Scrolling the panel must not change the value box it passes over: wheel only when focused.
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            return forward_wheel(obj, event)
        return super().eventFilter(obj, event)


def align_labels(rows: list[SliderRow]) -> None:
    """One label width for a column of rows, so their sliders start (and end) at the same place and
    equal values sit at the same height of the column, as in any mixer or levels panel."""
    if rows:
        width = max(max(r.label.sizeHint().width() for r in rows), rows[0].label.minimumWidth())
        for r in rows:
            r.label.setFixedWidth(width)


class SliderGroup(QWidget):
    """A column of :class:`SliderRow` s, synced with the document."""

    def __init__(self, ctx: EditorContext, bindings: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.rows: list[SliderRow] = []
        for b in bindings:
            row = SliderRow(ctx, b, self)
            lay.addWidget(row)
            self.rows.append(row)
        align_labels(self.rows)
        lay.addStretch(1)
        ctx.holder.changed.connect(self._on_doc)

    def _on_doc(self, doc: EditDocument, _interactive: bool) -> None:
        for row in self.rows:
            row.sync(doc)

    def row(self, key_or_label: str) -> SliderRow:
        for r in self.rows:
            if key_or_label in (r.binding.key, r.binding.label, getattr(r.binding, "name", None)):
                return r
        raise KeyError(key_or_label)


class DirectionSlidersPanel(QWidget):
    """Sliders for every direction of one library of the current model."""

    ready = Signal()  #: sliders were (re)built for the current model

    def __init__(self, ctx: EditorContext, library: str, title: str, minimum: float = -3.0,
                 maximum: float = 3.0) -> None:
        super().__init__()
        self.ctx = ctx
        self.library = library
        self.title = title
        self.minimum, self.maximum = minimum, maximum
        self.group: SliderGroup | None = None
        self._model = ""

        self.hint = QLabel("Waiting for the model…")
        self.hint.setObjectName("Hint")
        self.hint.setWordWrap(True)
        self.reset_all = QToolButton()
        self.reset_all.setText("Reset")
        self.reset_all.setIcon(theme.icon("reset"))
        self.reset_all.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.reset_all.setToolTip(f"Reset every {title} slider")
        self.reset_all.clicked.connect(self._reset_all)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.hint, 1)
        top.addWidget(self.reset_all, 0, Qt.AlignmentFlag.AlignTop)

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 8, 8)
        lay.setSpacing(8)
        lay.addLayout(top)
        lay.addWidget(self.scroll, 1)
        ctx.model_changed.connect(self._on_model)
        ctx.holder.changed.connect(self._on_doc)
        if ctx.model is not None:
            self._on_model(ctx.model)

    def _on_doc(self, doc: EditDocument, _interactive: bool) -> None:
        self.reset_all.setEnabled(any(getattr(e, "library", None) == self.library for e in doc.edits))

    def _on_model(self, desc: Any) -> None:
        if desc.name == self._model and self.group is not None:
            return
        self._model = desc.name
        self.hint.setText(f"Computing {self.title.lower()} for {desc.name}…")
        model = desc.name
        library = self.library
        self.ctx.engine.submit_task(
            DescribeSliders(model, (library,), missing_ok=False),
            on_done=lambda out: self._build(model, out[library]),
            on_error=lambda msg, cancelled: self._unavailable(model, msg))

    def _build(self, model: str, items: list[dict[str, Any]]) -> None:
        if model != self._model:
            return
        bindings = [DirectionBinding(self.library, it["name"], it["label"], self.minimum, self.maximum,
                                     it.get("tooltip", ""), tuple(it.get("former", ()))) for it in items]
        self.group = SliderGroup(self.ctx, bindings)
        self.scroll.setWidget(self.group)
        if self.library == "sefa":
            self.hint.setText("Semantic factors found in this model (SeFa), strongest first.")
            self.hint.setToolTip("Closed-form factorisation of the model's style weights (Shen & Zhou 2021). "
                                 "One unit is one standard deviation of the model's own faces along the factor. "
                                 "Hold \\ to see the original.")
        else:
            self.hint.setText(f"{len(bindings)} directions")
        self._on_doc(self.ctx.doc, False)
        self.ready.emit()

    def _unavailable(self, model: str, message: str) -> None:
        if model != self._model:
            return
        self.group = None
        self.scroll.takeWidget()
        self.hint.setText(f"No {self.title.lower()} for {model}: {message}")

    def _reset_all(self) -> None:
        if any(getattr(e, "library", None) == self.library for e in self.ctx.doc.edits):
            self.ctx.push(ResetAllEditsCommand(self.ctx.holder, self.library, f"{self.title}"))


register_slider_library("sefa", "Factors", order=10, shortcut="Ctrl+Shift+F")
