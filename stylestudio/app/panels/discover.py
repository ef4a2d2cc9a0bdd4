"""Discover panel: find new slider directions of the current model (ContraFeat, PCA, SeFa).

The panel only builds a :class:`~stylestudio.engine.tasks.discover.Discover` request and submits
it to the job thread (Jobs panel: progress, cancel); editing goes on meanwhile. Each training
step's update reaches the panel through a queued signal and draws the loss curve; every few
minutes (and at the end) a strip per direction shows the current face moved −2…+2 along it, with
the W+ rows it acts on as a small bar. A finished library is listed below with its sliders; a
direction is renamed by editing its name and removed with Delete; the library is saved in the
user's data folder and usable in every project and from the command line.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QSizePolicy, QSpinBox,
                               QVBoxLayout, QWidget)

from ...errors import StyleStudioError
from ...engine.discovery.trainer import STRIP_STEPS, DiscoverySettings, DiscoveryUpdate
from ...engine.tasks.discover import DiscoveredLibraries, Discover, RemoveDirection, RenameDirection
from ..context import EditorContext
from ..dialogs import confirm_dialog
from ..qimage_arrays import qimage_from_array
from . import PanelSpec, register_panel
from .training_widgets import (TRAINING_DOCK_PX, EntryList, LossCurve, RunButtons, SuggestedName, budget_fields,
                               column_scroll, confirm_replace, deletion_question, formerly, show_sliders)

METHODS = (("ContraFeat (binary contrast)", "contrafeat"), ("ContraFeat (prototypes)", "contrafeat-proto"),
           ("PCA (instant)", "pca"), ("SeFa (instant)", "sefa"))
SENSORS = (("VGG16 features to relu3_3", "vgg16-relu3_3"), ("VGG16 features to relu4_3", "vgg16-relu4_3"),
           ("The generator's own features", "generator"))
STRIP_SECONDS = 150.0  #: how often the strips are redrawn while training


class _Bridge(QObject):
    """Carries a job thread's :class:`DiscoveryUpdate` to the GUI thread (a queued signal)."""

    update = Signal(object)


class RowBar(QWidget):
    """A direction's weight on each W+ row, as bars (rows that feed nothing stay empty)."""

    def __init__(self, weights: list[float]) -> None:
        super().__init__()
        self.weights = list(weights)
        self.setFixedHeight(18)
        self.setMinimumWidth(max(40, 4 * len(self.weights)))
        self.setToolTip("W+ rows it acts on: " + ", ".join(f"{i}:{w:.2f}" for i, w in enumerate(self.weights)))

    def paintEvent(self, _event: Any) -> None:
        if not self.weights:
            return
        p = QPainter(self)
        top = max(self.weights) or 1.0
        w = self.width() / len(self.weights)
        colour = self.palette().highlight().color()
        for i, v in enumerate(self.weights):
            h = (self.height() - 2) * v / top
            p.fillRect(int(i * w), int(self.height() - h), max(1, int(w) - 1), int(h), colour)


