"""Pressing Ctrl+C during a CLI command, for the tests of the trainings' finish-early."""
from __future__ import annotations

import signal
from types import ModuleType


def press_ctrl_c(monkeypatch, command: ModuleType, when: str, times: int = 1) -> list[str]:
    """Send this process a real SIGINT ``times`` times, once the command module's progress line
    contains ``when``; returns the lines it was pressed at (empty: never pressed)."""
    pressed: list[str] = []
    printer = command.progress_printer

    def printing_then_pressing(message: str, fraction: float) -> None:
        printer(message, fraction)
        if when in message and not pressed:
            pressed.append(message)
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(command, "progress_printer", printing_then_pressing)
    return pressed
