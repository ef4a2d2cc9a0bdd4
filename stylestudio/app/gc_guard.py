"""Garbage collection only on the GUI thread.

Python's cyclic collector runs in whichever thread happens to allocate when a threshold is
crossed. If that is the render worker, it may destroy Qt objects (windows, widgets) that belong
to the GUI thread, which crashes Qt. So automatic collection is switched off while the editor
runs and a GUI-thread timer collects instead, as often as the thresholds would have asked.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

_guard: "GuiThreadCollector | None" = None


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds (like automatic gc)."""
        counts = gc.get_count()
        if counts[0] > self.threshold[0]:
            generation = 2 if counts[2] > self.threshold[2] else 1 if counts[1] > self.threshold[1] else 0
            gc.collect(generation)


def install(app: QObject) -> GuiThreadCollector:
    """Install once per application (idempotent)."""
    global _guard
    if _guard is None or _guard.parent() is not app:
        _guard = GuiThreadCollector(app)
    return _guard
