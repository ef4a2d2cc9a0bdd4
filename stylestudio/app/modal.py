"""Running a modal dialog so that it is gone afterwards.

A finished dialog left alive as its window's child keeps widgets that Python owns while Qt also
parents them, and slots (closures) that hold the dialog. At exit PySide deletes every object
Python owns; deleting a button released the last reference to its dialog, which deleted the
button a second time — a heap corruption and a crash after the last test had passed. Every modal
dialog of the app therefore runs through :func:`modal`, which deletes it once it is answered.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from PySide6.QtWidgets import QDialog


@contextmanager
def modal(dlg: QDialog) -> Iterator[bool]:
    """Show ``dlg`` modally; yields whether it was accepted. Read its fields inside the block."""
    try:
        yield dlg.exec() == QDialog.DialogCode.Accepted
    finally:
        dlg.deleteLater()
