"""Named attribute sliders (age, gender, smile, yaw, …) that do not drag each other along.

The panel shows one slider per direction of the model's ``attributes`` library, labelled with
what a slider unit means in the attribute's own units (the library measured it: "±1 ≈ 6.3
years"). Conditional editing lives in each edit's ``keep``: with **Keep others** on (the
default) a slider holds every other named attribute still; a **pinned** attribute is held still
by every slider even with Keep others off. The switches are document state
(``EditDocument.attributes``): saved in the project, undoable, and the widgets only show the
document. Switching either rewrites ``keep`` on the attribute edits already in the document (one
undo step), so what is on screen always matches the switches.

Under a moved slider a grey line says what the *other* attributes did ("Mouth open unchanged ·
Skin tone −2 L*"), from the effects the library measured on sample faces when it was built, for
the keep switches in force; the worker hands them over with the slider list, so a drag only
scales and formats them (:func:`effects_line`).

Below the named sliders are the user's own sliders (the ``custom`` library, made with
"New slider from examples…"; see :mod:`..examples_dialog`).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QToolButton,
                               QVBoxLayout, QWidget)

from ...engine.document import AttributeSettings, EditDocument
from ...engine.edits.direction import DirectionEdit
from ...engine.tasks.directions import DescribeSliders
from .. import theme
from ..context import EditorContext
from ..undo_commands import KeepSwitchCommand, ResetLibrariesCommand
from . import PanelSpec, register_panel
from .sliders import DirectionBinding, SliderRow, align_labels

LIBRARY = "attributes"
CUSTOM = "custom"

#: compact unit names for the value label (the tooltip gives the full one)
SHORT_UNITS = {"years": "yr", "degrees": "°", "CIE L*": "L*", "eye aspect ratio": "EAR",
               "lip gap / mouth width": "gap", "L* right − left": "ΔL*"}
#: a classifier's "logit P(happy)" is shown as a direction in words ("↑ happy"), not as "+5.6 logit"
LOGIT_UNIT = re.compile(r"^logit P\((.+)\)$")
#: an attribute that moved by less than this many of its slider units reads "unchanged" (an eighth
#: of its spread across faces: below what one face's predictors can tell apart)
UNCHANGED = 0.25
READOUT_ENTRIES = 3  #: attributes named in a slider's readout at most (then "others unchanged")


@dataclass(frozen=True)
class AttributeInfo:
    """How to write an attribute's change: its label, slider unit and unit name."""

    label: str
    unit_change: float
    unit: str


def _format_change(info: AttributeInfo, change: float) -> str:
    odds = LOGIT_UNIT.match(info.unit)
    if odds:
        return f"{'↑' if change > 0 else '↓'} {odds.group(1)}"
    digits = 0 if abs(info.unit_change) >= 5 else (1 if abs(info.unit_change) >= 0.5 else 2)
    return f"{change:+.{digits}f} {SHORT_UNITS.get(info.unit, info.unit)}".strip()


def effects_line(value: float, effects: dict[str, dict[str, float]], partners: list[str], keep: tuple[str, ...],
                 infos: dict[str, AttributeInfo]) -> str:
    """What the other attributes did at slider ``value``: the measured per-unit effects (kept
    attributes from the "keep others" measurement, the rest from the uncorrected one) scaled by
    ``value``. Correlated partners are always named; others only when they moved."""
    if not value or not effects:
        return ""
    held, free = effects.get("others", {}), effects.get("none", {})
    moved: dict[str, float] = {}
    for name, info in infos.items():
        per_unit = (held if name in keep else free).get(name)
        if per_unit is not None and info.unit_change:
            moved[name] = value * per_unit
    units = {n: abs(c / infos[n].unit_change) for n, c in moved.items()}
    shown = [n for n in partners if n in moved]
    shown += sorted((n for n in moved if n not in shown and units[n] >= UNCHANGED), key=lambda n: -units[n])
    shown = shown[:READOUT_ENTRIES]
    parts = [f"{infos[n].label} " + ("unchanged" if units[n] < UNCHANGED else _format_change(infos[n], moved[n]))
             for n in shown]
    rest = [n for n in moved if n not in shown]
    if rest:  # the line stays short; "…" says that more moved than it names
        parts.append("others unchanged" if all(units[n] < UNCHANGED for n in rest) else "…")
    return " · ".join(parts)


@dataclass(frozen=True)
class AttributeBinding(DirectionBinding):
    """A direction slider whose edit carries ``keep``: the attributes to hold still while it moves.

    ``keep_for(doc, name)`` reads the switches of the document being changed, so a move always
    uses the switches as they are in that document.
    """

    keep_for: Callable[[EditDocument, str], tuple[str, ...]] = field(default=lambda _d, _n: (), compare=False)

    def extra_fields(self, doc: EditDocument) -> dict[str, Any]:
        return {"keep": self.keep_for(doc, self.name)}


