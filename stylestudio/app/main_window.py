"""The editor window: canvas in the middle, panels around it, menus, toolbar and status bar.

The window owns the open document (a :class:`DocumentHolder`), its QUndoStack and the
:class:`EngineClient`. It turns document changes into render requests (a preview while an
interaction is in progress, the final frame otherwise) and shows whatever frame comes back,
dropping stale ones. It never touches a tensor.
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QByteArray, QEvent, QObject, QSize, Qt, QUrl
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QDesktopServices, QGuiApplication, QImage,
                           QKeySequence, QUndoStack)
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QApplication, QDockWidget, QFileDialog, QLabel,
                               QLineEdit, QMainWindow, QMessageBox, QProgressBar, QToolButton, QWidget)

from .. import paths
from ..engine.document import EditDocument, SeedSource
from ..engine.model_store import DEFAULT_MODEL, ModelStore
from ..engine.project import SUFFIX, load_project, save_project
from ..errors import Cancelled, InputError, StyleStudioError
from . import gc_guard
from . import theme as theme_mod
from .autosave import AutosaveManager, AutosaveStore, Recoverable
from .canvas import Canvas
from .context import EditorContext
from .dialogs import PreferencesDialog, ShortcutsDialog, about_text
from .panels import builtin_panels
from .photo_open import PHOTO_SUFFIXES, PhotoOpener
from .settings import Settings
from .undo_commands import DocumentHolder, ResetAllEditsCommand, SwitchModelCommand
from ..engine.session import Engine, ModelDescription
from .engine_client import EngineClient
from .qimage_arrays import array_from_qimage, qimage_from_array
from .work_items import BeforeImage, RenderResult

log = logging.getLogger(__name__)

AREA = {"left": Qt.DockWidgetArea.LeftDockWidgetArea, "right": Qt.DockWidgetArea.RightDockWidgetArea,
        "bottom": Qt.DockWidgetArea.BottomDockWidgetArea}
PROJECT_FILTER = f"StyleStudio project (*{SUFFIX})"
THUMBNAIL_PX = 256
RIGHT_DOCK_PX = 520  #: default width of the right dock: sliders ≥ 200 px beside label, value, units, pin
LEFT_DOCK_PX = 320
HISTORY_PX = 150  #: default height of the History strip under the editing tabs
#: version of the saved dock layout: raised when the defaults change, so an old cramped layout
#: (e.g. a 380-px right dock with 64-px sliders) gives way to the new defaults once
LAYOUT_VERSION = 2


def _has_edits(doc: EditDocument) -> bool:
    return any(e.enabled for e in doc.edits)


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


def _naming_file(path: Path, fn: Callable) -> Callable:
    """Wrap a worker job so its failure message names ``path`` (and says "unexpected" for a bug)."""

    def run(engine: Any, ctx: Any) -> Any:
        try:
            return fn(engine, ctx)
        except Cancelled:
            raise
        except Exception as exc:
            raise InputError(file_error(path, exc)) from exc

    return run


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, engine: EngineClient | None = None,
                 theme: theme_mod.ThemeManager | None = None, autosave: bool = True) -> None:
        super().__init__()
        self.settings = settings or Settings.load()
        app = QApplication.instance()
        self.theme = theme or theme_mod.ThemeManager(app, self.settings.theme)  # type: ignore[arg-type]
        self.setWindowIcon(theme_mod.app_icon())
        self.project_path: Path | None = None
        doc = EditDocument(model=self.settings.model_name(),
                           source=SeedSource(seed=self.settings.last_seed, psi=self.settings.last_psi))
        self.holder = DocumentHolder(doc, self)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(1000)
        s = self.settings
        self.engine = engine or EngineClient(
            lambda: Engine(s.device, s.threads, preview_budget_ms=s.preview_budget_ms), s.preview_size, self)
        self.ctx = EditorContext(self.holder, self.undo_stack, self.engine, self.settings, self)

        # render bookkeeping
        self._latest_seq = 0
        self._latest_doc: EditDocument | None = None
        self._latest_quality = ""
        self._shown_seq = 0
        self._shown_quality = ""
        self._shown_source: tuple | None = None
        self.last_result: RenderResult | None = None
        self._before: OrderedDict[tuple, QImage] = OrderedDict()
        self._jobs: dict[int, str] = {}
        self._last_job = 0
        self.export_box: QWidget | None = None  #: the Export dialog while it is open
        self._last_export_dir: str | None = None
        self.errors: list[str] = []  #: every error shown, oldest first (also read by tests)
        self.error_box: QMessageBox | None = None
        #: answers "save changes?" → "save" | "discard" | "cancel"; replaceable (tests, scripting)
        self.ask_unsaved: Callable[[], str] = self._ask_unsaved_dialog

        self.canvas = Canvas()
        self.setCentralWidget(self.canvas)
        self.actions_by_name: dict[str, QAction] = {}
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_statusbar()
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        self._build_panels()
        self.photo = PhotoOpener(self)  #: File ▸ Open Photo…, dropped photos
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.resize(1440, 900)
        self._size_docks()
        self._restore_layout()

        self.holder.changed.connect(self._on_doc_changed)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.ctx.interaction_finished.connect(self._on_interaction_finished)
        self.engine.rendered.connect(self._on_rendered)
        self.engine.render_failed.connect(self._on_render_failed)
        self.engine.before_ready.connect(self._on_before_ready)
        self.engine.model_loaded.connect(self._on_model_loaded)
        self.engine.job_started.connect(self._on_job_started)
        self.engine.job_progress.connect(self._on_job_progress)
        self.engine.job_ended.connect(self._on_job_ended)
        self.canvas.zoom_changed.connect(self._on_zoom)
        self.theme.theme_changed.connect(self._on_theme_changed)
        QApplication.instance().installEventFilter(self)  # type: ignore[union-attr]

        self.setAcceptDrops(True)
        self.autosave = AutosaveManager(self, self.settings.autosave_interval_s) if autosave else None
        self.update_title()
        gc_guard.install(QApplication.instance())  # collect garbage on this thread only
        # Start with the picture focused: single-key tools (B, E, \) and Ctrl+Z must reach the
        # window, not a panel's text field that would keep the key for itself.
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFocusProxy(self.canvas)
        self.canvas.setFocus()
        self.request_render("final")

    # =========================================================================================
    # building
    def _action(self, name: str, text: str, slot: Callable | None = None, shortcut: Any = None,
                icon: str = "", tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if shortcut:
            keys = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            a.setShortcuts([QKeySequence(k) for k in keys])
        if icon:
            a.setIcon(theme_mod.icon(icon))
            a.setProperty("icon_name", icon)
        if tip or shortcut:
            keys_text = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            a.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f"  ({keys_text})" if keys_text else ""))
        a.setCheckable(checkable)
        if slot is not None:
            a.triggered.connect(slot)
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.addAction(a)
        self.actions_by_name[name] = a
        return a

    def _build_actions(self) -> None:
        A = self._action
        A("new", "&New Document", self.new_document, QKeySequence.StandardKey.New, "new")
        A("open", "&Open…", self.open_dialog, QKeySequence.StandardKey.Open, "open", "Open a project")
        A("save", "&Save", self.save, QKeySequence.StandardKey.Save, "save", "Save the project")
        A("save_as", "Save &As…", self.save_as_dialog, "Ctrl+Shift+S")
        A("export", "&Export Image…", self.export_dialog, "Ctrl+E", "export",
          "Export the picture at full resolution (PNG, JPEG, TIFF)")
        A("copy", "&Copy Image", self.copy_image, "Ctrl+Shift+C", "copy", "Copy the full-resolution picture")
        A("quit", "&Quit", self.close, "Ctrl+Q")
        # Own undo/redo actions with fixed texts: QUndoStack.createUndoAction renames the action on
        # every merged slider step, which re-lays out the toolbar and repaints the whole window.
        stack = self.undo_stack
        undo = A("undo", "&Undo", stack.undo, "Ctrl+Z", "undo")
        redo = A("redo", "&Redo", stack.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "redo")
        undo.setEnabled(False)
        redo.setEnabled(False)
        stack.canUndoChanged.connect(undo.setEnabled)
        stack.canRedoChanged.connect(redo.setEnabled)
        stack.undoTextChanged.connect(self._on_undo_text)
        stack.redoTextChanged.connect(self._on_redo_text)
        A("reset_all", "Reset &All Edits", self.reset_all_edits, "Ctrl+Shift+R", "reset")
        A("preferences", "&Preferences…", self.preferences_dialog, "Ctrl+,", "settings")
        A("random", "&Random Face", lambda: self.panel("faces").pick_random(), "R", "random")
        A("prev_seed", "&Previous Seed", lambda: self.panel("faces").step_seed(-1), "[", "prev")
        A("next_seed", "&Next Seed", lambda: self.panel("faces").step_seed(+1), "]", "next")
        A("prev_page", "Previous Page of Faces",
          lambda: self.panel("faces").set_page(self.panel("faces").page_start - self.panel("faces").PAGE), "Alt+Left")
        A("next_page", "Next Page of Faces",
          lambda: self.panel("faces").set_page(self.panel("faces").page_start + self.panel("faces").PAGE), "Alt+Right")
        A("goto_seed", "&Go to Seed…", self._focus_seed_box, "Ctrl+G")
        A("zoom_in", "Zoom &In", lambda: self.canvas.zoom_in(), ["Ctrl++", "Ctrl+="], "zoom-in")
        A("zoom_out", "Zoom &Out", lambda: self.canvas.zoom_out(), "Ctrl+-", "zoom-out")
        A("fit", "&Fit in Window", self.canvas.fit, "Ctrl+0", "fit")
        A("actual", "&Actual Pixels (1:1)", self.canvas.actual_size, "Ctrl+1", "actual-size")
        A("split", "&Split Before/After", None, "Y", "split", "Before and after side by side", checkable=True)
        self.actions_by_name["split"].toggled.connect(self.canvas.set_split)
        A("original", "Show &Original", None, "", "original", "Show the unedited face (or hold \\)",
          checkable=True)
        self.actions_by_name["original"].toggled.connect(self.canvas.set_hold_original)
        A("fullscreen", "F&ull Screen", self._toggle_fullscreen, "F11")
        A("import_model", "&Import Checkpoint…", self.import_model_dialog, "Ctrl+I", "import",
          "Import a StyleGAN2 checkpoint (NVlabs .pkl or rosinality .pt)")
        A("models_folder", "Open Models &Folder", lambda: QDesktopServices.openUrl(
            QUrl.fromLocalFile(str(paths.models_dir()))))
        A("cancel_job", "&Cancel Running Job", lambda: self.engine.cancel(None), "Esc", "cancel")
        A("shortcuts", "&Keyboard Shortcuts", self.shortcuts_dialog, ["F1", "Ctrl+/"])
        A("about", "&About StyleStudio", self.about_dialog)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        a = self.actions_by_name
        f = mb.addMenu("&File")
        self.file_menu = f
        f.addActions([a["new"], a["open"]])
        self.recent_menu = f.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        f.addSeparator()
        f.addActions([a["save"], a["save_as"]])
        f.addSeparator()
        f.addActions([a["export"], a["copy"]])
        f.addSeparator()
        f.addAction(a["quit"])
        e = mb.addMenu("&Edit")
        e.addActions([a["undo"], a["redo"]])
        e.addSeparator()
        e.addAction(a["reset_all"])
        e.addSeparator()
        e.addAction(a["preferences"])
        face = mb.addMenu("F&ace")
        face.addActions([a["random"], a["prev_seed"], a["next_seed"], a["goto_seed"]])
        face.addSeparator()
        face.addActions([a["prev_page"], a["next_page"]])
        v = mb.addMenu("&View")
        v.addActions([a["zoom_in"], a["zoom_out"], a["fit"], a["actual"]])
        v.addSeparator()
        v.addActions([a["split"], a["original"]])
        v.addSeparator()
        self.panels_menu = v.addMenu("&Panels")
        th = v.addMenu("&Theme")
        group = QActionGroup(self)
        for key, label in (("system", "Follow the &System"), ("dark", "&Dark"), ("light", "&Light")):
            act = th.addAction(label)
            act.setCheckable(True)
            act.setChecked(self.settings.theme == key)
            act.triggered.connect(lambda _=False, k=key: self.set_theme(k))
            group.addAction(act)
        v.addSeparator()
        v.addAction(a["fullscreen"])
        m = mb.addMenu("&Models")
        m.addAction(a["import_model"])
        m.addSeparator()
        self.models_menu = m
        self._model_group = QActionGroup(self)
        self._model_actions: list[QAction] = []
        self._models_anchor = m.addSeparator()
        m.addAction(a["models_folder"])
        m.aboutToShow.connect(self._fill_models_menu)
        self._fill_models_menu()
        h = mb.addMenu("&Help")
        h.addActions([a["shortcuts"], a["about"]])

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("toolbar-main")
        tb.setMovable(False)
        tb.setIconSize(QSize(20, 20))
        a = self.actions_by_name
        tb.addActions([a["open"], a["save"], a["export"], a["copy"]])
        tb.addSeparator()
        tb.addActions([a["undo"], a["redo"]])
        tb.addSeparator()
        tb.addAction(a["random"])
        tb.addSeparator()
        tb.addActions([a["zoom_out"], a["zoom_in"], a["fit"], a["actual"]])
        tb.addSeparator()
        tb.addAction(a["split"])
        # "original" works while held down, like the \ key
        hold = QToolButton()
        hold.setIcon(theme_mod.icon("original"))
        hold.setProperty("icon_name", "original")
        hold.setToolTip("Hold to see the unedited face (or hold \\)")
        hold.pressed.connect(lambda: self.canvas.set_hold_original(True))
        hold.released.connect(lambda: self.canvas.set_hold_original(False))
        self.hold_button = hold
        tb.addWidget(hold)
        self.toolbar = tb

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.job_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(180)
        self.progress.setRange(0, 1000)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(theme_mod.icon("cancel"))
        self.cancel_button.setProperty("icon_name", "cancel")
        self.cancel_button.setToolTip("Cancel (Esc)")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(lambda: self.engine.cancel(self._last_job or None))
        self.render_label = QLabel()
        self.zoom_label = QLabel()
        self.model_label = QLabel()
        for w in (self.job_label, self.progress, self.cancel_button):
            sb.addPermanentWidget(w)
            w.hide()
        for w in (self.render_label, self.zoom_label, self.model_label):
            sb.addPermanentWidget(w)

    def _build_panels(self) -> None:
        first_in_area: dict[str, QDockWidget] = {}
        for spec in builtin_panels():
            try:
                widget = spec.factory(self.ctx)
            except Exception as exc:  # a broken add-on panel must not take the editor down
                log.exception("panel %s failed", spec.key)
                self.errors.append(f"Panel {spec.title}: {exc}")
                continue
            dock = QDockWidget(spec.title, self)
            dock.setObjectName(f"panel-{spec.key}")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                             | QDockWidget.DockWidgetFeature.DockWidgetClosable)
            if spec.tab_with and spec.tab_with in self.docks:
                self.tabifyDockWidget(self.docks[spec.tab_with], dock)
                self.docks[spec.tab_with].raise_()  # the panel tabbed onto stays in front
            else:
                self.addDockWidget(AREA[spec.area], dock)
                first_in_area.setdefault(spec.area, dock)
            dock.setVisible(spec.visible)
            toggle = dock.toggleViewAction()
            if spec.shortcut:
                toggle.setShortcut(QKeySequence(spec.shortcut))
            if spec.icon:
                toggle.setIcon(theme_mod.icon(spec.icon))
                toggle.setProperty("icon_name", spec.icon)
            self.panels_menu.addAction(toggle)
            self.addAction(toggle)
            self.panels[spec.key] = widget
            self.docks[spec.key] = dock

    def _size_docks(self) -> None:
        """Default dock sizes for the window's size: the right column wide enough for full-length
        sliders (value, units and pin beside them), its editing tabs (Factors, Attributes, Regions)
        tall enough for every slider, History a short strip below."""
        area = self.dockWidgetArea
        right = [d for d in self.docks.values() if area(d) == Qt.DockWidgetArea.RightDockWidgetArea
                 and not d.isFloating()]
        stacked: list[QDockWidget] = []  # one per vertical slot: the first dock of each tab group
        for d in right:
            if not any(d in self.tabifiedDockWidgets(s) for s in stacked):
                stacked.append(d)
        if stacked:
            self.resizeDocks([stacked[0]], [RIGHT_DOCK_PX], Qt.Orientation.Horizontal)
        if len(stacked) > 1:
            rest = max(1, self.height() - 140 - HISTORY_PX * (len(stacked) - 1))
            self.resizeDocks(stacked, [rest] + [HISTORY_PX] * (len(stacked) - 1), Qt.Orientation.Vertical)
        left = [d for d in self.docks.values() if area(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
        if left:
            self.resizeDocks([left[0]], [LEFT_DOCK_PX], Qt.Orientation.Horizontal)

    # slots (bound methods, so Qt disconnects them when the window goes away)
    def _on_undo_text(self, text: str) -> None:
        self.actions_by_name["undo"].setToolTip(f"Undo {text}  (Ctrl+Z)" if text else "Undo  (Ctrl+Z)")

    def _on_redo_text(self, text: str) -> None:
        self.actions_by_name["redo"].setToolTip(f"Redo {text}  (Ctrl+Shift+Z)" if text else "Redo  (Ctrl+Shift+Z)")

    def _on_clean_changed(self, _clean: bool) -> None:
        self.update_title()

    def _on_interaction_finished(self) -> None:
        self.request_render("final")

    def _on_theme_changed(self, _dark: bool) -> None:
        self._refresh_icons()

    def panel(self, key: str) -> Any:
        return self.panels[key]

    def _refresh_icons(self) -> None:
        for a in self.findChildren(QAction):
            name = a.property("icon_name")
            if name:
                a.setIcon(theme_mod.icon(name))
        for b in self.findChildren(QToolButton):
            name = b.property("icon_name")
            if name:
                b.setIcon(theme_mod.icon(name))
        self.canvas.update()

    def _restore_layout(self) -> None:
        s = self.settings
        try:
            if s.window_geometry:
                self.restoreGeometry(QByteArray(base64.b64decode(s.window_geometry)))
            if s.window_state:
                # a layout saved before the current dock defaults is dropped (Qt refuses another version)
                self.restoreState(QByteArray(base64.b64decode(s.window_state)), LAYOUT_VERSION)
        except (ValueError, TypeError):
            pass

    # =========================================================================================
    # title, status
    def document_name(self) -> str:
        return self.project_path.stem if self.project_path else self.holder.doc.title

    def update_title(self) -> None:
        self.setWindowTitle(f"StyleStudio — {self.document_name()}[*]")
        self.setWindowModified(not self.undo_stack.isClean())

    def _on_zoom(self, scale: float) -> None:
        self.zoom_label.setText(f"{'Fit · ' if self.canvas.is_fit() else ''}{scale * 100:.0f} %")

    def report_error(self, title: str, message: str) -> None:
        """A message in the status bar and a (non-blocking) dialog; never an exception."""
        self.errors.append(message)
        self.statusBar().showMessage(f"{title}: {message}", 15000)
        box = self.error_box
        if box is not None and box.isVisible():
            box.setInformativeText((box.informativeText() + "\n\n" + message)[-4000:])
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, title, QMessageBox.StandardButton.Ok, self)
        box.setInformativeText(message)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.error_box = box

    # =========================================================================================
    # documents and rendering
    def set_document(self, doc: EditDocument, path: Path | None = None, modified: bool = False) -> None:
        """Replace the open document (new/open/recover): history starts afresh."""
        self.undo_stack.clear()
        self.project_path = Path(path) if path else None
        self.holder.set(doc)
        self.undo_stack.setClean()
        if modified:
            self.undo_stack.resetClean()
        self.update_title()

    def _on_doc_changed(self, doc: EditDocument, interactive: bool) -> None:
        self._update_before(doc)
        self.request_render("preview" if interactive else "final")

    def request_render(self, quality: str = "final") -> int:
        doc = self.holder.doc
        if quality == "final" and self._latest_doc is doc and self._latest_quality == "final":
            return self._latest_seq  # already asked for exactly this
        progressive = quality == "final" and (doc.model, doc.source.key()) != self._shown_source
        self._latest_seq = self.engine.render(doc, quality, progressive)
        self._latest_doc = doc
        self._latest_quality = quality
        return self._latest_seq

    def frame_is_current(self, final: bool = True) -> bool:
        """Is the frame on screen the latest request (and final, if asked)?"""
        r = self.last_result
        return (r is not None and r.seq == self._latest_seq and self.canvas.frame_seq == r.seq
                and (not final or r.quality == "final"))

    def _on_rendered(self, r: RenderResult) -> None:
        if r.seq < self._shown_seq or (r.seq == self._shown_seq and self._shown_quality == "final"):
            return  # an older request finished late: never show it over a newer frame
        self._shown_seq, self._shown_quality = r.seq, r.quality
        self._shown_source = (r.model, r.source_key)
        self.last_result = r
        if r.quality == "final" and not r.has_edits:
            self._remember_before((r.model, r.source_key), r.image)
        self.canvas.set_frame(r.image, r.resolution, r.seq, r.quality)
        if r.quality == "final":
            self.render_label.setText(f"{r.image.width()} × {r.image.height()} · {r.render_s:.2f} s")
        else:
            self.render_label.setText(f"Preview {r.image.width()} px · {r.render_s * 1000:.0f} ms")

    def _on_render_failed(self, seq: int, message: str) -> None:
        if seq != -1 and seq < self._shown_seq:
            return
        if self.last_result is None:
            self.canvas.clear("Could not draw the face — see the message in the status bar.")
        self.report_error("Rendering failed", message)

    def _remember_before(self, key: tuple, image: QImage) -> None:
        self._before[key] = image
        self._before.move_to_end(key)
        while len(self._before) > 32:
            self._before.popitem(last=False)
        self._update_before(self.holder.doc)

    def _on_before_ready(self, b: BeforeImage) -> None:
        self._remember_before((b.model, b.source_key), b.image)

    def _update_before(self, doc: EditDocument) -> None:
        if not _has_edits(doc):
            self.canvas.set_before(None)  # before == after
            return
        self.canvas.set_before(self._before.get((doc.model, doc.source.key())))

    def _on_model_loaded(self, desc: ModelDescription) -> None:
        self.ctx.model = desc
        self.model_label.setText(f"{desc.name} · {desc.resolution} px · {desc.device}")
        self.ctx.model_changed.emit(desc)
        self._fill_models_menu()

    # =========================================================================================
    # jobs
    def _on_job_started(self, job_id: int, title: str, cancellable: bool, quiet: bool) -> None:
        if quiet:
            return
        self._jobs[job_id] = title
        self._last_job = job_id
        self.job_label.setText(title)
        self.progress.setRange(0, 0)
        self.cancel_button.setEnabled(cancellable)
        for w in (self.job_label, self.progress, self.cancel_button):
            w.show()

    def _on_job_progress(self, job_id: int, message: str, fraction: float) -> None:
        if job_id not in self._jobs:
            return
        self.job_label.setText(message or self._jobs[job_id])
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))

    def _on_job_ended(self, job_id: int) -> None:
        self._jobs.pop(job_id, None)
        if not self._jobs:
            for w in (self.job_label, self.progress, self.cancel_button):
                w.hide()
            self._last_job = 0

    def run_job(self, title: str, fn: Callable, on_done: Callable | None = None, error_title: str = "",
                cancellable: bool = True) -> int:
        """Submit ``fn(engine, ctx)`` to the worker; failures become an error message."""

        def failed(message: str, cancelled: bool) -> None:
            if cancelled:
                self.statusBar().showMessage(f"{title}: cancelled", 5000)
            else:
                self.report_error(error_title or f"{title} failed", message)

        return self.engine.submit(title, fn, on_done, failed, cancellable)

    def run_task(self, request: Any, on_done: Callable | None = None, error_title: str = "",
                 wrap: Callable[[Callable], Callable] | None = None) -> int:
        """Submit an engine task request (:mod:`stylestudio.engine.tasks`): long ones run in the job
        thread beside the renders and show in the Jobs panel; failures become an error message."""
        from ..engine import tasks

        title = tasks.title(request)

        def failed(message: str, cancelled: bool) -> None:
            if cancelled:
                self.statusBar().showMessage(f"{title}: cancelled", 5000)
            else:
                self.report_error(error_title or f"{title} failed", message)

        return self.engine.submit_task(request, on_done, failed, wrap=wrap)

    # =========================================================================================
    # file actions
    def unsaved_box(self) -> tuple[QMessageBox, dict[QAbstractButton, str]]:
        """The "save the changes?" question; its buttons have mnemonics (Alt+S, Alt+D, Alt+C)
        so it can be answered from the keyboard. Returns the box and button → answer."""
        box = QMessageBox(QMessageBox.Icon.Question, "StyleStudio",
                          f"Save the changes to “{self.document_name()}”?",
                          QMessageBox.StandardButton.NoButton, self)
        box.setInformativeText("Your edits are lost if you don't save them.")
        answers = {box.addButton("&Save", QMessageBox.ButtonRole.AcceptRole): "save",
                   box.addButton("&Don't Save", QMessageBox.ButtonRole.DestructiveRole): "discard"}
        cancel = box.addButton("&Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(next(iter(answers)))  # type: ignore[arg-type]
        box.setEscapeButton(cancel)
        return box, answers

    def _ask_unsaved_dialog(self) -> str:
        box, answers = self.unsaved_box()
        box.exec()
        return answers.get(box.clickedButton(), "cancel")

    def maybe_save(self) -> bool:
        """True if it is fine to drop the current document."""
        if self.undo_stack.isClean():
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new_document(self) -> None:
        if not self.maybe_save():
            return
        doc = EditDocument(model=self.holder.doc.model,
                           source=SeedSource(seed=self.settings.last_seed, psi=self.settings.last_psi))
        self.set_document(doc)

    def _start_dir(self) -> str:
        if self.project_path:
            return str(self.project_path.parent)
        if self.settings.recent_files:
            return str(Path(self.settings.recent_files[0]).parent)
        return str(Path.home())

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open Project", self._start_dir(), PROJECT_FILTER)
        if path:
            self.open_path(Path(path), ask=False)

    def open_path(self, path: Path, ask: bool = True) -> bool:
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
            self.report_error("Could not open the project", file_error(path, exc))
            return False
        self.set_document(doc, path)
        self.settings.add_recent(path)
        self.settings.save()
        self.statusBar().showMessage(f"Opened {path}", 4000)
        return True

    def save(self) -> bool:
        if self.project_path is None:
            return self.save_as_dialog()
        return self.save_to(self.project_path)

    def save_as_dialog(self) -> bool:
        default = str(Path(self._start_dir()) / f"{self.document_name()}{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self, "Save Project", default, PROJECT_FILTER)
        if not path:
            return False
        p = Path(path)
        if p.suffix != SUFFIX:
            p = p.with_name(p.name + SUFFIX)
        return self.save_to(p)

    def _thumbnail(self) -> Any:
        if not self.frame_is_current(final=True):
            return None
        img = self.canvas.current_image()
        if img is None:
            return None
        if max(img.width(), img.height()) > THUMBNAIL_PX:
            img = img.scaled(THUMBNAIL_PX, THUMBNAIL_PX, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
        return array_from_qimage(img)

    def save_to(self, path: Path) -> bool:
        """Write the project (atomically; the engine's project format). Small: done right here."""
        path = Path(path)
        doc = dataclasses.replace(self.holder.doc, title=path.stem)
        try:
            save_project(path, doc, self._thumbnail())
        except Exception as exc:  # a full disk, a read-only folder, or a bug: never lose the window
            self.report_error("Could not save the project", file_error(path, exc))
            return False
        self.project_path = path
        self.undo_stack.setClean()
        self.settings.add_recent(path)
        self.settings.save()
        if self.autosave is not None:
            self.autosave.saved()
        self.update_title()
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def _fill_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        files = [f for f in self.settings.recent_files if Path(f).is_file()]
        for i, f in enumerate(files):
            act = m.addAction(f"&{i + 1}  {Path(f).name}" if i < 9 else Path(f).name)
            act.setToolTip(f)
            act.triggered.connect(lambda _=False, p=f: self.open_path(Path(p)))
        if not files:
            m.addAction("No recent projects").setEnabled(False)
        m.addSeparator()
        clear = m.addAction("Clear Recent")
        clear.triggered.connect(self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.recent_files = []
        self.settings.save()

    # -- export / clipboard ---------------------------------------------------------------------
    def export_dialog(self) -> None:
        """File ▸ Export: the Export dialog (file, format, JPEG quality, size), opened window-modal.

        Accepting stores the choices in the document's export settings (one undo step, saved with
        the project) and exports. The dialog is ``self.export_box`` while it is open.
        """
        from ..engine.export import full_size
        from .export_dialog import ExportDialog
        from .undo_commands import SetExportSettingsCommand

        doc = self.holder.doc
        model = self.ctx.model
        resolution = model.resolution if model is not None and model.name == doc.model else (self.canvas.logical
                                                                                             or 1024)
        try:
            max_size = full_size(doc, resolution)
        except Exception as exc:  # an unreadable photo: say so, export nothing
            self.report_error("Export failed", file_error(self.document_name(), exc))
            return
        default = Path(self._last_export_dir or self._start_dir()) / self.document_name()
        dlg = ExportDialog(doc.export, default, max_size, doc.source.kind == "photo", self)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        self.export_box = dlg

        def accepted() -> None:
            settings, path = dlg.settings(), dlg.path()
            if settings != self.holder.doc.export:
                self.undo_stack.push(SetExportSettingsCommand(self.holder, settings))
            self._last_export_dir = str(path.parent)
            self.export_to(path)

        dlg.accepted.connect(accepted)
        dlg.finished.connect(lambda _r: setattr(self, "export_box", None))
        dlg.open()

    def export_to(self, path: Path, on_done: Callable[[Path], None] | None = None) -> int:
        """Render the document at full resolution in the job thread and write it with its recipe."""
        from ..engine.tasks import ExportImage

        from ..safe_io import check_output

        doc = self.holder.doc
        path = Path(path)
        try:
            check_output(path)  # a missing or read-only folder is said at once, not after rendering
        except Exception as exc:
            self.report_error("Export failed", file_error(path, exc))
            return 0

        def done(p: Path) -> None:
            self.statusBar().showMessage(f"Exported {p}", 6000)
            if on_done is not None:
                on_done(p)

        return self.run_task(ExportImage(doc, path), done, "Export failed", wrap=lambda fn: _naming_file(path, fn))

    def copy_image(self, on_done: Callable[[QImage], None] | None = None) -> int:
        from ..engine.tasks import CopyPicture

        doc = self.holder.doc

        def done(array) -> None:
            img = qimage_from_array(array)
            QGuiApplication.clipboard().setImage(img)
            self.statusBar().showMessage(f"Copied {img.width()} × {img.height()} picture", 4000)
            if on_done is not None:
                on_done(img)

        return self.run_task(CopyPicture(doc), done, "Copy failed")

    # =========================================================================================
    # edit / view / models
    def reset_all_edits(self) -> None:
        if self.holder.doc.edits:
            self.undo_stack.push(ResetAllEditsCommand(self.holder))

    def _focus_seed_box(self) -> None:
        box = self.panel("faces").seed_box
        self.docks["faces"].show()
        box.setFocus()
        box.selectAll()

    def _toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def set_theme(self, mode: str) -> None:
        self.settings.theme = mode
        self.settings.save()
        self.theme.apply(mode)

    def installed_models(self) -> list[str]:
        names = ModelStore().names()
        if DEFAULT_MODEL not in names:
            names.insert(0, DEFAULT_MODEL)
        return names

    def _fill_models_menu(self) -> None:
        for act in self._model_actions:
            self.models_menu.removeAction(act)
            self._model_group.removeAction(act)
        self._model_actions = []
        current = self.holder.doc.model
        for i, name in enumerate(self.installed_models()):
            act = QAction(name + ("  (built-in)" if name == DEFAULT_MODEL else ""), self)
            act.setCheckable(True)
            act.setChecked(name == current)
            act.setStatusTip(f"Render this document with {name}")
            if i < 9:
                act.setShortcut(QKeySequence(f"Ctrl+Alt+{i + 1}"))
            act.triggered.connect(lambda _=False, n=name: self.switch_model(n))
            self._model_group.addAction(act)
            self.models_menu.insertAction(self._models_anchor, act)
            self._model_actions.append(act)

    def switch_model(self, name: str) -> None:
        if name != self.holder.doc.model:
            self.undo_stack.push(SwitchModelCommand(self.holder, name))
            self._fill_models_menu()

    def import_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import Checkpoint", str(Path.home()),
                                              "StyleGAN2 checkpoints (*.pkl *.pt *.pth);;All files (*)")
        if path:
            self.import_model(Path(path))

    def import_model(self, path: Path, name: str | None = None, switch: bool = True,
                     on_done: Callable[[str], None] | None = None) -> int:
        """Convert a checkpoint into the model store (in the worker), then render with it."""

        def run(engine: Engine, ctx: Any) -> str:
            ctx.progress(f"Converting {Path(path).name}…", -1)
            return engine.store.import_file(Path(path), name).name

        def done(model_name: str) -> None:
            self._fill_models_menu()
            self.statusBar().showMessage(f"Imported model {model_name}", 6000)
            if switch:
                self.switch_model(model_name)
            if on_done is not None:
                on_done(model_name)

        return self.run_job(f"Import {Path(path).name}", _naming_file(Path(path), run), done, "Import failed")

    # -- dialogs ----------------------------------------------------------------------------------
    def preferences_dialog(self) -> None:
        dlg = PreferencesDialog(self.settings, self.installed_models(), self)
        if dlg.exec() != PreferencesDialog.DialogCode.Accepted:
            return
        old_device = self.settings.device
        dlg.apply_to(self.settings)
        self.apply_settings(device_changed=self.settings.device != old_device)

    def apply_settings(self, device_changed: bool = False) -> None:
        s = self.settings
        s.save()
        self.engine.set_preview_size(s.preview_size, s.preview_budget_ms)
        if self.autosave is not None:
            self.autosave.set_interval(s.autosave_interval_s)
        self.theme.apply(s.theme)
        if device_changed:
            device = s.device
            self.run_job("Switch device", lambda e, c: e.set_device(device),
                         lambda _r: self._rerender(), "Could not use that device", cancellable=False)

    def _rerender(self) -> None:
        self._latest_doc = None
        self._shown_source = None
        self.request_render("final")

    def shortcuts_dialog(self) -> None:
        extra = [("Show original while held", "\\"), ("Zoom at the pointer", "Mouse wheel"),
                 ("Pan", "Drag the picture"), ("Fit ↔ 100 %", "Double-click the picture"),
                 ("Reset one slider", "Double-click its name")]
        actions = list(self.actions_by_name.values()) + [d.toggleViewAction() for d in self.docks.values()]
        ShortcutsDialog(actions, extra, self).exec()

    def about_dialog(self) -> None:
        QMessageBox.about(self, "About StyleStudio", about_text())

    # =========================================================================================
    # recovery, close
    def offer_recovery(self, ask: Callable[[Recoverable], bool] | None = None) -> bool:
        """After a crash: offer the newest orphaned autosave. Returns True if recovered."""
        try:
            scan = AutosaveStore.scan()
        except Exception as exc:  # an unreadable autosave folder must not stop the editor
            self.report_error("Could not look for unsaved work", file_error(paths.data_home() / "autosave", exc))
            return False
        for line in scan.set_aside:
            self.report_error("Autosave set aside", line)
        if not scan.found:
            return False
        item, others = scan.found[0], scan.found[1:]
        for o in others:
            o._lock.unlock()  # offered again next time
        ask = ask or self._ask_recover_dialog
        try:
            doc = item.load()  # read it before asking: what cannot be read is set aside, never deleted
        except Exception as exc:
            self.report_error("Autosave set aside", item.set_aside(file_error(item.path, exc)))
            return False
        if not ask(item):
            item.discard()
            return False
        path = Path(item.project_path) if item.project_path else None
        self.set_document(doc, path, modified=True)
        item.discard()
        if self.autosave is not None:
            self.autosave.tick()
        self.statusBar().showMessage("Recovered the unsaved document", 6000)
        return True

    def _ask_recover_dialog(self, item: Recoverable) -> bool:
        when = time.strftime("%d %b %Y, %H:%M", time.localtime(item.saved_at))
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved work?",
                          f"StyleStudio did not close properly last time. Recover “{item.title}” "
                          f"(autosaved {when})?", QMessageBox.StandardButton.NoButton, self)
        recover = box.addButton("&Recover", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("&Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.exec()
        return box.clickedButton() is recover

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        if not self.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Save the layout, end the autosave session cleanly and stop the worker."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        QApplication.instance().removeEventFilter(self)  # type: ignore[union-attr]
        try:
            self.theme.theme_changed.disconnect(self._on_theme_changed)
        except (RuntimeError, TypeError):
            pass
        s = self.settings
        s.window_geometry = base64.b64encode(bytes(self.saveGeometry())).decode()
        s.window_state = base64.b64encode(bytes(self.saveState(LAYOUT_VERSION))).decode()
        try:
            s.save()
        except OSError:
            pass
        if self.autosave is not None:
            self.autosave.close()
        self.engine.shutdown()

    # -- drag and drop: a project opens, a checkpoint is imported ----------------------------
    @staticmethod
    def _dropped(event) -> Path | None:
        for url in event.mimeData().urls():
            p = Path(url.toLocalFile())
            if p.suffix.lower() in (SUFFIX, ".pkl", ".pt", ".pth", *PHOTO_SUFFIXES):
                return p
        return None

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._dropped(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt name)
        path = self._dropped(event)
        if path is None:
            return
        event.acceptProposedAction()
        if path.suffix.lower() == SUFFIX:
            self.open_path(path)
        elif path.suffix.lower() in PHOTO_SUFFIXES:
            self.photo.open_photo(path)
        else:
            self.import_model(path)

    # -- hold \ to see the original -----------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        t = event.type()
        if t in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and event.key() == Qt.Key.Key_Backslash \
                and not event.isAutoRepeat() and self.isActiveWindow():  # type: ignore[attr-defined]
            focus = QApplication.focusWidget()
            if not isinstance(focus, (QLineEdit, QAbstractSpinBox)):
                if isinstance(obj, QWidget) and obj.window() is self:
                    self.canvas.set_hold_original(t == QEvent.Type.KeyPress)
                    return True
        return super().eventFilter(obj, event)
