"""The File menu's work: new, open (dialog, recent files, dropped files), save, export, copy.

Every failure becomes one line naming the file (:func:`file_error`) in the window's error
report; the editor keeps running and the document is untouched.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QAbstractButton, QFileDialog, QMessageBox

from ..engine.document import EditDocument, SeedSource
from ..engine.model_store import DEFAULT_MODEL, ModelStore
from ..engine.project import SUFFIX, load_project, save_project
from ..errors import Cancelled, InputError, StyleStudioError
from .photo_open import PHOTO_SUFFIXES
from .qimage_arrays import array_from_qimage, qimage_from_array

if TYPE_CHECKING:
    from .main_window import MainWindow

log = logging.getLogger(__name__)

PROJECT_FILTER = f"StyleStudio project (*{SUFFIX})"
THUMBNAIL_PX = 256  #: the picture saved inside a project (for the browser)
CHECKPOINT_SUFFIXES = (".pkl", ".pt", ".pth")


def file_error(path: Path | str, exc: BaseException) -> str:
    """One line naming ``path`` for a failed open/save/export/import.

    Our own errors (bad input) speak for themselves; anything else is a bug: said to be unexpected
    and logged with its traceback (the caller is inside ``except``).
    """
    path = Path(path)
    if isinstance(exc, StyleStudioError):
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text if (str(path) in text or path.name in text) else f"{path}: {text}"
    if isinstance(exc, OSError):
        from ..safe_io import os_error_message

        return os_error_message(path, exc)
    log.error("unexpected failure with %s", path, exc_info=exc)
    detail = " ".join(str(exc).split())[:300]
    return f"{path}: unexpected {type(exc).__name__}{': ' + detail if detail else ''} (a bug; details in the log)"


def naming_file(path: Path, fn: Callable) -> Callable:
    """Wrap a worker job so its failure message names ``path`` (and says "unexpected" for a bug)."""

    def run(engine: Any, ctx: Any) -> Any:
        try:
            return fn(engine, ctx)
        except Cancelled:
            raise
        except Exception as exc:
            raise InputError(file_error(path, exc)) from exc

    return run


class FileActions:
    """New/open/save/export/copy for one window (which holds the document and its path)."""

    def __init__(self, window: "MainWindow") -> None:
        self.window = window
        self.export_box: Any = None  #: the Export dialog while it is open
        self._last_export_dir: str | None = None
        window.recent_menu.aboutToShow.connect(self.fill_recent_menu)

    # -- the unsaved-changes question ----------------------------------------------------------
    def unsaved_box(self) -> tuple[QMessageBox, dict[QAbstractButton, str]]:
        """The "save the changes?" question; its buttons have mnemonics (Alt+S, Alt+D, Alt+C)
        so it can be answered from the keyboard. Returns the box and button → answer."""
        w = self.window
        box = QMessageBox(QMessageBox.Icon.Question, "StyleStudio",
                          f"Save the changes to “{w.document_name()}”?",
                          QMessageBox.StandardButton.NoButton, w)
        box.setInformativeText("Your edits are lost if you don't save them.")
        answers = {box.addButton("&Save", QMessageBox.ButtonRole.AcceptRole): "save",
                   box.addButton("&Don't Save", QMessageBox.ButtonRole.DestructiveRole): "discard"}
        cancel = box.addButton("&Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(next(iter(answers)))  # type: ignore[arg-type]
        box.setEscapeButton(cancel)
        return box, answers

    def ask_unsaved_dialog(self) -> str:
        box, answers = self.unsaved_box()
        box.exec()
        return answers.get(box.clickedButton(), "cancel")

    def maybe_save(self) -> bool:
        """True if it is fine to drop the current document (asks ``window.ask_unsaved``)."""
        w = self.window
        if w.undo_stack.isClean():
            return True
        answer = w.ask_unsaved()
        if answer == "save":
            return w.save()
        return answer == "discard"

    # -- new / open ------------------------------------------------------------------------------
    def new_document(self) -> None:
        w = self.window
        if not self.maybe_save():
            return
        doc = EditDocument(model=w.holder.doc.model,
                           source=SeedSource(seed=w.settings.last_seed, psi=w.settings.last_psi))
        w.set_document(doc)

    def start_dir(self) -> str:
        """Where file choosers start: the project's folder, the last one used, or home."""
        w = self.window
        if w.project_path:
            return str(w.project_path.parent)
        if w.settings.recent_files:
            return str(Path(w.settings.recent_files[0]).parent)
        return str(Path.home())

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open Project", self.start_dir(), PROJECT_FILTER)
        if path:
            self.window.open_path(Path(path), ask=False)

    def open_path(self, path: Path, ask: bool = True) -> bool:
        w = self.window
        if ask and not self.maybe_save():
            return False
        try:
            doc = load_project(path)
            store = ModelStore()
            if doc.model != DEFAULT_MODEL and not store.has(doc.model):
                raise StyleStudioError(
                    f"{Path(path).name}: this project was made with the model “{doc.model}”, which is not installed. "
                    f"Import its checkpoint (Models ▸ Import Checkpoint…) under that name, then open it again.")
        except Exception as exc:  # bad input or a bug: a dialog either way, the editor keeps running
            w.report_error("Could not open the project", file_error(path, exc))
            return False
        w.set_document(doc, path)
        w.settings.add_recent(path)
        w.settings.save()
        w.statusBar().showMessage(f"Opened {path}", 4000)
        return True

    def fill_recent_menu(self) -> None:
        w = self.window
        m = w.recent_menu
        m.clear()
        files = [f for f in w.settings.recent_files if Path(f).is_file()]
        for i, f in enumerate(files):
            act = m.addAction(f"&{i + 1}  {Path(f).name}" if i < 9 else Path(f).name)
            act.setToolTip(f)
            act.triggered.connect(lambda _=False, p=f: w.open_path(Path(p)))
        if not files:
            m.addAction("No recent projects").setEnabled(False)
        m.addSeparator()
        clear = m.addAction("Clear Recent")
        clear.triggered.connect(self._clear_recent)

    def _clear_recent(self) -> None:
        self.window.settings.recent_files = []
        self.window.settings.save()

    # -- save --------------------------------------------------------------------------------------
    def save(self) -> bool:
        w = self.window
        if w.project_path is None:
            return self.save_as_dialog()
        return w.save_to(w.project_path)

    def save_as_dialog(self) -> bool:
        w = self.window
        default = str(Path(self.start_dir()) / f"{w.document_name()}{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(w, "Save Project", default, PROJECT_FILTER)
        if not path:
            return False
        p = Path(path)
        if p.suffix != SUFFIX:
            p = p.with_name(p.name + SUFFIX)
        return w.save_to(p)

    def _thumbnail(self) -> Any:
        w = self.window
        if not w.frame_is_current(final=True):
            return None
        img = w.canvas.current_image()
        if img is None:
            return None
        if max(img.width(), img.height()) > THUMBNAIL_PX:
            img = img.scaled(THUMBNAIL_PX, THUMBNAIL_PX, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
        return array_from_qimage(img)

    def save_to(self, path: Path) -> bool:
        """Write the project (atomically; the engine's project format). Small: done right here."""
        w = self.window
        path = Path(path)
        # sliders stamped with the library versions they are drawn with, so reopening can tell if one changed
        doc = w.renders.stamped(dataclasses.replace(w.holder.doc, title=path.stem))
        try:
            save_project(path, doc, self._thumbnail())
        except Exception as exc:  # a full disk, a read-only folder, or a bug: never lose the window
            w.report_error("Could not save the project", file_error(path, exc))
            return False
        w.project_path = path
        w.undo_stack.setClean()
        w.settings.add_recent(path)
        w.settings.save()
        if w.autosave is not None:
            w.autosave.saved()
        w.update_title()
        w.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    # -- export / clipboard ---------------------------------------------------------------------
    def export_dialog(self) -> None:
        """File ▸ Export: the Export dialog (file, format, JPEG quality, size), opened window-modal.

        Accepting stores the choices in the document's export settings (one undo step, saved with
        the project) and exports. The dialog is ``window.export_box`` while it is open.
        """
        from ..engine.export import full_size
        from .export_dialog import ExportDialog
        from .undo_commands import SetExportSettingsCommand

        w = self.window
        doc = w.holder.doc
        model = w.ctx.model
        resolution = model.resolution if model is not None and model.name == doc.model else (w.canvas.logical
                                                                                             or 1024)
        try:
            max_size = full_size(doc, resolution)
        except Exception as exc:  # an unreadable photo: say so, export nothing
            w.report_error("Export failed", file_error(w.document_name(), exc))
            return
        default = Path(self._last_export_dir or self.start_dir()) / w.document_name()
        dlg = ExportDialog(doc.export, default, max_size, doc.source.kind == "photo", w)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        self.export_box = dlg

        def accepted() -> None:
            settings, path = dlg.settings(), dlg.path()
            if settings != w.holder.doc.export:
                w.undo_stack.push(SetExportSettingsCommand(w.holder, settings))
            self._last_export_dir = str(path.parent)
            w.export_to(path)

        dlg.accepted.connect(accepted)
        dlg.finished.connect(lambda _r: setattr(self, "export_box", None))
        dlg.open()

    def export_to(self, path: Path, on_done: Callable[[Path], None] | None = None) -> int:
        """Render the document at full resolution in the job thread and write it with its recipe."""
        from ..engine.tasks import ExportImage
        from ..safe_io import check_output

        w = self.window
        doc = w.holder.doc
        path = Path(path)
        try:
            check_output(path)  # a missing or read-only folder is said at once, not after rendering
        except Exception as exc:
            w.report_error("Export failed", file_error(path, exc))
            return 0

        def done(p: Path) -> None:
            w.statusBar().showMessage(f"Exported {p}", 6000)
            if on_done is not None:
                on_done(p)

        # drawn as on screen: with the copies of the sliders' libraries (one deleted meanwhile included)
        return w.run_task(ExportImage(w.renders.stamped(doc), path), done, "Export failed",
                          wrap=lambda fn: naming_file(path, fn))

    def copy_image(self, on_done: Callable[[QImage], None] | None = None) -> int:
        from ..engine.tasks import CopyPicture

        w = self.window

        def done(array) -> None:
            img = qimage_from_array(array)
            QGuiApplication.clipboard().setImage(img)
            w.statusBar().showMessage(f"Copied {img.width()} × {img.height()} picture", 4000)
            if on_done is not None:
                on_done(img)

        return w.run_task(CopyPicture(w.renders.stamped(w.holder.doc)), done, "Copy failed")

    # -- drag and drop: a project opens, a photo is opened, a checkpoint is imported --------------
    @staticmethod
    def dropped(event: Any) -> Path | None:
        for url in event.mimeData().urls():
            p = Path(url.toLocalFile())
            if p.suffix.lower() in (SUFFIX, *CHECKPOINT_SUFFIXES, *PHOTO_SUFFIXES):
                return p
        return None

    def open_dropped(self, path: Path) -> None:
        w = self.window
        if path.suffix.lower() == SUFFIX:
            w.open_path(path)
        elif path.suffix.lower() in PHOTO_SUFFIXES:
            w.photo.open_photo(path)
        else:
            w.import_model(path)
