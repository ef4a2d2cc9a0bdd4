"""What an editing panel gets: the document, the undo stack, the engine and the settings.

Panels never hold their own copy of the document and never call the engine directly: they read
``ctx.doc``, change it by pushing an undo command (``ctx.push``), ask for work through
``ctx.engine`` (the worker) and listen to ``ctx.holder.changed`` / ``ctx.model_changed``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from ..engine.document import EditDocument
from ..engine.session import ModelDescription
from .settings import Settings
from .engine_client import EngineClient
from .undo_commands import DocumentHolder

if TYPE_CHECKING:
    from .main_window import MainWindow


class EditorContext(QObject):
    #: the document's model was loaded (or switched): panels rebuild model-specific content
    model_changed = Signal(object)  # ModelDescription
    #: a slider drag (or other continuous interaction) ended: time for the final frame
    interaction_finished = Signal()

    def __init__(self, holder: DocumentHolder, undo_stack: QUndoStack, engine: EngineClient,
                 settings: Settings, window: "MainWindow") -> None:
        super().__init__(window)
        self.holder = holder
        self.undo_stack = undo_stack
        self.engine = engine
        self.settings = settings
        self.window = window
        self.model: ModelDescription | None = None

    @property
    def doc(self) -> EditDocument:
        return self.holder.doc

    def push(self, command: QUndoCommand) -> None:
        self.undo_stack.push(command)

    def end_interaction(self) -> None:
        self.interaction_finished.emit()

    def report_error(self, title: str, message: str) -> None:
        self.window.report_error(title, message)

    def status(self, message: str, timeout_ms: int = 4000) -> None:
        self.window.statusBar().showMessage(message, timeout_ms)
