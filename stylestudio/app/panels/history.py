"""The History panel: the undo stack itself (QUndoView). Clicking a row jumps there."""
from __future__ import annotations

from PySide6.QtWidgets import QUndoView, QVBoxLayout, QWidget

from .. import theme
from ..context import EditorContext
from . import PanelSpec, register_panel


class HistoryPanel(QWidget):
    def __init__(self, ctx: EditorContext) -> None:
        super().__init__()
        self.view = QUndoView(ctx.undo_stack)
        self.view.setEmptyLabel("Opened")
        self.view.setCleanIcon(theme.icon("save"))
        self.view.setAlternatingRowColors(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.view)


register_panel(PanelSpec("history", "History", HistoryPanel, area="right", order=90, icon="history",
                         shortcut="Ctrl+Shift+H"))