def with_keep(doc: EditDocument, names: list[str] | tuple[str, ...]) -> EditDocument:
    """``doc`` with every attribute edit's ``keep`` recomputed from its switches (they changed)."""
    out = doc
    for e in doc.edits:
        if isinstance(e, DirectionEdit) and e.library == LIBRARY:
            keep = doc.attributes.keep_for(names, e.name)
            if keep != e.keep:
                out = out.with_edit(dataclasses.replace(e, keep=keep))
    return out


class AttributeRow(SliderRow):
    """A slider row plus the change in the attribute's units and a pin toggle."""

    def __init__(self, ctx: EditorContext, binding: DirectionBinding, unit_change: float | None, unit: str,
                 pinnable: bool, effects: dict[str, dict[str, float]] | None = None,
                 partners: list[str] | None = None, faces: int = 0) -> None:
        self.unit_change = unit_change
        self.unit = SHORT_UNITS.get(unit, unit)
        self.units = QLabel()
        self.effects = effects or {}
        self.partners = list(partners or [])
        #: the other named attributes (set by the panel once every row is known)
        self.infos: dict[str, AttributeInfo] = {}
        self._readout_for: tuple[float, tuple[str, ...]] | None = None
        #: what the other attributes did; the panel places it under the row
        self.readout = QLabel()
        self.readout.setObjectName("Hint")
        self.readout.setWordWrap(True)
        self.readout.setVisible(False)
        self.readout.setToolTip(f"What the other attributes did, on average over {faces} sample faces measured when "
                                "the sliders were built, with the keep switches as they are now; “unchanged”: "
                                f"less than {UNCHANGED / 2:g} of the attribute's spread across faces")
        super().__init__(ctx, binding)
        self.units.setFixedWidth(58)
        self.units.setObjectName("Hint")
        self.units.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.units.setToolTip(binding.tooltip)
        lay = self.layout()
        lay.insertWidget(lay.indexOf(self.spin) + 1, self.units)  # type: ignore[attr-defined]
        self.pin = QToolButton()
        self.pin.setCheckable(True)
        self.pin.setAutoRaise(True)
        self.pin.setIcon(theme.icon("pin"))
        self.pin.setProperty("icon_name", "pin")
        self.pin.setToolTip(f"Pin {binding.label}: no other slider moves it")
        self.pin.setAccessibleName(f"Pin {binding.label}")
        self.pin.setVisible(pinnable)
        lay.addWidget(self.pin)  # type: ignore[attr-defined]
        if unit_change is None:
            self.units.hide()
        self._show_units(binding.value(ctx.doc))

    def sync(self, doc: EditDocument) -> bool:
        if not super().sync(doc):
            return False
        value = self.binding.value(doc)
        self._show_units(value)
        self.show_readout(value, getattr(self.binding, "keep_for", lambda _d, _n: ())(doc, self.binding.name))
        return True

    def set_others(self, infos: dict[str, AttributeInfo]) -> None:
        """The other named attributes the readout may speak of (known once every row is built)."""
        self.infos = infos
        self._readout_for = None
        self._synced_from = (None, None)  # the next sync shows the readout with them

    def show_readout(self, value: float, keep: tuple[str, ...]) -> None:
        """Scale the measured effects to ``value`` (formatting only: nothing is measured here)."""
        if not hasattr(self, "readout") or (value, keep) == self._readout_for:
            return
        self._readout_for = (value, keep)
        text = effects_line(value, self.effects, self.partners, keep, self.infos)
        self.readout.setText(text)
        self.readout.setVisible(bool(text))

    def _show_units(self, value: float) -> None:
        if self.unit_change is not None and hasattr(self, "pin"):
            change = value * self.unit_change
            digits = 0 if abs(self.unit_change) >= 5 else (1 if abs(self.unit_change) >= 0.5 else 2)
            odds = LOGIT_UNIT.match(self.unit)
            if odds:  # a classifier's logit means nothing to a photographer: say which way, number in the tip
                self.units.setText(f"{'↑' if change > 0 else '↓'} {odds.group(1)}" if value else "")
                self.units.setToolTip(f"{change:+.{digits}f} on the {odds.group(1)} classifier's logit scale "
                                      f"(odds × {math.exp(min(abs(change), 50)):.3g})" if value
                                      else self.binding.tooltip)
                return
            self.units.setText(f"{change:+.{digits}f} {self.unit}".strip() if value else "")