class StripImage(QWidget):
    """A direction's strip (the face at each step), drawn as large as the row allows and never wider:
    a fixed-size picture would widen the side column past the window's dock and be clipped."""

    def __init__(self, pixmap: QPixmap) -> None:
        super().__init__()
        self.pixmap = pixmap
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return self.pixmap.size()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(self.pixmap.width() // 4, self.pixmap.height() // 4)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt name)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt name)
        return min(self.pixmap.height(), round(width * self.pixmap.height() / max(1, self.pixmap.width())))

    def paintEvent(self, _event: Any) -> None:
        scaled = self.pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        scaled = scaled.boundedTo(self.pixmap.size())
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawPixmap(QRect(QPoint(0, (self.height() - scaled.height()) // 2), scaled), self.pixmap)


class DiscoverPanel(QWidget):
    """Settings, a running job's loss and strips, and the discovered libraries with their sliders."""

    def __init__(self, ctx: EditorContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.job: int | None = None
        self.losses: list[tuple[float, float]] = []
        self.libraries: dict[str, list[dict[str, Any]]] = {}
        #: asks before deleting or replacing (question, button → yes?); replaceable (tests, scripting)
        self.confirm: Callable[..., bool] = lambda question, action="Delete": confirm_dialog(self, question, action)
        self._model = ""
        self.bridge = _Bridge()
        self.bridge.update.connect(self._on_update)

        self.method = QComboBox()
        for label, key in METHODS:
            self.method.addItem(label, key)
        self.sensor = QComboBox()
        for label, key in SENSORS:
            self.sensor.addItem(label, key)
        self.directions = QSpinBox()
        self.directions.setRange(2, 64)
        self.directions.setValue(10)
        self.minutes, self.steps = budget_fields(20.0)
        self.render_size = QComboBox()
        for px in (64, 128, 256):
            self.render_size.addItem(f"{px} px", px)
        self.render_size.setCurrentIndex(1)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.name = QLineEdit()
        self.name.setToolTip("The direction library's name (saved in your data folder, one per model). A new name "
                             "is suggested; discovering under the name of a discovered library replaces it, after "
                             "asking")
        self.suggested = SuggestedName(self.name, "discovered")
        form = QFormLayout()
        form.addRow("Method", self.method)
        form.addRow("Features", self.sensor)
        form.addRow("Directions", self.directions)
        form.addRow("Time budget", self.minutes)
        form.addRow("Steps", self.steps)
        form.addRow("Render size", self.render_size)
        form.addRow("Seed", self.seed)
        form.addRow("Library name", self.name)

        self.buttons = RunButtons("Discover", self.start, self.cancel, self.finish)
        self.start_button, self.finish_button, self.cancel_button = (self.buttons.start, self.buttons.finish,
                                                                     self.buttons.cancel)
        buttons = self.buttons.row
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.curve = LossCurve()
        self.strips = QVBoxLayout()
        self.strip_box = QWidget()
        self.strip_box.setLayout(self.strips)

        self.library = QComboBox()
        self.library.currentIndexChanged.connect(self._show_library)
        self.entries = EntryList("direction", lambda name, typed: self.rename(self.library.currentText(), name, typed),
                                 self.delete_selected, self.delete_library, max_height=140)
        self.list, self.delete_button, self.delete_library_button = (self.entries.list, self.entries.delete_button,
                                                                     self.entries.delete_library_button)
        self.sliders_box = QVBoxLayout()
        self.group = None

        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addWidget(self.curve)
        lay.addWidget(self.strip_box)
        libraries_label = QLabel("Discovered libraries (double-click a name to rename it):")
        libraries_label.setWordWrap(True)
        lay.addWidget(libraries_label)
        lay.addWidget(self.library)
        lay.addWidget(self.entries)
        lay.addLayout(self.sliders_box)
        lay.addStretch(1)
        column_scroll(self, inner)
        ctx.model_changed.connect(self._on_model)
        if ctx.model is not None:
            self._on_model(ctx.model)

    # ---- the job --------------------------------------------------------------------------------
    def settings(self) -> DiscoverySettings:
        steps = self.steps.value() or None
        return DiscoverySettings(method=self.method.currentData(), directions=self.directions.value(),
                                 minutes=self.minutes.value(), steps=steps, size=int(self.render_size.currentData()),
                                 sensor=self.sensor.currentData(), seed=self.seed.value())

    def request(self) -> Discover:
        return Discover(self._model or self.ctx.doc.model, self.name.text().strip(), self.settings(),
                        strip_seconds=STRIP_SECONDS, on_update=self.bridge.update.emit)

    def start(self) -> int | None:
        """Submit the discovery job (Jobs panel: progress, cancel); returns its id."""
        try:
            req = self.request()
            from ...engine.tasks.discover import check_discovery_name

            check_discovery_name(req.name)
        except (ValueError, StyleStudioError) as exc:  # bad settings or name: one message, nothing starts
            self.status.setText(str(exc))
            return None
        if req.name in self.libraries and not confirm_replace(
                self.confirm, f"your discovered library “{req.name}”", [d["name"] for d in self.libraries[req.name]],
                "direction"):
            self.status.setText("Not started: choose another library name")
            return None
        self.losses = []
        self.curve.set_points([])
        self._clear_strips()
        self.status.setText(f"Discovering {req.settings.directions} directions of {req.model}…")
        self.buttons.running(True)
        self.job = self.ctx.engine.submit_task(req, on_done=self._done, on_error=self._failed)
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.ctx.engine.cancel(self.job)

    def finish(self) -> None:
        """*Finish now*: end the run after its current step and save the directions found so far."""
        if self.job is not None and self.ctx.engine.finish(self.job):
            self.status.setText("Finishing: the directions found so far are saved after this step…")

    def _on_update(self, u: DiscoveryUpdate) -> None:
        if u.step and not u.final:
            self.losses.append((u.loss, u.contrast))
            self.curve.set_points(self.losses)
            self.status.setText(f"step {u.step}{f'/{u.steps}' if u.steps else ''} · loss {u.loss:+.4f} · "
                                f"{u.seconds / 60:.1f} min")
        if u.strips is not None:
            self._show_strips(u.strips, u.row_weights)

    def _done(self, result: tuple[Any, Any]) -> None:
        lib, path = result
        self.job = None
        self.buttons.running(False)
        early = " (finished early)" if lib.meta.get("finished_early") else ""
        self.status.setText(f"{len(lib.names())} directions saved as “{path.stem}”{early}")
        self.refresh(select=path.stem)

    def _failed(self, message: str, cancelled: bool) -> None:
        self.job = None
        self.buttons.running(False)
        self.status.setText("Cancelled" if cancelled else f"Discovery failed: {message}")

    # ---- strips -----------------------------------------------------------------------------------
    def _clear_strips(self) -> None:
        while self.strips.count():
            item = self.strips.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
                item.widget().deleteLater()

    def _show_strips(self, strips: np.ndarray, weights: np.ndarray | None) -> None:
        self._clear_strips()
        steps = " ".join(f"{s:+g}" for s in STRIP_STEPS)
        for k, strip in enumerate(strips):
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            h.addWidget(QLabel(f"{k + 1}"))
            if weights is not None:
                h.addWidget(RowBar(list(weights[k])))
            img = StripImage(QPixmap.fromImage(qimage_from_array(np.ascontiguousarray(np.concatenate(list(strip), 1)))))
            img.setToolTip(f"Direction {k + 1} at {steps}")
            h.addWidget(img, 1)
            self.strips.addWidget(row)

    # ---- libraries ---------------------------------------------------------------------------------
    def _on_model(self, desc: Any) -> None:
        if desc.name != self._model:
            self._model = desc.name
            self.refresh()

    def refresh(self, select: str | None = None) -> None:
        """List the discovered libraries of the current model (render lane: quick)."""
        model = self._model
        self.ctx.engine.submit_task(DiscoveredLibraries(model), on_done=lambda libs: self._set_libraries(model, libs, select))

    def _set_libraries(self, model: str, libs: dict[str, Any], select: str | None) -> None:
        if model != self._model:
            return
        self.libraries = dict(libs)
        self.suggested.update(self.libraries)
        current = select or self.library.currentText()
        self.library.blockSignals(True)
        self.library.clear()
        self.library.addItems(list(self.libraries))
        if current in self.libraries:
            self.library.setCurrentText(current)
        self.library.blockSignals(False)
        self._show_library()

    def _show_library(self) -> None:
        from .sliders import DirectionBinding

        name = self.library.currentText()
        items = self.libraries.get(name, [])
        self.entries.set_entries([(d["name"], d["label"], f"{d['name']}: acts on W+ rows "
                                   f"{', '.join(str(r) for r in d['layers']) or 'all'}{formerly(d)}") for d in items])
        show_sliders(self, [DirectionBinding(name, d["name"], d["label"], former=tuple(d.get("former", ())))
                            for d in items])
        self.delete_button.setEnabled(bool(items))
        self.delete_library_button.setEnabled(bool(name))

    def rename(self, library: str, old: str, new: str) -> int:
        model = self._model

        def failed(message: str, _cancelled: bool) -> None:
            self.status.setText(f"Cannot rename: {message}")
            self._show_library()

        return self.ctx.engine.submit_task(RenameDirection(model, library, old, new),
                                           on_done=lambda desc: self._library_changed(model, library, desc),
                                           on_error=failed)

    def delete_selected(self) -> None:
        """Delete button: the selected direction, after asking."""
        chosen, library = self.entries.selected(), self.library.currentText()
        if chosen is not None and self.confirm(deletion_question(f"the direction “{chosen[1]}” from {library}")):
            self.remove(library, chosen[0])

    def delete_library(self) -> None:
        """Delete library button: the current library, after asking."""
        library = self.library.currentText()
        if library and self.confirm(deletion_question(f"the direction library “{library}”")):
            self.remove(library, None)

    def remove(self, library: str, name: str | None) -> int:
        model = self._model
        return self.ctx.engine.submit_task(
            RemoveDirection(model, library, name), on_done=lambda desc: self._library_changed(model, library, desc),
            on_error=lambda message, _c: self.status.setText(f"Cannot remove: {message}"))

    def _library_changed(self, model: str, library: str, desc: list[dict[str, Any]]) -> None:
        if model != self._model:
            return
        if desc:
            self.libraries[library] = desc
        else:
            self.libraries.pop(library, None)
        self._set_libraries(model, self.libraries, library if desc else None)


register_panel(PanelSpec("discover", "Discover", lambda ctx: DiscoverPanel(ctx), area="left", order=60,
                         visible=False, tab_with="faces", min_dock_px=TRAINING_DOCK_PX))  # a tab of the full-height left column, not a strip under it
