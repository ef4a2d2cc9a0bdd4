"""The Models menu: the installed models (one checkable entry each, Ctrl+Alt+1…9), switching the
document's model (an undo step) and importing a checkpoint into the model store (a job)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog

from ..engine.model_store import DEFAULT_MODEL, ModelStore
from ..engine.tasks.models import ImportCheckpoint
from .file_actions import naming_file
from .undo_commands import SwitchModelCommand

if TYPE_CHECKING:
    from .main_window import MainWindow

CHECKPOINT_FILTER = "StyleGAN2 checkpoints (*.pkl *.pt *.pth);;All files (*)"


class ModelsMenu:
    """Lists the installed models in ``window.models_menu`` before ``window.models_anchor``,
    refreshed each time the menu opens and whenever a model is loaded or imported."""

    def __init__(self, window: "MainWindow") -> None:
        self.window = window
        self.menu = window.models_menu
        self._group = QActionGroup(window)
        self.actions: list[QAction] = []  #: one per installed model, in menu order
        self.menu.aboutToShow.connect(self.fill)
        self.fill()

    @staticmethod
    def installed() -> list[str]:
        names = ModelStore().names()
        if DEFAULT_MODEL not in names:
            names.insert(0, DEFAULT_MODEL)
        return names

    def fill(self) -> None:
        w = self.window
        for act in self.actions:
            self.menu.removeAction(act)
            self._group.removeAction(act)
        self.actions = []
        current = w.holder.doc.model
        for i, name in enumerate(self.installed()):
            act = QAction(name + ("  (built-in)" if name == DEFAULT_MODEL else ""), w)
            act.setCheckable(True)
            act.setChecked(name == current)
            act.setStatusTip(f"Render this document with {name}")
            if i < 9:
                act.setShortcut(QKeySequence(f"Ctrl+Alt+{i + 1}"))
            act.triggered.connect(lambda _=False, n=name: self.switch(n))
            self._group.addAction(act)
            self.menu.insertAction(w.models_anchor, act)
            self.actions.append(act)

    def switch(self, name: str) -> None:
        w = self.window
        if name != w.holder.doc.model:
            w.undo_stack.push(SwitchModelCommand(w.holder, name))
            self.fill()

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Import Checkpoint", str(Path.home()), CHECKPOINT_FILTER)
        if path:
            self.window.import_model(Path(path))

    def import_model(self, path: Path, name: str | None = None, switch: bool = True,
                     on_done: Callable[[str], None] | None = None) -> int:
        """Convert a checkpoint into the model store (an :class:`ImportCheckpoint` job: the job
        thread, shown in the Jobs panel, editing goes on), then render with it."""
        w = self.window
        path = Path(path)

        def done(model_name: str) -> None:
            self.fill()
            w.statusBar().showMessage(f"Imported model {model_name}", 6000)
            if switch:
                self.switch(model_name)
            if on_done is not None:
                on_done(model_name)

        return w.run_task(ImportCheckpoint(path, name), done, "Import failed", wrap=lambda fn: naming_file(path, fn))
