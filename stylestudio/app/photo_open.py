"""File ▸ Open Photo… (and dropped image files): detect, choose a face, align, invert, edit.

Everything heavy runs in the worker as jobs, so the window stays live and the status bar shows
the progress bar and Cancel: first detection (several faces → :class:`FaceChooserDialog`, none
→ a message and the open document untouched), then the inversion, which posts its intermediate
reconstructions to the canvas as it refines — a first face within seconds from the estimate
stage, sharper ones while the user watches. Only a finished inversion replaces the document (its
source becomes a :class:`~stylestudio.engine.photo.PhotoSource`), so Cancel loses nothing.

Export then writes the whole photo with the edited face pasted back, or the aligned crop when
File ▸ Export Whole Photo is switched off (the document's ``export.paste_back``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QActionGroup, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QInputDialog, QLabel, QListWidget, QMenu, \
    QListWidgetItem, QVBoxLayout, QWidget

from ..engine.document import EditDocument
from ..engine.inversion import PTI_CHOICES, InversionSettings, pti_choice, with_pti
from ..engine.limits import PHOTO_SUFFIXES
from ..engine.tasks import FindFaces, InvertPhoto
from .modal import modal
from .undo_commands import SetExportSettingsCommand
from .qimage_arrays import qimage_from_array

if TYPE_CHECKING:
    from .main_window import MainWindow

PHOTO_FILTER = f"Photos ({' '.join('*' + s for s in PHOTO_SUFFIXES)});;All files (*)"
CHOOSER_PX = 128
ORIGINAL_MAX_PX = 1024  #: the photo's crop shown as "original" is at most this many pixels a side
STAGES = {"estimate": "Finding a first likeness", "optimise": "Refining the likeness",
          "pti": "Fine-tuning for identity", "done": "Done"}
#: LPIPS (perceptual distance to the photo's crop) → a plain word; the number goes in a tooltip
LIKENESS = ((0.30, "good"), (0.45, "fair"), (float("inf"), "poor"))
BUDGET_KEY = "photo_time_budget_s"  #: the user's inversion time budget, kept in the settings file
PTI_KEY = "photo_fine_tune"  #: the user's PTI choice (a key of PTI_CHOICES), kept in the settings file
MAX_BUDGET_S = 3600


def saved_inversion_settings(extra: dict) -> InversionSettings:
    """The defaults with the user's saved time budget and PTI choice (anything odd in the settings
    file is ignored)."""
    settings = InversionSettings()
    saved = extra.get(BUDGET_KEY)
    if isinstance(saved, (int, float)) and not isinstance(saved, bool) and 0 <= saved <= MAX_BUDGET_S:
        settings = dataclasses.replace(settings, time_budget=float(saved) or None)
    choice = extra.get(PTI_KEY)
    if isinstance(choice, str) and choice in dict(PTI_CHOICES):
        settings = with_pti(settings, choice)
    return settings


def likeness(lpips: float) -> str:
    """"good" / "fair" / "poor": how close the reconstruction looks to the photo (from LPIPS)."""
    return next(word for limit, word in LIKENESS if float(lpips) <= limit)


def likeness_tip(lpips: float) -> str:
    return (f"LPIPS {float(lpips):.3f}: the perceptual distance between the model's face and the photo "
            f"(lower is closer; good ≤ {LIKENESS[0][0]:.2f}, fair ≤ {LIKENESS[1][0]:.2f})")


def inversion_text(name: str, stage: str, fraction: float, lpips: float, remaining: float | None = None) -> str:
    """The one progress line of an inversion: what it does, how far overall, and the likeness in words.

    One overall percentage rather than each stage's own step count ("Refining (2/80)" beside
    "First estimate (20/21)" read as two disagreeing progress reports).
    """
    return (f"Inverting {name}: {STAGES.get(stage, stage)} · {max(0.0, min(1.0, fraction)) * 100:.0f} % · "
            f"likeness: {likeness(lpips)}" + (f" · {remaining:.0f} s left" if remaining is not None else ""))


def identity_text(inversion: dict) -> str:
    """"identity 0.83 (same person ≥ 0.70)" from an inversion record; empty when it was not measured."""
    if "identity" not in inversion:
        return ""
    from ..engine.inversion.identity import identity_line

    return identity_line(float(inversion["identity"]), float(inversion.get("identity_threshold", float("nan"))))


class FaceChooserDialog(QDialog):
    """Several faces in the photo: the user clicks the one to edit (largest first)."""

    def __init__(self, thumbs: list[np.ndarray], descriptions: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a Face")
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(CHOOSER_PX, CHOOSER_PX))
        self.list.setGridSize(QSize(CHOOSER_PX + 24, CHOOSER_PX + 44))
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        for i, (t, d) in enumerate(zip(thumbs, descriptions)):
            item = QListWidgetItem(QIcon(QPixmap.fromImage(qimage_from_array(t))), f"Face {i + 1}\n{d}")
            item.setToolTip(d)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda _i: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"This photo has {len(thumbs)} faces. Which one do you want to edit?"))
        lay.addWidget(self.list, 1)
        lay.addWidget(buttons)
        self.resize(min(900, 80 + len(thumbs) * (CHOOSER_PX + 28)), CHOOSER_PX + 190)

    def chosen(self) -> int:
        return self.list.currentRow()


def ask_face(parent: QWidget, thumbs: list[np.ndarray], descriptions: list[str]) -> int | None:
    dlg = FaceChooserDialog(thumbs, descriptions, parent)
    with modal(dlg) as accepted:
        return dlg.chosen() if accepted else None


class PhotoOpener(QObject):
    """Owns File ▸ Open Photo… / Export Whole Photo and the detect → choose → invert pipeline."""

    #: from the worker thread: (job id, reconstruction, model resolution, status text)
    _preview = Signal(int, object, int, str)
    #: a photo became the document (tests and scripting wait on it)
    opened = Signal(object)

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        #: what the GUI's inversion runs (the defaults: a minute, PTI for far faces; File ▸ Photo Time
        #: Budget… and File ▸ Fine-Tune for Identity)
        self.inversion_settings = saved_inversion_settings(window.settings.extra)
        #: answers "which face?" → index or None; replaceable (tests, scripting)
        self.choose_face: Callable[[list[np.ndarray], list[str]], int | None] = \
            lambda thumbs, descs: ask_face(window, thumbs, descs)
        self.job = 0  #: the running detection/inversion job (0: none)
        self.previews = 0  #: intermediate reconstructions shown for the current photo
        self._ticket = 0  #: which inversion the previews in flight belong to (older ones are dropped)
        self._preview.connect(self._on_preview, Qt.ConnectionType.QueuedConnection)

        w = window
        self.open_action = w._action("open_photo", "Open &Photo…", self.open_dialog, "Ctrl+Shift+O", "open",
                                     "Open a photo: find the face, invert it into the model, edit it")
        self.paste_action = w._action("export_whole_photo", "Export &Whole Photo", None, "", "",
                                      "Export the full photo with the face pasted back (off: the aligned face "
                                      "crop alone)", checkable=True)
        self.paste_action.toggled.connect(self._on_paste_toggled)
        self.budget_action = w._action("photo_time_budget", "Photo &Time Budget…", self.ask_time_budget, "", "",
                                       "How long inverting a photo may take (the best likeness in that time is kept)")
        menu = w.file_menu
        menu.insertAction(w.recent_menu.menuAction(), self.open_action)
        menu.insertAction(w.recent_menu.menuAction(), self.budget_action)
        self.pti_menu = QMenu("&Fine-Tune for Identity", menu)
        self.pti_menu.setToolTipsVisible(True)
        menu.insertMenu(w.recent_menu.menuAction(), self.pti_menu)
        group = QActionGroup(self.pti_menu)
        chosen = self.pti_choice()
        for key, text in PTI_CHOICES:
            action = w._action(f"photo_fine_tune_{key}", text, None, "", "",
                               "Fine-tune the model to an opened photo's face (PTI): a closer likeness for a face "
                               "far from the model, slightly weaker sliders, a larger project", checkable=True)
            action.setChecked(key == chosen)
            action.triggered.connect(lambda _checked=False, key=key: self.set_pti(key))
            group.addAction(action)
            self.pti_menu.addAction(action)
        menu.insertAction(w.actions_by_name["copy"], self.paste_action)
        self._original_key: tuple | None = None  #: (photo key, size) of the crop the canvas shows as original
        w.holder.changed.connect(self._on_doc)
        w.ctx.model_changed.connect(self._on_model)
        self._on_doc(w.holder.doc, False)

    # -- export option ----------------------------------------------------------------------------
    def _on_doc(self, doc: EditDocument, _interactive: bool) -> None:
        self._show_original(doc)
        is_photo = doc.source.kind == "photo"
        self.paste_action.setEnabled(is_photo)
        self.paste_action.blockSignals(True)
        self.paste_action.setChecked(is_photo and doc.export.paste_back)
        self.paste_action.blockSignals(False)

    def _show_original(self, doc: EditDocument) -> None:
        """A photo project's "original" is the photo: its aligned crop, at the model's resolution."""
        src = doc.source
        if src.kind != "photo":
            if self._original_key is not None:
                self._original_key = None
                self.window.canvas.set_original(None)
            return
        model = self.window.ctx.model
        size = model.resolution if model is not None and model.name == doc.model else (
            self.window.canvas.logical or 256)
        size = min(int(size), ORIGINAL_MAX_PX)
        key = (src.key(), size)
        if key == self._original_key:
            return
        self._original_key = key
        try:
            crop = src.aligned(size)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - an unreadable photo must not stop editing
            self.window.canvas.set_original(None)
            self.window.statusBar().showMessage(f"The photo cannot be shown as the original: {exc}", 6000)
            return
        self.window.canvas.set_original(qimage_from_array(np.ascontiguousarray(crop)))

    def _on_model(self, _desc: Any) -> None:
        self._show_original(self.window.holder.doc)  # the crop follows the model's resolution

    def _on_paste_toggled(self, on: bool) -> None:
        doc = self.window.holder.doc
        if doc.source.kind == "photo" and doc.export.paste_back != on:
            export = dataclasses.replace(doc.export, paste_back=bool(on))
            self.window.undo_stack.push(SetExportSettingsCommand(self.window.holder, export))

    # -- time budget ------------------------------------------------------------------------------
    def ask_time_budget(self) -> None:
        now = self.inversion_settings.time_budget or 0
        seconds, ok = QInputDialog.getInt(self.window, "Photo Time Budget",
                                          "Seconds to invert a photo: aligning, refining and fine-tuning "
                                          "(0: no limit)", int(round(now)), 0, MAX_BUDGET_S, 5)
        if ok:
            self.set_time_budget(seconds)

    def set_time_budget(self, seconds: float) -> None:
        """Use and remember ``seconds`` (0: no limit) for the next photos opened."""
        seconds = max(0.0, min(float(seconds), MAX_BUDGET_S))
        self.inversion_settings = dataclasses.replace(self.inversion_settings, time_budget=seconds or None)
        self.window.settings.extra[BUDGET_KEY] = seconds
        self.window.settings.save()
        self.window.statusBar().showMessage(
            f"Photos are now inverted in {seconds:.0f} s" if seconds else "Photos are now inverted without a time limit",
            4000)

    def pti_choice(self) -> str:
        """The PTI choice the current settings amount to (a key of PTI_CHOICES)."""
        return pti_choice(self.inversion_settings)

    def set_pti(self, key: str) -> None:
        """Use and remember one of PTI_CHOICES for the next photos opened."""
        self.inversion_settings = with_pti(self.inversion_settings, key)
        self.window.settings.extra[PTI_KEY] = key
        self.window.settings.save()
        self.window.statusBar().showMessage(f"Fine-tune for identity: {dict(PTI_CHOICES)[key].lower()}", 4000)

    # -- opening ----------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        if not self.window.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open Photo", self.window._start_dir(), PHOTO_FILTER)
        if path:
            self.open_photo(Path(path), ask=False)

    def open_photo(self, path: Path, ask: bool = True) -> int:
        """Detect the faces of ``path`` in the job thread, then go on with :meth:`_on_faces`."""
        path = Path(path)
        if ask and not self.window.maybe_save():
            return 0
        self.job = self.window.engine.submit_task(FindFaces(path, CHOOSER_PX),
                                                  on_done=lambda found: self._on_faces(path, *found),
                                                  on_error=self._failed)
        return self.job

    def _on_faces(self, path: Path, faces: list[Any], thumbs: list[np.ndarray]) -> None:
        self.job = 0
        if not faces:
            self.window.report_error(
                "No face found", f"StyleStudio found no face in {path.name}. Faces need to be at least about "
                                 "40 pixels tall and turned roughly towards the camera. Nothing was changed.")
            return
        index: int | None = 0
        if len(faces) > 1:
            index = self.choose_face(thumbs, [f.describe() for f in faces])
            if index is None or not 0 <= index < len(faces):
                self.window.statusBar().showMessage("Open photo: cancelled", 4000)
                return
        self.invert(path, faces[index].landmarks, index)

    def invert(self, path: Path, landmarks: np.ndarray, index: int = 0) -> int:
        """Align and invert one face as a cancellable job (the :class:`~stylestudio.engine.tasks.InvertPhoto`
        request, in the job thread: editing goes on meanwhile); previews go to the canvas."""
        model = self.window.holder.doc.model
        settings = self.inversion_settings
        self.previews = 0

        self._ticket += 1
        ticket = self._ticket
        desc = self.window.ctx.model
        resolution = desc.resolution if desc is not None and desc.name == model else 0

        def show(u: Any) -> None:  # in the job thread: hand the picture over as a QImage
            if u.image is not None:
                from ..engine.render import to_uint8

                self._preview.emit(ticket, qimage_from_array(to_uint8(u.image[:1])),
                                   resolution or u.image.shape[-1], f"{u.lpips:.6f}")

        request = InvertPhoto(model, path, np.asarray(landmarks, np.float32), index, settings, on_update=show,
                              describe=lambda name, u: inversion_text(name, u.stage, u.fraction, u.lpips, u.remaining))

        def done(source: Any) -> None:
            self.job = 0
            doc = EditDocument(model=model, source=source, title=path.stem)
            self.window.set_document(doc, None, modified=True)
            lpips = float(source.inversion.get("lpips", 0.0))
            ident = identity_text(source.inversion)
            tuned = " and the model fine-tuned to it" if source.inversion.get("pti") else ""
            self.window.statusBar().showMessage(
                f"{path.name}: face inverted{tuned}, "
                f"likeness {likeness(lpips)}{', ' + ident if ident else ''} — ready to edit",
                8000)
            self.window.render_label.setToolTip(likeness_tip(lpips) + (f"\n{ident}: cosine similarity of face "
                                                                      "embeddings, photo vs the model's face"
                                                                      if ident else ""))
            self.opened.emit(doc)

        self.job = self.window.engine.submit_task(request, done, self._failed)
        return self.job

    def _on_preview(self, ticket: int, image: QImage, resolution: int, text: str) -> None:
        if ticket != self._ticket or not self.job:
            return  # cancelled or superseded: never show a stale reconstruction
        self.previews += 1
        self.window.canvas.set_frame(image, resolution, -1, "preview")
        # the progress line is the status bar's job text; here only what the picture is
        self.window.render_label.setText("Inverting · the model's face so far")
        try:
            self.window.render_label.setToolTip(likeness_tip(float(text)))
        except ValueError:
            pass

    def _failed(self, message: str, cancelled: bool) -> None:
        self.job = 0
        self.window._rerender()  # put the open document back on the canvas
        if cancelled:
            self.window.statusBar().showMessage("Open photo: cancelled — nothing was changed", 5000)
        else:
            self.window.report_error("Could not open the photo", message)