class AttributesPanel(QWidget):
    """Sliders for the model's named attributes, Keep others, pins, and the user's own sliders."""

    ready = Signal()  #: rows were (re)built for the current model

    def __init__(self, ctx: EditorContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.names: list[str] = []  #: the attribute library's directions, in order
        self.rows: list[AttributeRow] = []
        self._model = ""
        self._setting_state = False

        self.hint = QLabel("Waiting for the model…")
        self.hint.setObjectName("Hint")
        self.hint.setWordWrap(True)
        self.reset_all = QToolButton()
        self.reset_all.setText("Reset")
        self.reset_all.setIcon(theme.icon("reset"))
        self.reset_all.setProperty("icon_name", "reset")
        self.reset_all.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.reset_all.setToolTip("Reset every attribute slider")
        self.reset_all.clicked.connect(self._reset_all)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.hint, 1)
        top.addWidget(self.reset_all, 0, Qt.AlignmentFlag.AlignTop)

        self.keep_box = QCheckBox("Keep others")
        self.keep_box.setChecked(ctx.doc.attributes.keep_others)
        self.keep_box.setToolTip("Each slider holds every other named attribute still (conditional editing). "
                                 "Pinned attributes are held still even when this is off.")
        self.keep_box.toggled.connect(self._on_keep_toggled)
        self.new_button = QPushButton("New slider from examples…")
        self.new_button.setToolTip("Pick faces with and without a quality and get a slider for it")
        self.new_button.clicked.connect(self.new_slider_dialog)
        switches = QHBoxLayout()
        switches.setContentsMargins(0, 0, 0, 0)
        switches.addWidget(self.keep_box)
        switches.addStretch(1)
        switches.addWidget(self.new_button)

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 8, 8)
        lay.setSpacing(8)
        lay.addLayout(top)
        lay.addLayout(switches)
        lay.addWidget(self.scroll, 1)
        ctx.model_changed.connect(self._on_model)
        ctx.holder.changed.connect(self._on_doc)
        if ctx.model is not None:
            self._on_model(ctx.model)

    # -- keep / pins: document state, the widgets show it ---------------------------------------
    @property
    def settings(self) -> AttributeSettings:
        return self.ctx.doc.attributes

    @property
    def keep_others(self) -> bool:
        return self.settings.keep_others

    @property
    def pinned(self) -> frozenset[str]:
        return frozenset(self.settings.pins)

    def keep_for(self, name: str, doc: EditDocument | None = None) -> tuple[str, ...]:
        """What a move of ``name`` holds still: all others (Keep others) or the pinned ones."""
        return (doc if doc is not None else self.ctx.doc).attributes.keep_for(self.names, name)

    def _show_settings(self, settings: AttributeSettings) -> None:
        """Put the document's switches on the widgets (without the widgets pushing a change)."""
        self._setting_state = True
        try:
            self.keep_box.setChecked(settings.keep_others)
            for row in self.rows:
                if row.binding.library == LIBRARY:
                    row.pin.setChecked(row.binding.name in settings.pins)
        finally:
            self._setting_state = False

    def set_keep_others(self, on: bool) -> None:
        self._change(dataclasses.replace(self.settings, keep_others=bool(on)),
                     f"Keep others: {'on' if on else 'off'}")

    def set_pinned(self, name: str, on: bool) -> None:
        label = next((r.binding.label for r in self.rows if r.binding.name == name), name)
        self._change(self.settings.with_pin(name, on), f"{'Pin' if on else 'Unpin'} {label}")

    def _change(self, new: AttributeSettings, text: str) -> None:
        doc = self.ctx.doc
        if new == doc.attributes:
            return
        after = with_keep(doc.with_attributes(new), self.names)
        self.ctx.push(KeepSwitchCommand(self.ctx.holder, after, text, before=doc))

    def _on_keep_toggled(self, on: bool) -> None:
        if not self._setting_state:
            self.set_keep_others(on)

    # -- building -------------------------------------------------------------------------------
    def _on_model(self, desc: Any) -> None:
        if desc.name == self._model and self.rows:
            return
        self._model = desc.name
        self.reload()

    def reload(self) -> None:
        """Ask the worker for the libraries of the current model and rebuild the rows."""
        model = self._model
        self.hint.setText(f"Loading the attributes of {model}…")
        self.ctx.engine.submit_task(DescribeSliders(model, (LIBRARY, CUSTOM)),
                                    on_done=lambda items: self._build(model, items),
                                    on_error=lambda msg, cancelled: self._unavailable(model, msg))

    def _build(self, model: str, items: dict[str, list[dict[str, Any]]]) -> None:
        if model != self._model:
            return
        named, custom = items.get(LIBRARY, []), items.get(CUSTOM, [])
        self.names = [it["name"] for it in named]
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.rows = []
        infos = {it["name"]: AttributeInfo(it["label"], float(it["unit_change"]), it.get("unit", ""))
                 for it in named if it.get("unit_change")}
        for it in named:
            row = self._row(AttributeBinding(LIBRARY, it["name"], it["label"], tooltip=it["tooltip"],
                                             keep_for=lambda d, n: self.keep_for(n, d)), it, pinnable=True)
            row.pin.toggled.connect(lambda on, n=it["name"]: None if self._setting_state else self.set_pinned(n, on))
            row.set_others({n: i for n, i in infos.items() if n != it["name"]})
            lay.addWidget(row)
            lay.addWidget(row.readout)
        if custom:
            head = QLabel("Your sliders")
            head.setObjectName("Hint")
            lay.addSpacing(6)
            lay.addWidget(head)
            for it in custom:
                row = self._row(DirectionBinding(CUSTOM, it["name"], it["label"], tooltip=it["tooltip"]), it,
                                pinnable=False)
                lay.addWidget(row)
                lay.addWidget(row.readout)
        align_labels(self.rows)
        lay.addStretch(1)
        self.scroll.setWidget(body)
        if named:
            self.hint.setText(f"{len(named)} named attributes. One unit is about half the attribute's spread "
                              "across faces.")
        else:
            self.hint.setText(f"{model} has no named attributes (`stylestudio directions build` makes them)."
                              + (" Your own sliders are below." if custom else ""))
        self.keep_box.setEnabled(bool(named))
        self._on_doc(self.ctx.doc, False)
        self.ready.emit()

    def _row(self, binding: DirectionBinding, it: dict[str, Any], pinnable: bool) -> AttributeRow:
        row = AttributeRow(self.ctx, binding, it.get("unit_change"), it.get("unit", ""), pinnable,
                           it.get("effects"), it.get("partners"), int(it.get("faces", 0)))
        self.rows.append(row)
        return row

    def _unavailable(self, model: str, message: str) -> None:
        if model != self._model:
            return
        self.rows = []
        self.names = []
        self.scroll.takeWidget()
        self.hint.setText(f"No attributes for {model}: {message}")

    def _on_doc(self, doc: EditDocument, _interactive: bool) -> None:
        self._show_settings(doc.attributes)
        for row in self.rows:
            row.sync(doc)
        self.reset_all.setEnabled(any(getattr(e, "library", None) in (LIBRARY, CUSTOM) for e in doc.edits))

    def row(self, name_or_label: str) -> AttributeRow:
        for r in self.rows:
            if name_or_label in (r.binding.key, r.binding.label, r.binding.name):
                return r
        raise KeyError(name_or_label)

    def _reset_all(self) -> None:
        if any(getattr(e, "library", None) in (LIBRARY, CUSTOM) for e in self.ctx.doc.edits):
            self.ctx.push(ResetLibrariesCommand(self.ctx.holder, (LIBRARY, CUSTOM), "attributes"))

    # -- new slider from examples ---------------------------------------------------------------
    def new_slider_dialog(self) -> None:
        from ..examples_dialog import ExamplesDialog
        from ..modal import modal

        dlg = ExamplesDialog(self.ctx, self)
        with modal(dlg) as accepted:
            if accepted:
                self.create_slider(dlg.slider_name(), dlg.positives(), dlg.negatives(), dlg.keep_named())

    def create_slider(self, name: str, positives: list[int], negatives: list[int], keep_named: bool = True,
                      on_done: Callable[[str], None] | None = None) -> int:
        """Fit a slider from example seeds (a :class:`~stylestudio.engine.tasks.SliderFromExamples`
        job: the job thread, shown in the Jobs panel, editing goes on), save it in the user's
        library, show it. Returns the job id."""
        from ...engine.tasks import SliderFromExamples

        doc = self.ctx.doc
        psi = float(getattr(doc.source, "psi", 0.7))
        keep = tuple(self.names) if keep_named else tuple(sorted(self.pinned))
        model = doc.model

        def done(path: str) -> None:
            self.ctx.status(f"New slider “{name}” saved in {path}", 6000)
            if model == self._model:
                self.reload()  # the job's library reached the render session before this (EngineClient)
            if on_done is not None:
                on_done(name)

        request = SliderFromExamples(model, name, tuple(positives), tuple(negatives), psi, keep)
        return self.ctx.window.run_task(request, done, "Could not make the slider")


register_panel(PanelSpec("attributes", "Attributes", lambda ctx: AttributesPanel(ctx), area="right", order=15,
                         icon="sliders", shortcut="Ctrl+Shift+A", tab_with="sliders-sefa"))
