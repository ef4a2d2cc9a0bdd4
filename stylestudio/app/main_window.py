"""The editor window: canvas in the middle, panels around it, menus, toolbar and status bar.

The window owns the open document (a :class:`DocumentHolder`), its QUndoStack and the
:class:`EngineClient`, and composes the parts that do the work:

* :mod:`.window_menus` — actions, menu bar and toolbar as tables (a new menu entry: one line there);
* :mod:`.window_docks` — the dock panels from the panel registry (a new panel: one
  ``register_panel`` line, see :mod:`.panels`), their sizes and saved layout;
* :mod:`.render_tracker` — document changes → render requests, showing only frames still wanted;
* :mod:`.window_status` — the status bar (running job, frame, zoom, model);
* :mod:`.file_actions` — new/open/save/export/copy, recent files, dropped files;
* :mod:`.models_menu` — installed models, switching, importing a checkpoint;
* :mod:`.crash_recovery` — offering an orphaned autosave after a crash.

It never touches a tensor.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QCloseEvent, QImage, QUndoStack
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QDockWidget, QLineEdit, QMainWindow, QMessageBox,
                               QToolButton, QWidget)

from ..engine.document import EditDocument, SeedSource
from ..engine.session import Engine, ModelDescription
from . import crash_recovery, gc_guard, window_docks, window_menus
from . import theme as theme_mod
from .autosave import AutosaveManager, Recoverable
from .canvas import Canvas
from .context import EditorContext
from .dialogs import PreferencesDialog, ShortcutsDialog, about_text, confirm_dialog, stop_jobs_question
from .engine_client import EngineClient
from .file_actions import FileActions
from .modal import modal
from .models_menu import ModelsMenu
from .photo_open import PhotoOpener
from .render_tracker import RenderTracker
from .settings import Settings
from .undo_commands import DocumentHolder, EditChangeCommand, ResetAllEditsCommand
from .window_docks import LAYOUT_VERSION, RIGHT_DOCK_PX  # noqa: F401  (the dock defaults, read by tests)
from .window_status import WindowStatus
from .work_items import RenderResult


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
            lambda: Engine(s.device, s.threads, preview_budget_ms=s.preview_budget_ms, fast_previews=s.fast_previews),
            s.preview_size, self)
        self.ctx = EditorContext(self.holder, self.undo_stack, self.engine, self.settings, self)
        self.errors: list[str] = []  #: every error shown, oldest first (also read by tests)
        self.error_box: QMessageBox | None = None
        #: answers "save changes?" → "save" | "discard" | "cancel"; replaceable (tests, scripting)
        self.ask_unsaved: Callable[[], str] = lambda: self.files.ask_unsaved_dialog()
        #: answers "quit although these jobs run?" (their titles) → bool; replaceable (tests, scripting)
        self.ask_stop_jobs: Callable[[list[str]], bool] = lambda jobs: confirm_dialog(self, stop_jobs_question(jobs), "Quit")

        self.canvas = Canvas()
        self.setCentralWidget(self.canvas)
        self.actions_by_name: dict[str, QAction] = {}
        window_menus.build_actions(self)
        self.menus = window_menus.build_menus(self)  #: menu title (as in MENU_BAR) → QMenu
        window_menus.build_toolbar(self)
        self.status = WindowStatus(self.statusBar(), self.engine)
        self.render_label = self.status.render_label
        self.job_label, self.progress, self.cancel_button = (self.status.job_label, self.status.progress,
                                                             self.status.cancel_button)
        self.renders = RenderTracker(self.engine, self.holder, self.canvas, self.render_label, self.report_error,
                                     self, notify=lambda message: self.statusBar().showMessage(message, 15000))
        self.engine.libraries_changed.connect(self._libraries_changed)
        self.files = FileActions(self)
        self.export_preview: Any = None  #: File ▸ Preview Export's window, once opened (export_preview.py)
        self.models = ModelsMenu(self)
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        window_docks.build_panels(self)
        self.photo = PhotoOpener(self)  #: File ▸ Open Photo…, dropped photos
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.resize(1440, 900)
        window_docks.size_docks(self)
        window_docks.restore_layout(self)

        self.holder.changed.connect(self.renders.on_doc_changed)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.ctx.interaction_finished.connect(self._on_interaction_finished)
        self.engine.model_loaded.connect(self._on_model_loaded)
        self.engine.rendered.connect(self._update_library_actions)  # after the tracker has taken the frame
        self.actions_by_name["use_installed"].setEnabled(False)
        self.actions_by_name["install_sliders"].setEnabled(False)
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
    # the parts, as the rest of the app (and tests, scripts) use them
    def _action(self, name: str, text: str, slot: Callable | None = None, shortcut: Any = None,
                icon: str = "", tip: str = "", checkable: bool = False) -> QAction:
        """A window-wide action made at run time (see :func:`.window_menus.make_action`)."""
        return window_menus.make_action(self, name, text, slot, shortcut, icon, tip, checkable)

    def panel(self, key: str) -> Any:
        return self.panels[key]

    @property
    def last_result(self) -> RenderResult | None:
        """The frame on screen."""
        return self.renders.last_result

    @property
    def _latest_seq(self) -> int:  # the newest render request (read by bench/interaction.py and tests)
        return self.renders.latest_seq

    @property
    def export_box(self) -> Any:
        """The Export dialog while it is open."""
        return self.files.export_box

    def request_render(self, quality: str = "final") -> int:
        return self.renders.request(quality)

    def frame_is_current(self, final: bool = True) -> bool:
        """Is the frame on screen the latest request (and final, if asked)?"""
        return self.renders.frame_is_current(final)

    def _rerender(self) -> None:
        self.renders.rerender()

    def _start_dir(self) -> str:
        return self.files.start_dir()

    def new_document(self) -> None:
        self.files.new_document()

    def maybe_save(self) -> bool:
        """True if it is fine to drop the current document."""
        return self.files.maybe_save()

    def unsaved_box(self) -> tuple:
        return self.files.unsaved_box()

    def open_path(self, path: Path, ask: bool = True) -> bool:
        return self.files.open_path(path, ask)

    def save(self) -> bool:
        return self.files.save()

    def save_to(self, path: Path) -> bool:
        return self.files.save_to(path)

    def export_to(self, path: Path, on_done: Callable[[Path], None] | None = None) -> int:
        return self.files.export_to(path, on_done)

    def copy_image(self, on_done: Callable[[QImage], None] | None = None) -> int:
        return self.files.copy_image(on_done)

    def installed_models(self) -> list[str]:
        return self.models.installed()

    def switch_model(self, name: str) -> None:
        self.models.switch(name)

    def import_model(self, path: Path, name: str | None = None, switch: bool = True,
                     on_done: Callable[[str], None] | None = None) -> int:
        return self.models.import_model(path, name, switch, on_done)

    def offer_recovery(self, ask: Callable[[Recoverable], bool] | None = None) -> bool:
        """After a crash: offer the newest orphaned autosave. Returns True if recovered."""
        return crash_recovery.offer_recovery(self, ask)

    # =========================================================================================
    # slots (bound methods, so Qt disconnects them when the window goes away)
    def on_undo_text(self, text: str) -> None:
        self.actions_by_name["undo"].setToolTip(f"Undo {text}  (Ctrl+Z)" if text else "Undo  (Ctrl+Z)")

    def on_redo_text(self, text: str) -> None:
        self.actions_by_name["redo"].setToolTip(f"Redo {text}  (Ctrl+Shift+Z)" if text else "Redo  (Ctrl+Shift+Z)")

    def _on_clean_changed(self, _clean: bool) -> None:
        self.update_title()

    def _on_interaction_finished(self) -> None:
        self.request_render("final")

    def _on_theme_changed(self, _dark: bool) -> None:
        self._refresh_icons()

    def _on_zoom(self, scale: float) -> None:
        self.status.zoom_label.setText(f"{'Fit · ' if self.canvas.is_fit() else ''}{scale * 100:.0f} %")

    def _on_model_loaded(self, desc: ModelDescription) -> None:
        self.ctx.model = desc
        self.status.model_label.setText(f"{desc.name} · {desc.resolution} px · {desc.device}")
        self.ctx.model_changed.emit(desc)
        self.models.fill()

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

    # =========================================================================================
    # title, errors, document
    def document_name(self) -> str:
        return self.project_path.stem if self.project_path else self.holder.doc.title

    def update_title(self) -> None:
        self.setWindowTitle(f"StyleStudio — {self.document_name()}[*]")
        self.setWindowModified(not self.undo_stack.isClean())

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

    def set_document(self, doc: EditDocument, path: Path | None = None, modified: bool = False) -> None:
        """Replace the open document (new/open/recover): history starts afresh."""
        self.undo_stack.clear()
        self.project_path = Path(path) if path else None
        if doc.libraries or any(getattr(e, "version", "") for e in doc.edits):  # saved: compare when drawn
            self.renders.compare_versions(Path(path).name if path else doc.title)
        self.holder.set(doc)
        self.undo_stack.setClean()
        if modified:
            self.undo_stack.resetClean()
        self.update_title()

    # =========================================================================================
    # jobs
    def run_job(self, title: str, fn: Callable, on_done: Callable | None = None, error_title: str = "",
                cancellable: bool = True) -> int:
        """Submit ``fn(engine, ctx)`` to the render thread; failures become an error message."""
        return self.engine.submit(title, fn, on_done, self._job_failed(title, error_title), cancellable)

    def run_task(self, request: Any, on_done: Callable | None = None, error_title: str = "",
                 wrap: Callable[[Callable], Callable] | None = None) -> int:
        """Submit an engine task request (:mod:`stylestudio.engine.tasks`): long ones run in the job
        thread beside the renders and show in the Jobs panel; failures become an error message."""
        from ..engine import tasks

        return self.engine.submit_task(request, on_done, self._job_failed(tasks.title(request), error_title),
                                       wrap=wrap)

    def _job_failed(self, title: str, error_title: str) -> Callable[[str, bool], None]:
        def failed(message: str, cancelled: bool) -> None:
            if cancelled:
                self.statusBar().showMessage(f"{title}: cancelled", 5000)
            else:
                self.report_error(error_title or f"{title} failed", message)

        return failed

    # =========================================================================================
    # edit / view
    def reset_all_edits(self) -> None:
        if self.holder.doc.edits:
            self.undo_stack.push(ResetAllEditsCommand(self.holder))

    def _update_library_actions(self, r) -> None:
        """*Use Installed Sliders* is offered while a final frame drew a slider as saved that the
        installed library would draw otherwise; *Install the Project's Sliders* while it drew one
        whose library is missing here."""
        from ..engine.edits.kept import AS_SAVED, NOT_INSTALLED

        if r.quality == "final":
            self.actions_by_name["use_installed"].setEnabled(AS_SAVED in self.renders.from_copies.values())
            self.actions_by_name["install_sliders"].setEnabled(NOT_INSTALLED in self.renders.from_copies.values())

    def _libraries_changed(self, changed: list[tuple[str, str, str]]) -> None:
        """Slider libraries were made current, renamed or deleted (discovery, training, the panels):
        draw the picture again if it uses one, so it shows, and the Edit menu offers, what it draws with now."""
        from ..engine.edits.kept import kind_of, slider_edits

        doc = self.holder.doc
        if any((doc.model, kind_of(e), e.library) in changed for e in slider_edits(doc)):
            self.renders.redraw()

    def install_project_sliders(self) -> None:
        """Install the libraries the project keeps and this computer lacks (the panels then list them)."""
        from ..engine.tasks.directions import InstallProjectLibraries

        def done(installed: list[str]) -> None:
            self.statusBar().showMessage(f"Installed {', '.join(installed)}" if installed
                                         else "Every library this project keeps is installed", 8000)
            for key in ("discover", "textpaths"):
                panel = self.panels.get(key)
                if panel is not None:
                    panel.refresh()
            self.renders.rerender()

        def failed(message: str, _cancelled: bool = False) -> None:
            self.report_error("Could not install the project's sliders", message)

        # with the copies it draws from, including those of libraries deleted while it was open
        self.engine.submit_task(InstallProjectLibraries(self.renders.stamped(self.holder.doc)), on_done=done,
                                on_error=failed)

    def use_installed_sliders(self) -> None:
        """Draw the sliders the project keeps as saved with their installed versions (undoable)."""
        from ..engine.edits.kept import use_installed

        doc = self.holder.doc
        after = use_installed(doc, self.renders.from_copies)
        if after is doc:
            self.statusBar().showMessage("Every slider is already drawn with its installed library", 5000)
            return
        self.undo_stack.push(EditChangeCommand(self.holder, after, "Use installed sliders"))

    def focus_seed_box(self) -> None:
        box = self.panel("faces").seed_box
        self.docks["faces"].show()
        box.setFocus()
        box.selectAll()

    def toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def set_theme(self, mode: str) -> None:
        self.settings.theme = mode
        self.settings.save()
        self.theme.apply(mode)

    # -- dialogs ----------------------------------------------------------------------------------
    def preferences_dialog(self) -> None:
        dlg = PreferencesDialog(self.settings, self.installed_models(), self)
        with modal(dlg) as accepted:
            if not accepted:
                return
            old_device = self.settings.device
            dlg.apply_to(self.settings)
        self.apply_settings(device_changed=self.settings.device != old_device)

    def apply_settings(self, device_changed: bool = False) -> None:
        s = self.settings
        s.save()
        self.engine.set_preview_size(s.preview_size, s.preview_budget_ms, s.fast_previews)
        if self.autosave is not None:
            self.autosave.set_interval(s.autosave_interval_s)
        self.theme.apply(s.theme)
        if device_changed:
            device = s.device
            self.run_job("Switch device", lambda e, c: e.set_device(device),
                         lambda _r: self._rerender(), "Could not use that device", cancellable=False)

    def shortcuts_dialog(self) -> None:
        extra = [("Show original while held", "\\"), ("Zoom at the pointer", "Mouse wheel"),
                 ("Pan", "Drag the picture"), ("Fit ↔ 100 %", "Double-click the picture"),
                 ("Reset one slider", "Double-click its name")]
        actions = list(self.actions_by_name.values()) + [d.toggleViewAction() for d in self.docks.values()]
        with modal(ShortcutsDialog(actions, extra, self)):
            pass

    def about_dialog(self) -> None:
        QMessageBox.about(self, "About StyleStudio", about_text())

    # =========================================================================================
    # close
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        jobs = [] if getattr(self, "_shut", False) else self.running_jobs()
        if jobs and not self.ask_stop_jobs(jobs):
            event.ignore()
            return
        if not self.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def running_jobs(self) -> list[str]:
        """The jobs quitting would stop (those of the job threads, queued or running; frames and
        thumbnails are not jobs), each as "title (42 %)"."""
        return [f"{r.title}{f' ({r.fraction:.0%})' if r.state == 'running' and r.fraction >= 0 else ''}"
                for r in self.engine.active_jobs() if r.lane != "render"]

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
        window_docks.save_layout(self)
        try:
            self.settings.save()
        except OSError:
            pass
        if self.autosave is not None:
            self.autosave.close()
        self.engine.shutdown()

    # -- drag and drop: a project opens, a photo is opened, a checkpoint is imported ------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.files.dropped(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt name)
        path = self.files.dropped(event)
        if path is None:
            return
        event.acceptProposedAction()
        self.files.open_dropped(path)

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
