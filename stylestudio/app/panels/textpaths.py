"""Text paths panel: type pairs of contrasting sentences, train, and get one curved slider each.

The panel builds a :class:`~stylestudio.engine.tasks.textpaths.TrainTextPaths` request and submits
it to the job thread (Jobs panel: progress, cancel); editing goes on meanwhile and each training
step's loss reaches the loss curve through a queued signal. Trained libraries of the current model
are listed with a slider per path; a slider holds a
:class:`~stylestudio.engine.edits.path.PathEdit` (undoable, saved in projects).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit, QPlainTextEdit, QSpinBox, QVBoxLayout, QWidget

from ...engine.edits.path import PathEdit
from ...engine.tasks.textpaths import RemoveTextPath, RenameTextPath, TextPathInfo, TrainTextPaths
from ...errors import StyleStudioError
from ..context import EditorContext
from ..dialogs import confirm_dialog
from . import PanelSpec, register_panel
from .training_widgets import (TRAINING_DOCK_PX, EntryList, LossCurve, RunButtons, SuggestedName, budget_fields,
                               column_scroll, confirm_replace, deletion_question, formerly, show_sliders)
from .sliders import DirectionBinding

METHODS = (("ContraCLIP (curved paths)", "contraclip"), ("Linear (ablation)", "linear"),
           ("StyleCLIP-like (ablation)", "styleclip"))
EXAMPLE = "a smiling face | a face with a neutral expression\nan old person | a young person"


@dataclass(frozen=True)
class PathBinding(DirectionBinding):
    """A slider along text path ``name`` of library ``library`` (one PathEdit; value 0 removes it)."""

    edit_type: ClassVar[type] = PathEdit
    key_prefix: ClassVar[str] = "textpath:"


class _Bridge(QObject):
    """Carries (step, loss) from the job thread to the GUI thread (a queued signal)."""

    update = Signal(int, float)


class TextPathsPanel(QWidget):
    def __init__(self, ctx: EditorContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.job: int | None = None
        self.losses: list[float] = []
        self.libraries: dict[str, list[dict[str, str]]] = {}
        self.shipped: set[str] = set()  #: libraries that ship with StyleStudio (read-only)
        self.hiding: set[str] = set()  #: the user's libraries that hide a shipped one of the same name
        #: asks before deleting or replacing (question, button → yes?); replaceable (tests, scripting)
        self.confirm: Callable[..., bool] = lambda question, action="Delete": confirm_dialog(self, question, action)
        self._model = ""
        self.bridge = _Bridge()
        self.bridge.update.connect(self._on_update)

        self.pairs = QPlainTextEdit()
        self.pairs.setPlaceholderText(EXAMPLE)
        self.pairs.setToolTip("One pair a line: POSITIVE SENTENCE | NEGATIVE SENTENCE.\nThe slider's + end moves "
                              "the face towards the positive sentence.")
        self.pairs.setMaximumHeight(90)
        self.encoder = QComboBox()
        self.encoder.setToolTip("The encoder the paths are trained against: an imported CLIP (`stylestudio "
                                "encoders import FILE`) or the built-in face-text encoder (minilm)")
        self.method = QComboBox()
        for label, key in METHODS:
            self.method.addItem(label, key)
        self.minutes, self.steps = budget_fields(10.0)
        self.rows = QSpinBox()
        self.rows.setRange(0, 64)
        self.rows.setSpecialValueText("first two thirds")
        self.rows.setSuffix(" rows")
        self.rows.setToolTip("The W+ rows the paths may move, from the first (coarse: pose, shape) on. Fewer rows keep "
                             "a path off the fine rows, which hold colour and texture (e.g. an age path that should "
                             "not bleach the skin)")
        self.name = QLineEdit()
        self.name.setToolTip("The library's name (saved in your data folder, one per model). A new name is "
                             "suggested; training under a name that exists replaces that library, after asking")
        self.suggested = SuggestedName(self.name, "my_paths")
        form = QFormLayout()
        form.addRow("Sentence pairs", self.pairs)
        form.addRow("Encoder", self.encoder)
        form.addRow("Method", self.method)
        form.addRow("Time budget", self.minutes)
        form.addRow("Steps", self.steps)
        form.addRow("Latent rows", self.rows)
        form.addRow("Library name", self.name)
        self.buttons = RunButtons("Train", self.start, self.cancel, self.finish)
        self.train_button, self.finish_button, self.cancel_button = (self.buttons.start, self.buttons.finish,
                                                                     self.buttons.cancel)
        buttons = self.buttons.row
        self.train_button.setEnabled(False)  # until the encoders are listed (a quick job): Train would say "none"
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.curve = LossCurve()
        self.library = QComboBox()
        self.library.currentIndexChanged.connect(self._show_library)
        self.entries = EntryList("path", lambda name, typed: self.rename(self.library.currentText(), name, typed),
                                 self.delete_selected, self.delete_library, max_height=110)
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
        lay.addWidget(QLabel("Trained text paths (double-click a name to rename it):"))
        lay.addWidget(self.library)
        lay.addWidget(self.entries)
        lay.addLayout(self.sliders_box)
        lay.addStretch(1)
        column_scroll(self, inner)
        ctx.model_changed.connect(self._on_model)
        if ctx.model is not None:
            self._on_model(ctx.model)

    # ---- the job --------------------------------------------------------------------------------
    def request(self) -> TrainTextPaths:
        from ...engine.text.library import parse_pairs

        lines = [ln for ln in self.pairs.toPlainText().splitlines() if ln.strip()]
        encoder = self.encoder.currentData()
        return TrainTextPaths(self._model or self.ctx.doc.model, parse_pairs(lines), self.name.text().strip(),
                              encoder=encoder, steps=self.steps.value() or None, minutes=self.minutes.value(),
                              method=self.method.currentData(), rows=self.rows.value() or None,
                              on_update=self.bridge.update.emit)

    def start(self) -> int | None:
        """Submit the training job (Jobs panel: progress, cancel); returns its id."""
        from ...engine.resources import check_resource_name

        try:
            req = self.request()
            check_resource_name(req.name, "text path library")
            if req.encoder is None:
                raise StyleStudioError("no CLIP encoder: import one with `stylestudio encoders import FILE`")
        except (ValueError, StyleStudioError) as exc:  # bad pairs, name or encoder: one message, nothing starts
            self.status.setText(str(exc))
            return None
        if not self._may_save_as(req.name):
            self.status.setText("Not started: choose another library name")
            return None
        self.losses = []
        self.curve.set_points([])
        self.status.setText(f"Training {len(req.pairs)} text paths ({', '.join(p[0] for p in req.pairs)})…")
        self.buttons.running(True)
        self.job = self.ctx.engine.submit_task(req, on_done=self._done, on_error=self._failed)
        return self.job

    def _may_save_as(self, name: str) -> bool:
        """Whether the person agrees to what saving a training as ``name`` does to a library of that name."""
        from ...engine.renames import holding

        held = [p["name"] for p in self.libraries.get(name, [])]
        if name in self.shipped and name not in self.hiding:
            return self.confirm(f"“{name}” is a library shipped with StyleStudio ({holding(held, 'path')}). Your "
                                f"library of that name will hide it until you delete yours. Train it?", "Train")
        return name not in self.libraries or confirm_replace(self.confirm, f"your text path library “{name}”", held,
                                                             "path")

    def cancel(self) -> None:
        if self.job is not None:
            self.ctx.engine.cancel(self.job)

    def finish(self) -> None:
        """*Finish now*: end the run after its current step and save the paths learnt so far."""
        if self.job is not None and self.ctx.engine.finish(self.job):
            self.status.setText("Finishing: the paths learnt so far are saved after this step…")

    def _on_update(self, step: int, loss: float) -> None:
        self.losses.append(loss)
        self.curve.set_points([(v, v) for v in self.losses])
        self.status.setText(f"step {step} · loss {loss:.4f}")

    def _done(self, result: tuple[Any, Any]) -> None:
        lib, path = result
        self.job = None
        self.buttons.running(False)
        m = lib.meta
        early = ", finished early" if m.get("finished_early") else ""
        self.status.setText(f"{len(lib.paths)} paths saved as “{path.stem}” ({m['steps']} steps{early}, loss "
                            f"{m['eval_loss_start']:.3f} → {m['eval_loss_end']:.3f})")
        self.refresh(select=path.stem)

    def _failed(self, message: str, cancelled: bool) -> None:
        self.job = None
        self.buttons.running(False)
        self.status.setText("Cancelled" if cancelled else f"Training failed: {message}")

    # ---- libraries ------------------------------------------------------------------------------
    def _on_model(self, desc: Any) -> None:
        if desc.name != self._model:
            self._model = desc.name
            self.rows.setMaximum(desc.num_ws)
            self.refresh()

    def refresh(self, select: str | None = None) -> None:
        """List the encoders and the current model's text path libraries (render lane: quick)."""
        model = self._model
        self.ctx.engine.submit_task(TextPathInfo(model), on_done=lambda info: self._set_info(model, info, select))

    def _set_info(self, model: str, info: dict[str, Any], select: str | None) -> None:
        if model != self._model:
            return
        chosen = self.encoder.currentData()
        self.encoder.clear()
        for name, kind in sorted(info["encoders"], key=lambda e: e[1] == "builtin"):  # a CLIP first
            self.encoder.addItem(name if kind == "clip" else f"{name} (built-in, faces)", name)
        if not self.encoder.count():
            self.encoder.addItem("(none: import a CLIP with `stylestudio encoders import`)", None)
        if chosen is not None and self.encoder.findData(chosen) >= 0:
            self.encoder.setCurrentIndex(self.encoder.findData(chosen))
        self.train_button.setEnabled(self.job is None)
        self.libraries = dict(info["libraries"])
        self.shipped, self.hiding = set(info.get("shipped", ())), set(info.get("hiding", ()))
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
        name = self.library.currentText()
        items = self.libraries.get(name, [])
        self.entries.set_entries([(p["name"], p["label"], f"{p['name']}: + {p['positive']}\n− {p['negative']}"
                                   f"{formerly(p)}") for p in items])
        show_sliders(self, [PathBinding(name, p["name"], p["label"], tooltip=f"+ {p['positive']}\n− {p['negative']}",
                                        former=tuple(p.get("former", ()))) for p in items])
        shipped = name in self.shipped
        self.delete_button.setEnabled(len(items) > 1)  # the last path goes with its library
        self.delete_button.setToolTip("Remove the selected path" + (
            " (saved as your copy of this shipped library, which then hides it)" if shipped else ""))
        self.delete_library_button.setEnabled(bool(name) and not shipped)
        self.delete_library_button.setToolTip(
            "This library ships with StyleStudio and cannot be deleted" if shipped else
            "Delete your library; the shipped library of this name is used again" if name in self.hiding else
            "Delete this library from your data folder")

    def rename(self, library: str, old: str, new: str) -> int:
        """Rename path ``old`` to ``new`` as typed; edits made under the old name stay this slider's."""
        model = self._model

        def done(message: str) -> None:
            self.status.setText(message)
            if model == self._model:
                self.refresh(select=library)

        def failed(message: str, _cancelled: bool) -> None:
            self.status.setText(f"Cannot rename: {message}")
            self._show_library()

        return self.ctx.engine.submit_task(RenameTextPath(model, library, old, new), on_done=done, on_error=failed)

    def delete_selected(self) -> int | None:
        """Delete button: the selected path, after asking."""
        chosen, library = self.entries.selected(), self.library.currentText()
        if chosen is None:
            self.status.setText("Select a path to delete")
            return None
        if not self.confirm(deletion_question(f"the text path “{chosen[1]}” from {library}")):
            return None
        return self.remove(library, chosen[0])

    def delete_library(self) -> int | None:
        """Delete library button: the current library, after asking."""
        library = self.library.currentText()
        if not library or not self.confirm(deletion_question(f"your text path library “{library}”")):
            return None
        return self.remove(library, None)

    def remove(self, library: str, name: str | None) -> int:
        """Remove path ``name`` of ``library`` (None: the whole library); pictures using it keep
        drawing it (the session's earlier version, engine/edits/kept.py)."""
        model = self._model

        def done(message: str) -> None:
            self.status.setText(message)
            if model == self._model:
                self.refresh(select=library if name else None)

        return self.ctx.engine.submit_task(
            RemoveTextPath(model, library, name), on_done=done,
            on_error=lambda message, _c: self.status.setText(f"Cannot remove: {message}"))


register_panel(PanelSpec("textpaths", "Text paths", lambda ctx: TextPathsPanel(ctx), area="left", order=65,
                         visible=False, tab_with="faces", min_dock_px=TRAINING_DOCK_PX))
